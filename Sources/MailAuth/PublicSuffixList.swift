import Foundation

/// The Public Suffix List (publicsuffix.org, the list format and algorithm
/// its site documents), loaded from a file such as Debian's
/// /usr/share/publicsuffix/public_suffix_list.dat. DMARC finds
/// Organizational Domains with it (RFC 7489 §3.2).
///
/// Rules are kept in A-label form (internationalised labels converted with
/// Punycode, RFC 3492) so names match in either form; answers keep the form
/// and (lowercased) labels of the name asked about.
public struct PublicSuffixList: Sendable {
    /// The Debian package `publicsuffix`'s copy.
    public static let debianPath = "/usr/share/publicsuffix/public_suffix_list.dat"

    var rules: Set<String> = []
    /// "*.foo" rules, stored as "foo".
    var wildcards: Set<String> = []
    /// "!foo.bar" rules, stored as "foo.bar".
    var exceptions: Set<String> = []

    public var ruleCount: Int { rules.count + wildcards.count + exceptions.count }

    /// Parses the list: one rule per line, the rule ends at the first
    /// whitespace, "//" starts a comment line.
    public init(text: String) {
        for raw in text.split(whereSeparator: \.isNewline) {
            guard let word = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).first,
                  !word.hasPrefix("//") else { continue }
            var rule = Substring(word.lowercased())
            if rule.hasPrefix("!") {
                rule = rule.dropFirst()
                exceptions.insert(PublicSuffixList.aLabels(rule))
            } else if rule.hasPrefix("*.") {
                wildcards.insert(PublicSuffixList.aLabels(rule.dropFirst(2)))
            } else if rule == "*" {
                continue    // the implicit default rule
            } else {
                rules.insert(PublicSuffixList.aLabels(rule))
            }
        }
    }

    /// Reads the list from `path`; throws when the file cannot be read.
    public init(contentsOfFile path: String) throws {
        self.init(text: try String(contentsOfFile: path, encoding: .utf8))
    }

    /// The public suffix of `domain` (lowercased, no final dot), or nil for
    /// a name that is not a domain (empty, leading dot, empty label).
    public func publicSuffix(of domain: String) -> String? {
        guard let labels = PublicSuffixList.labels(domain) else { return nil }
        return labels.suffix(suffixLabelCount(labels)).joined(separator: ".")
    }

    /// The registrable domain: the public suffix and one more label; nil when
    /// `domain` is itself a public suffix (or not a domain).
    public func registrableDomain(of domain: String) -> String? {
        guard let labels = PublicSuffixList.labels(domain) else { return nil }
        let n = suffixLabelCount(labels)
        guard labels.count > n else { return nil }
        return labels.suffix(n + 1).joined(separator: ".")
    }

    /// RFC 7489 §3.2: the Organizational Domain, the registrable domain; a
    /// name that is itself a public suffix is its own.
    public func organizationalDomain(of domain: String) -> String {
        registrableDomain(of: domain) ?? PublicSuffixList.labels(domain)?.joined(separator: ".") ?? domain.lowercased()
    }

    /// Labels lowercased, without a final dot; nil for an empty name, a
    /// leading dot or an empty label.
    static func labels(_ domain: String) -> [String]? {
        var d = Substring(domain.lowercased())
        if d.hasSuffix(".") { d = d.dropLast() }
        guard !d.isEmpty, !d.hasPrefix(".") else { return nil }
        let labels = d.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        return labels.contains(where: \.isEmpty) ? nil : labels
    }

    /// The list's algorithm: the matching exception rule wins (its leftmost
    /// label removed); else the matching rule with the most labels; else "*".
    func suffixLabelCount(_ labels: [String]) -> Int {
        let ascii = labels.map { PublicSuffixList.aLabel($0) }
        var best = 1
        for n in 1...ascii.count {
            let candidate = ascii.suffix(n).joined(separator: ".")
            if exceptions.contains(candidate) { return n - 1 }
            if rules.contains(candidate) { best = max(best, n) }
            if n < ascii.count && wildcards.contains(candidate) { best = max(best, n + 1) }
        }
        return best
    }

    static func aLabels(_ name: Substring) -> String {
        name.split(separator: ".", omittingEmptySubsequences: false).map { aLabel(String($0)) }.joined(separator: ".")
    }

    /// An internationalised label as its A-label ("xn--" + Punycode); ASCII as is.
    static func aLabel(_ label: String) -> String {
        guard !label.unicodeScalars.allSatisfy(\.isASCII) else { return label }
        return "xn--" + Punycode.encode(Array(label.unicodeScalars))
    }
}
