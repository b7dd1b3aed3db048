/// A DKIM result as RFC 8601 §2.7.1 names them.
public enum DKIMStatus: String, Hashable, Sendable, CaseIterable {
    /// The signature verified.
    case pass
    /// The signature or the body hash did not verify (§6.1.3).
    case fail
    /// Not evaluated (here: past the limit of signatures per message).
    case neutral
    /// Verifiable, but refused by local policy (here: rsa-sha1, RFC 8301 §3.1).
    case policy
    /// The key could not be fetched for now (DNS, §6.1.2): try later.
    case temperror
    /// The signature cannot be verified, ever: bad syntax, no key, revoked
    /// key, key too small, expired, From not signed (§6.1.1, §6.1.2).
    case permerror
}

/// How one DKIM-Signature field came out (RFC 6376 §6.1), with what
/// RFC 8601 §2.7.1 and RFC 6008 report of it.
public struct DKIMResult: Hashable, Sendable {
    public var status: DKIMStatus
    /// Why, for anything but pass; written for logs and for the comment in
    /// Authentication-Results. Never contains key material.
    public var reason: String
    /// d= (header.d), when it could be read.
    public var domain: String?
    /// s= (header.s).
    public var selector: String?
    /// i= (header.i), "@" + d= when absent.
    public var identity: String?
    /// a=.
    public var algorithm: String?
    /// The first characters of b= (header.b, RFC 6008 §2: at least 8).
    public var headerB: String?
    /// Size of the key that checked the signature.
    public var keyBits: Int?
    /// The key record says t=y: the domain is testing DKIM, and such results
    /// must be treated like unsigned mail (§3.6.1).
    public var testing: Bool

    public init(status: DKIMStatus, reason: String = "", domain: String? = nil, selector: String? = nil,
                identity: String? = nil, algorithm: String? = nil, headerB: String? = nil,
                keyBits: Int? = nil, testing: Bool = false) {
        self.status = status
        self.reason = reason
        self.domain = domain
        self.selector = selector
        self.identity = identity
        self.algorithm = algorithm
        self.headerB = headerB
        self.keyBits = keyBits
        self.testing = testing
    }

    /// Characters of b= kept for header.b. RFC 6008 §2 asks for at least 8;
    /// 12 keeps two signatures of one domain apart in practice.
    static let headerBLength = 12

    /// The resinfo of an Authentication-Results field (RFC 8601 §2.2), e.g.
    /// `dkim=pass (2048-bit rsa-sha256 key) header.d=example.com header.i=@example.com header.s=sel header.b=abcdefghijkl`.
    public var resinfo: String {
        var s = "dkim=\(status.rawValue)"
        var comment: [String] = []
        if status == .pass, let bits = keyBits, let a = algorithm { comment.append("\(bits)-bit \(a) key") }
        if status != .pass, !reason.isEmpty { comment.append(Self.commentSafe(reason)) }
        if testing { comment.append("testing") }
        if !comment.isEmpty { s += " (" + comment.joined(separator: "; ") + ")" }
        for (k, v) in [("header.d", domain), ("header.i", identity), ("header.s", selector), ("header.b", headerB)] {
            if let v, !v.isEmpty, Self.isToken(v) { s += " \(k)=\(v)" }
        }
        return s
    }

    /// Parentheses and backslashes would end or escape the comment (RFC 5322 §3.2.2).
    static func commentSafe(_ s: String) -> String {
        String(s.unicodeScalars.map { "()\\".unicodeScalars.contains($0) || $0.value < 0x20 ? " " : Character($0) })
    }

    /// Printable ASCII without specials or spaces, or an "@"-bearing
    /// identity: what can follow "header.x=" without quoting (RFC 8601 §2.2).
    static func isToken(_ s: String) -> Bool {
        s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !"()<>,;:\\\"[]".utf8.contains($0) }
    }
}

/// Named limits of the verifier (RFC 6376 §8: DKIM invites denial of
/// service through many signatures, large keys and long bodies).
public struct DKIMLimits: Hashable, Sendable {
    /// Signatures checked per message; later ones get `neutral` (§8.4).
    public var maxSignatures: Int
    /// Entries in one h= list.
    public var maxSignedHeaders: Int
    /// Body octets (network form) that may be hashed; with a longer body a
    /// signature without a smaller l= is not evaluated (`neutral`).
    public var maxBodyBytes: Int
    /// Octets of one key record (the TXT strings joined).
    public var maxKeyRecordBytes: Int

    public init(maxSignatures: Int = 10, maxSignedHeaders: Int = 256,
                maxBodyBytes: Int = 64 << 20, maxKeyRecordBytes: Int = 4096) {
        self.maxSignatures = maxSignatures
        self.maxSignedHeaders = maxSignedHeaders
        self.maxBodyBytes = maxBodyBytes
        self.maxKeyRecordBytes = maxKeyRecordBytes
    }

    public static let `default` = DKIMLimits()
}
