/// The results of check_host() (RFC 7208 §2.6), spelled as in
/// Authentication-Results (RFC 8601 §2.7.2).
public enum SPFResult: String, Hashable, Sendable, CaseIterable {
    case none, neutral, pass, fail, softfail, temperror, permerror
}

/// How one SPF check came out: the result and what decided it. A value,
/// never an error (STYLE: verdicts are values).
public struct SPFVerdict: Hashable, Sendable {
    public var result: SPFResult
    /// The identity's domain (MAIL FROM domain, or the HELO name).
    public var domain: String
    /// The directive that matched ("-all", "ip4:192.0.2.0/24", "include:_spf.example.net"),
    /// nil when none did (default neutral, none, errors).
    public var mechanism: String?
    /// For "fail": the explanation the domain published with `exp=` (RFC 7208 §6.2),
    /// macro-expanded; nil when it gave none (the receiver uses its own default).
    public var explanation: String?
    /// Why the result is none, temperror or permerror; for logs and
    /// Authentication-Results comments (no secrets, only DNS facts).
    public var problem: String?

    public init(result: SPFResult, domain: String, mechanism: String? = nil,
                explanation: String? = nil, problem: String? = nil) {
        self.result = result
        self.domain = domain
        self.mechanism = mechanism
        self.explanation = explanation
        self.problem = problem
    }
}

/// The limits of RFC 7208 §4.6.4, named and defaulted.
public struct SPFLimits: Hashable, Sendable {
    /// Terms that query DNS (include, a, mx, ptr, exists, redirect) per check.
    public var dnsTerms = 10
    /// Lookups answered NXDOMAIN or NODATA per check ("void lookups").
    public var voidLookups = 2
    /// MX names one `mx` mechanism may look at; more is a permerror.
    public var mxNames = 10
    /// PTR names one `ptr` mechanism or `%{p}` validates; the rest are ignored.
    public var ptrNames = 10

    public init() {}
}

/// The identities check_host() reads (RFC 7208 §2.3, §2.4, §4.3).
public enum SPFIdentity {
    /// The local-part of <sender>, "postmaster" when it has none (RFC 7208 §4.3).
    public static func localPart(of sender: String) -> String {
        guard let at = sender.lastIndex(of: "@") else { return "postmaster" }
        let local = sender[..<at]
        return local.isEmpty ? "postmaster" : String(local)
    }

    /// The domain of <sender>: after the last "@".
    public static func domain(of sender: String) -> String {
        guard let at = sender.lastIndex(of: "@") else { return sender }
        return String(sender[sender.index(after: at)...])
    }

    /// RFC 7208 §4.3: a multi-label domain name whose labels are 1 to 63
    /// octets (one final dot allowed), at most 253 octets; anything else
    /// (a domain literal, a bare label, an empty label) makes the result "none".
    public static func isValidDomain(_ name: String) -> Bool {
        var n = Substring(name)
        if n.hasSuffix(".") { n = n.dropLast() }
        guard !n.isEmpty, n.utf8.count <= 253, !n.hasPrefix("[") else { return false }
        let labels = n.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { (1...63).contains($0.utf8.count) }
    }

    /// A name to query after macro expansion (RFC 7208 §7.3): without its
    /// final dot, labels removed from the left until it fits 253 octets.
    public static func queryName(_ expanded: String) -> String {
        var n = Substring(expanded)
        if n.hasSuffix(".") { n = n.dropLast() }
        while n.utf8.count > 253, let dot = n.firstIndex(of: ".") { n = n[n.index(after: dot)...] }
        return String(n)
    }

    /// Same domain, or a subdomain of `parent` (ASCII case ignored, final dots ignored).
    public static func isAtOrBelow(_ name: String, _ parent: String) -> Bool {
        let a = queryName(name).lowercased(), b = queryName(parent).lowercased()
        return a == b || a.hasSuffix("." + b)
    }
}
