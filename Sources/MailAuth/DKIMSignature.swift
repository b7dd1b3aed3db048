/// The DKIM-Signature header field's tags (RFC 6376 §3.5), checked against
/// their grammar. Tags this implementation does not know are ignored (§3.2).
///
///     DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;
///      s=sel; t=1700000000; h=from:to:subject:date;
///      bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dzdVyOfAKCdL...
public struct DKIMSignature: Hashable, Sendable {
    /// a= (§3.3). rsa-sha1 is parsed so the verifier can refuse it by name
    /// (RFC 8301 §3.1); ed25519-sha256 is RFC 8463 §3.
    public enum Algorithm: String, Hashable, Sendable {
        case rsaSHA256 = "rsa-sha256"
        case rsaSHA1 = "rsa-sha1"
        case ed25519SHA256 = "ed25519-sha256"

        /// The k= key type this algorithm needs (§3.6.1, RFC 8463 §4).
        public var keyType: String { self == .ed25519SHA256 ? "ed25519" : "rsa" }
        /// The h= hash name of a key record (§3.6.1).
        public var hashName: String { self == .rsaSHA1 ? "sha1" : "sha256" }
    }

    /// c= (§3.4): one algorithm for the header, one for the body.
    public enum Canonicalization: String, Hashable, Sendable {
        case simple, relaxed
    }

    public var algorithm: Algorithm
    /// b=, decoded.
    public var signature: [UInt8]
    /// b= as written, without FWS (for header.b, RFC 6008 §2).
    public var signatureText: String
    /// bh=, decoded.
    public var bodyHash: [UInt8]
    public var headerCanonicalization: Canonicalization
    public var bodyCanonicalization: Canonicalization
    /// d=, the signing domain (SDID), as written.
    public var domain: String
    /// h=, the signed header field names in order, lowercased.
    public var signedHeaders: [String]
    /// i=, the agent or user identifier (AUID); "@" + d= when absent (§3.5).
    public var identity: String
    /// Whether i= was present.
    public var identityGiven: Bool
    /// l=, the number of canonical body octets signed.
    public var bodyLength: Int64?
    /// s=, the selector.
    public var selector: String
    /// t=, seconds since 1970-01-01T00:00:00Z.
    public var timestamp: Int64?
    /// x=, the expiry in the same unit.
    public var expiration: Int64?
    /// z=, copied header fields, raw.
    public var copiedHeaders: [UInt8]?

    /// The TXT name of the key (§3.6.2.1): `s._domainkey.d`.
    public var keyName: String { "\(selector)._domainkey.\(domain)" }

    /// The domain part of i=.
    public var identityDomain: String {
        guard let at = identity.lastIndex(of: "@") else { return "" }
        return String(identity[identity.index(after: at)...])
    }

    /// RFC 6376 §3.5 limits: l= is 1*76DIGIT, t= and x= 1*12DIGIT.
    static let maxLengthDigits = 76
    static let maxTimeDigits = 12

