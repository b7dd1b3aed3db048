/// The Authentication-Results header field's value (RFC 8601 §2.2): who
/// checked (authserv-id) and what each check gave.
///
///     Authentication-Results: mx.example.net;
///         spf=pass smtp.mailfrom=alice@example.org;
///         dkim=pass header.d=example.org header.s=s1 header.b=Rk3bX7Q1;
///         dmarc=pass (p=reject dis=none) header.from=example.org
public struct AuthenticationResults: Hashable, Sendable, CustomStringConvertible {
    public var authservID: String
    /// authres-version; nil writes none (version 1 is implied, §2.2).
    public var version: Int?
    /// No results encode as "none" (§2.2 no-result).
    public var results: [AuthenticationResult]

    public init(authservID: String, version: Int? = nil, results: [AuthenticationResult]) {
        self.authservID = authservID
        self.version = version
        self.results = results
    }

    /// The value on one line, as `description`; with `folded`, each result
    /// on a line of its own (CRLF TAB before it), for a header written out.
    public func encoded(folded: Bool = false) -> String {
        var out = AuthenticationResults.value(authservID)
        if let version { out += " \(version)" }
        let separator = folded ? ";\r\n\t" : "; "
        if results.isEmpty { return out + separator + "none" }
        for r in results { out += separator + r.description }
        return out
    }

    public var description: String { encoded() }

    /// RFC 2045 token characters: any CHAR but SPACE, CTLs and tspecials.
    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.unicodeScalars.allSatisfy { c in
            c.value > 0x20 && c.value < 0x7F && !"()<>@,;:\\\"/[]?=".unicodeScalars.contains(c)
        }
    }

    /// value = token / quoted-string (RFC 2045 §5.1, RFC 5322 §3.2.4).
    static func value(_ s: String) -> String { isToken(s) ? s : quoted(s) }

    /// pvalue (RFC 8601 §2.2): a value, or [ [ local-part ] "@" ] domain-name
    /// written bare when the local-part is a dot-atom.
    static func pvalue(_ s: String) -> String {
        if isToken(s) { return s }
        if let at = s.lastIndex(of: "@") {
            let local = s[..<at], domain = s[s.index(after: at)...]
            if isDomainName(domain) && (local.isEmpty || isDotAtom(local)) { return s }
        }
        return quoted(s)
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            if c == "\"" || c == "\\" { out += "\\" }
            if AuthenticationResults.isDropped(c) { continue }   // no control characters in a header
            out.unicodeScalars.append(c)
        }
        return out + "\""
    }

    /// RFC 5322 §3.2.3 dot-atom with ASCII atext.
    static func isDotAtom(_ s: Substring) -> Bool {
        let atext = "!#$%&'*+-/=?^_`{|}~"
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || atext.contains($0)) }
        }
    }

    static func isDomainName(_ s: Substring) -> Bool {
        !s.isEmpty && s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }

    /// Control characters other than HTAB, left out of quoted strings and
    /// comments when written and when read.
    static func isDropped(_ c: Unicode.Scalar) -> Bool { (c.value < 0x20 && c != "\t") || c.value == 0x7F }

    /// ctext with "(", ")" and "\" escaped (RFC 5322 §3.2.2).
    static func comment(_ s: String) -> String {
        var out = "("
        for c in s.unicodeScalars {
            if c == "(" || c == ")" || c == "\\" { out += "\\" }
            if AuthenticationResults.isDropped(c) { continue }
            out.unicodeScalars.append(c)
        }
        return out + ")"
    }
}

/// One resinfo (RFC 8601 §2.2): method=result, an optional comment and
/// reason, and the properties that say what was checked.
public struct AuthenticationResult: Hashable, Sendable, CustomStringConvertible {
    public var method: String
    public var methodVersion: Int?
    public var result: String
    /// A comment written after the result (the first one, when parsed).
    public var comment: String?
    public var reason: String?
    public var properties: [AuthenticationProperty]

