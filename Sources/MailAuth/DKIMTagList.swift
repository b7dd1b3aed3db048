import MailCore

/// Why a DKIM signature, key record or key could not be used, or why signing
/// failed. The message is safe to show (it names tags, never key material)
/// and becomes the reason of a `DKIMResult`.
public struct DKIMError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// A tag-list, tag value or header that does not follow the grammar.
        case syntax
        /// Something well formed this implementation does not do (an unknown
        /// algorithm, version or query method).
        case unsupported
        /// A key that cannot be used: malformed, revoked, too small, wrong type.
        case key
        /// A signing request that cannot be met (no From field, bad domain).
        case signing
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// A DKIM tag-list (RFC 6376 §3.2): `tag=value` pairs separated by ";", as
/// found in the DKIM-Signature field (§3.5) and in key records (§3.6.1).
///
///     tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
///     tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
///     tag-name  =  ALPHA *ALNUMPUNC
///     tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
///
/// Values are kept as raw bytes with the surrounding FWS removed; FWS inside
/// a value is kept, since only some tags (b=, bh=, h=, p=) allow it. Each tag
/// remembers where its value lies in the parsed bytes so that the verifier
/// can blank the b= value in place (§3.7).
public struct DKIMTagList: Hashable, Sendable {
    public struct Tag: Hashable, Sendable {
        public var name: String
        /// The value without surrounding whitespace.
        public var value: [UInt8]
        /// From just after "=" to just before the next ";" (or the end):
        /// the value with its surrounding whitespace, as §3.7 deletes it.
        public var valueRange: Range<Int>
    }

    public var tags: [Tag]

    /// The value of tag `name` (tag names are case-sensitive, §3.2).
    public subscript(_ name: String) -> [UInt8]? {
        tags.first { $0.name == name }?.value
    }

    public func tag(_ name: String) -> Tag? { tags.first { $0.name == name } }

    /// The value as text, or nil when absent.
    public func text(_ name: String) -> String? {
        self[name].map { String(decoding: $0, as: UTF8.self) }
    }

    /// Parses `bytes[range]`. Errors: a spec without "=", a bad tag name,
    /// control characters in a value, a duplicate tag (§3.2: "the entire
    /// tag-list is invalid"). Empty specs (";;", a trailing ";") are allowed.
    public static func parse(_ bytes: [UInt8], _ range: Range<Int>? = nil) throws(DKIMError) -> DKIMTagList {
        let range = range ?? bytes.indices
        var tags: [Tag] = []
        var start = range.lowerBound
        while start <= range.upperBound {
            var end = start
            while end < range.upperBound && bytes[end] != UInt8(ascii: ";") { end += 1 }
            if let tag = try parseSpec(bytes, start..<end) {
                if tags.contains(where: { $0.name == tag.name }) {
                    throw DKIMError(.syntax, "duplicate tag \(tag.name)=")
                }
                tags.append(tag)
            }
            start = end + 1
        }
        return DKIMTagList(tags: tags)
    }

    static func parseSpec(_ bytes: [UInt8], _ spec: Range<Int>) throws(DKIMError) -> Tag? {
        guard let eq = bytes[spec].firstIndex(of: UInt8(ascii: "=")) else {
            if bytes[spec].allSatisfy(DKIMBytes.isFWS) { return nil }
            throw DKIMError(.syntax, "tag without \"=\"")
        }
        let nameBytes = DKIMBytes.trimmed(bytes[spec.lowerBound..<eq])
        // tag-name = ALPHA *ALNUMPUNC (§3.2)
        guard let first = nameBytes.first, DKIMBytes.isAlpha(first),
              nameBytes.allSatisfy({ DKIMBytes.isAlpha($0) || DKIMBytes.isDigit($0) || $0 == UInt8(ascii: "_") }) else {
            throw DKIMError(.syntax, nameBytes.isEmpty ? "empty tag name" : "bad tag name")
        }
        let name = String(decoding: nameBytes, as: UTF8.self)
        let value = DKIMBytes.trimmed(bytes[(eq + 1)..<spec.upperBound])
        // VALCHAR = %x21-3A / %x3C-7E, with FWS between tvals; octets
        // above 0x7E are let through (RFC 6532 text in z=, and d= is checked
        // on its own), other controls are refused.
        if value.contains(where: { ($0 < 0x21 && !DKIMBytes.isFWS($0)) || $0 == 0x7F }) {
            throw DKIMError(.syntax, "control character in \(name)=")
        }
        return Tag(name: name, value: Array(value), valueRange: (eq + 1)..<spec.upperBound)
    }
}

/// Byte classes and helpers shared by the DKIM files.
enum DKIMBytes {
    static func isWSP(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
    /// WSP or the CR and LF of a fold (RFC 5322 FWS).
    static func isFWS(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }
    static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }
    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    static func trimmed(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = s
        while let f = s.first, isFWS(f) { s.removeFirst() }
        while let l = s.last, isFWS(l) { s.removeLast() }
        return s
    }

    /// The value with every FWS octet removed (b=, bh=, p= allow FWS
    /// anywhere between base64 characters, §3.5, §3.6.1).
    static func withoutFWS(_ s: [UInt8]) -> [UInt8] { s.filter { !isFWS($0) } }

    static func lowercased(_ s: some Sequence<UInt8>) -> [UInt8] {
        s.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
    }

    /// Base64 (RFC 4648 §4) after removing FWS; nil when not base64.
    static func base64(_ value: [UInt8]) -> [UInt8]? {
        var v = withoutFWS(value)
        // Tolerate missing padding, as senders occasionally drop it.
        while v.count % 4 != 0 { v.append(UInt8(ascii: "=")) }
        return Base64.decode(v)
    }

    /// `1*n DIGIT` as a number, nil otherwise (l=, t=, x=).
    static func number(_ value: [UInt8], maxDigits: Int) -> Int64? {
        guard !value.isEmpty, value.count <= maxDigits, value.allSatisfy(isDigit) else { return nil }
        var n: Int64 = 0
        for d in value { n = n * 10 + Int64(d - 0x30) }
        return n
    }

    /// sub-domain *("." sub-domain) with sub-domain = Let-dig [Ldh-str]
    /// (RFC 5321 §4.1.2, used by RFC 6376 §3.5 for d= and s=). A-labels
    /// only (§3.5: internationalized names MUST be A-labels). Underscores
    /// are let through in selectors, which some operators use.
    static func isDomain(_ s: [UInt8], minLabels: Int, allowUnderscore: Bool = false) -> Bool {
        guard !s.isEmpty, s.count <= 253 else { return false }
        let labels = s.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard labels.count >= minLabels else { return false }
        for label in labels {
            guard let f = label.first, let l = label.last, label.count <= 63 else { return false }
            let ok: (UInt8) -> Bool = { isAlpha($0) || isDigit($0) || (allowUnderscore && $0 == UInt8(ascii: "_")) }
            guard ok(f), ok(l), label.allSatisfy({ ok($0) || $0 == UInt8(ascii: "-") }) else { return false }
        }
        return true
    }
}