    /// Checks the tags of one DKIM-Signature field (§3.5, §6.1.1).
    public init(_ tags: DKIMTagList, maxSignedHeaders: Int = DKIMLimits.default.maxSignedHeaders) throws(DKIMError) {
        func required(_ name: String) throws(DKIMError) -> [UInt8] {
            guard let v = tags[name] else { throw DKIMError(.syntax, "missing tag \(name)=") }
            return v
        }
        // v= MUST be "1" (§3.5, §6.1.1 "incompatible version").
        let version = try required("v")
        guard version == Array("1".utf8) else {
            throw DKIMError(.unsupported, "unsupported version v=\(String(decoding: version.prefix(8), as: UTF8.self))")
        }
        let a = String(decoding: try required("a"), as: UTF8.self)
        // sig-a-tag-alg = sig-a-tag-k "-" sig-a-tag-h (§3.5); the names are
        // registered in lowercase, and other cases are read leniently.
        guard let algorithm = Algorithm(rawValue: a.lowercased()) else {
            throw DKIMError(.unsupported, "unsupported algorithm a=\(a.prefix(32))")
        }
        self.algorithm = algorithm

        let b = try required("b")
        guard let sig = DKIMBytes.base64(b), !sig.isEmpty else { throw DKIMError(.syntax, "b= is not base64") }
        signature = sig
        signatureText = String(decoding: DKIMBytes.withoutFWS(b), as: UTF8.self)
        guard let bh = DKIMBytes.base64(try required("bh")), !bh.isEmpty else {
            throw DKIMError(.syntax, "bh= is not base64")
        }
        bodyHash = bh

        // c= header-algorithm ["/" body-algorithm]; default simple/simple (§3.5).
        headerCanonicalization = .simple
        bodyCanonicalization = .simple
        if let c = tags.text("c") {
            let parts = c.lowercased().split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let h = Canonicalization(rawValue: String(parts[0])) else {
                throw DKIMError(.unsupported, "unsupported canonicalization c=\(c.prefix(32))")
            }
            headerCanonicalization = h
            if parts.count == 2 {
                guard let body = Canonicalization(rawValue: String(parts[1])) else {
                    throw DKIMError(.unsupported, "unsupported canonicalization c=\(c.prefix(32))")
                }
                bodyCanonicalization = body
            }
        }

        let d = try required("d")
        guard DKIMBytes.isDomain(d, minLabels: 2) else { throw DKIMError(.syntax, "d= is not a domain name") }
        domain = String(decoding: d, as: UTF8.self)
        let s = try required("s")
        guard DKIMBytes.isDomain(s, minLabels: 1, allowUnderscore: true) else {
            throw DKIMError(.syntax, "s= is not a selector")
        }
        selector = String(decoding: s, as: UTF8.self)

        // h= hdr-name *( [FWS] ":" [FWS] hdr-name ) (§3.5).
        let h = try required("h")
        var names: [String] = []
        for part in h.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false) {
            let name = DKIMBytes.trimmed(part)
            // field-name = 1*ftext, ftext = %d33-57 / %d59-126 (RFC 5322 §3.6.8)
            guard !name.isEmpty, name.allSatisfy({ $0 >= 33 && $0 <= 126 && $0 != UInt8(ascii: ":") }) else {
                throw DKIMError(.syntax, "h= has an empty or bad field name")
            }
            names.append(String(decoding: DKIMBytes.lowercased(name), as: UTF8.self))
        }
        guard names.count <= maxSignedHeaders else { throw DKIMError(.syntax, "h= names more than \(maxSignedHeaders) fields") }
        signedHeaders = names

        // i= [ Local-part ] "@" domain-name; default "@" + d= (§3.5).
        if let i = tags["i"] {
            guard let at = i.lastIndex(of: UInt8(ascii: "@")),
                  DKIMBytes.isDomain(Array(i[(at + 1)...]), minLabels: 1) else {
                throw DKIMError(.syntax, "i= is not an identity")
            }
            identity = String(decoding: i, as: UTF8.self)
            identityGiven = true
        } else {
            identity = "@" + domain
            identityGiven = false
        }

        if let l = tags["l"] {
            guard !l.isEmpty, l.count <= Self.maxLengthDigits, l.allSatisfy(DKIMBytes.isDigit) else {
                throw DKIMError(.syntax, "l= is not a number")
            }
            // Grammatical up to 76 digits, but past 18 larger than any body.
            guard let n = DKIMBytes.number(l, maxDigits: 18) else { throw DKIMError(.syntax, "l= is larger than any body") }
            bodyLength = n
        }

        // q= 1*(method ":"): only dns/txt exists (§3.5, §3.6.2.1).
        if let q = tags.text("q") {
            let methods = q.split(separator: ":").map { $0.split(separator: "/").first.map { String($0).lowercased() } ?? "" }
            guard methods.contains("dns") else { throw DKIMError(.unsupported, "unsupported query method q=\(q.prefix(32))") }
        }

        if let t = tags["t"] {
            guard let n = DKIMBytes.number(t, maxDigits: Self.maxTimeDigits) else { throw DKIMError(.syntax, "t= is not a timestamp") }
            timestamp = n
        }
        if let x = tags["x"] {
            guard let n = DKIMBytes.number(x, maxDigits: Self.maxTimeDigits) else { throw DKIMError(.syntax, "x= is not a timestamp") }
            expiration = n
        }
        // §3.5 x=: "MUST be greater than the value of the t= tag if both are present".
        if let t = timestamp, let x = expiration, x <= t {
            throw DKIMError(.syntax, "x= is not after t=")
        }
        copiedHeaders = tags["z"]
    }
}