    public init(method: String, methodVersion: Int? = nil, result: String, comment: String? = nil,
                reason: String? = nil, properties: [AuthenticationProperty] = []) {
        self.method = method
        self.methodVersion = methodVersion
        self.result = result
        self.comment = comment
        self.reason = reason
        self.properties = properties
    }

    /// The first property `type.name`'s value.
    public func property(_ type: String, _ name: String) -> String? {
        properties.first { $0.type.lowercased() == type.lowercased() && $0.name.lowercased() == name.lowercased() }?.value
    }

    public var description: String {
        var out = method + (methodVersion.map { "/\($0)" } ?? "") + "=" + result
        if let comment { out += " " + AuthenticationResults.comment(comment) }
        if let reason { out += " reason=" + AuthenticationResults.value(reason) }
        for p in properties { out += " " + p.description }
        return out
    }
}

/// propspec = ptype "." property "=" pvalue (RFC 8601 §2.2), e.g. smtp.mailfrom=example.org.
public struct AuthenticationProperty: Hashable, Sendable, CustomStringConvertible {
    /// smtp, header, body or policy (§2.3).
    public var type: String
    public var name: String
    public var value: String

    public init(_ type: String, _ name: String, _ value: String) {
        self.type = type
        self.name = name
        self.value = value
    }

    public var description: String { "\(type).\(name)=" + AuthenticationResults.pvalue(value) }
}

// MARK: - The results of our checks

extension AuthenticationResult {
    /// RFC 8601 §2.7.2, RFC 7208 §9.1: spf=RESULT smtp.mailfrom=ADDRESS, or
    /// smtp.helo=NAME when the null reverse-path made HELO the identity.
    public static func spf(_ verdict: SPFVerdict, mailFrom: String, helo: String) -> AuthenticationResult {
        let identity = mailFrom.isEmpty ? AuthenticationProperty("smtp", "helo", helo)
                                        : AuthenticationProperty("smtp", "mailfrom", mailFrom)
        var comment: String?
        if let mechanism = verdict.mechanism {
            comment = "\(verdict.domain): \(mechanism) matched"
        } else if let problem = verdict.problem {
            comment = "\(verdict.domain): \(problem)"
        }
        return AuthenticationResult(method: "spf", result: verdict.result.rawValue, comment: comment, properties: [identity])
    }

    /// RFC 8601 §2.7.1, RFC 6008: dkim=RESULT header.d= header.s= and the
    /// first 8 characters of b= (tells signatures of one domain apart).
    public static func dkim(_ input: DMARCDKIMInput, signature: String? = nil, reason: String? = nil) -> AuthenticationResult {
        var props = [AuthenticationProperty("header", "d", input.domain)]
        if !input.selector.isEmpty { props.append(AuthenticationProperty("header", "s", input.selector)) }
        if let signature, !signature.isEmpty { props.append(AuthenticationProperty("header", "b", String(signature.prefix(8)))) }
        return AuthenticationResult(method: "dkim", result: input.result.rawValue, reason: reason, properties: props)
    }

    /// RFC 7489 §11.2: dmarc=RESULT header.from=DOMAIN, with the published
    /// policy and the disposition applied in a comment.
    public static func dmarc(_ verdict: DMARCVerdict) -> AuthenticationResult {
        var comment: String?
        if let record = verdict.record {
            var parts = ["p=\(record.policyDefaulted ? "none" : record.policy.rawValue)"]
            if let sp = record.subdomainPolicy { parts.append("sp=\(sp.rawValue)") }
            if verdict.result == .fail { parts.append("dis=\(verdict.disposition.rawValue)") }
            if verdict.sampledOut { parts.append("pct=\(record.percent)") }
            comment = parts.joined(separator: " ")
        } else if let problem = verdict.problem {
            comment = problem
        }
        return AuthenticationResult(method: "dmarc", result: verdict.result.rawValue, comment: comment,
                                    properties: [AuthenticationProperty("header", "from", verdict.fromDomain)])
    }
}
