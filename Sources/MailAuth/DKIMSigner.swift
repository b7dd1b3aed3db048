import MailCore

/// Signs messages for one domain and selector (RFC 6376 §5), with
/// rsa-sha256 or ed25519-sha256 (RFC 8463) and, by default, relaxed/relaxed.
///
///     let signer = try DKIMSigner(key: key, domain: "example.com", selector: "2024")
///     let field = try signer.sign(message, now: 1_700_000_000)   // "DKIM-Signature: v=1; ...\r\n"
///     deliver(Array(field.utf8) + message)
public struct DKIMSigner: Sendable {
    public var key: DKIMPrivateKey
    public var domain: String
    public var selector: String
    /// Header fields to sign when present, in this order (§5.4.1 lists
    /// these as fields that SHOULD be signed).
    public var headers: [String]
    /// Fields signed once more than they occur, so that adding one breaks
    /// the signature (§5.4.2, §8.15); this also signs their absence.
    public var overSigned: [String]
    public var headerCanonicalization: DKIMSignature.Canonicalization = .relaxed
    public var bodyCanonicalization: DKIMSignature.Canonicalization = .relaxed
    /// i=, when it should differ from "@" + domain.
    public var identity: String?
    /// x= as seconds after t=.
    public var validFor: Int64?
    /// Adds l= with the whole body length (§3.5; weakens the signature, §8.2).
    public var signBodyLength = false

    /// From first, then the fields §5.4.1 recommends.
    public static let defaultHeaders = [
        "from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to", "references",
        "mime-version", "content-type", "content-transfer-encoding", "content-disposition", "content-id",
        "content-description", "resent-date", "resent-from", "resent-sender", "resent-to", "resent-cc",
        "resent-message-id", "list-id", "list-help", "list-unsubscribe", "list-unsubscribe-post",
        "list-subscribe", "list-post", "list-owner", "list-archive", "sender", "openpgp", "autocrypt",
    ]
    /// The fields a recipient reads first: one more of them would change
    /// what the message says it is.
    public static let defaultOverSigned = ["from", "reply-to", "subject", "date", "to", "cc"]

    public init(key: DKIMPrivateKey, domain: String, selector: String,
                headers: [String] = DKIMSigner.defaultHeaders,
                overSigned: [String] = DKIMSigner.defaultOverSigned) throws(DKIMError) {
        guard DKIMBytes.isDomain(Array(domain.utf8), minLabels: 2) else { throw DKIMError(.signing, "not a domain name: \(domain.prefix(64))") }
        guard DKIMBytes.isDomain(Array(selector.utf8), minLabels: 1, allowUnderscore: true) else {
            throw DKIMError(.signing, "not a selector: \(selector.prefix(64))")
        }
        self.key = key
        self.domain = domain
        self.selector = selector
        self.headers = headers.map { $0.lowercased() }
        self.overSigned = overSigned.map { $0.lowercased() }
    }

    /// The DKIM-Signature field to put on top of `message`, CRLF included.
    /// `now` (seconds since the Unix epoch) becomes t=.
    public func sign(_ message: [UInt8], now: Int64) throws(DKIMError) -> String {
        let msg = DKIMMessage(message)
        // §5.4 / §6.1.1: From MUST be signed, so it must be there.
        guard msg.count("from") > 0 else { throw DKIMError(.signing, "the message has no From field") }
        if let identity {
            guard let at = identity.lastIndex(of: "@"),
                  DKIMVerification.isSameOrSubdomain(String(identity[identity.index(after: at)...]), of: domain) else {
                throw DKIMError(.signing, "i= must be within d=")
            }
        }
        var names: [String] = []
        for name in headers {
            let n = msg.count(name) + (overSigned.contains(name) ? 1 : 0)
            names += Array(repeating: name, count: n)
        }
        for name in overSigned where !headers.contains(name) { names += Array(repeating: name, count: msg.count(name) + 1) }

        let (bodyHash, length) = DKIMCanonicalization.bodyHash(msg.body, bodyCanonicalization, limit: nil)!
        var tags: [String] = [
            "v=1", "a=\(key.algorithm.rawValue)",
            "c=\(headerCanonicalization.rawValue)/\(bodyCanonicalization.rawValue)",
            "d=\(domain)", "s=\(selector)",
        ]
        if let identity { tags.append("i=\(identity)") }
        tags.append("t=\(now)")
        if let validFor { tags.append("x=\(now + validFor)") }
        if signBodyLength { tags.append("l=\(length)") }
        tags.append("h=" + names.joined(separator: ":"))
        tags.append("bh=" + Base64.encode(bodyHash))

        // The field with an empty b= is what gets signed (§3.7, §5.5).
        let unsigned = Self.fold(tags) + "\r\n\tb="
        let canonicalOwn = DKIMCanonicalization.header(ArraySlice(unsigned.utf8), headerCanonicalization)
        var data: [UInt8] = []
        for f in msg.select(names) { data += DKIMCanonicalization.header(msg.bytes[f.range], headerCanonicalization) }
        data += canonicalOwn
        let signature: [UInt8]
        do {
            signature = try key.sign(data)
        } catch {
            throw DKIMError(.signing, "the key could not sign")
        }
        return unsigned + Self.foldBase64(Base64.encode(signature), firstLine: 3) + "\r\n"
    }

    /// Lines of a header field are kept under 78 characters (RFC 5322 §2.1.1).
    static let lineLength = 76

    /// "DKIM-Signature: " and the tags joined by "; ", folded before a tag
    /// (or inside h= after a colon) when a line would grow too long.
    static func fold(_ tags: [String]) -> String {
        var out = "DKIM-Signature:"
        var column = out.count
        for tag in tags {
            let piece = tag + ";"
            // h= may be folded after any colon (§3.5: FWS around ":").
            let parts: [String] = tag.hasPrefix("h=") ? Self.splitAfterColons(piece) : [piece]
            for (j, part) in parts.enumerated() {
                let separator = j == 0 ? " " : ""
                if column + separator.count + part.count > lineLength {
                    out += "\r\n\t" + part
                    column = 8 + part.count
                } else {
                    out += separator + part
                    column += separator.count + part.count
                }
            }
        }
        return out
    }

    static func splitAfterColons(_ s: String) -> [String] {
        var parts: [String] = []
        var current = ""
        for ch in s {
            current.append(ch)
            if ch == ":" { parts.append(current); current = "" }
        }
        if !current.isEmpty { parts.append(current) }
        return parts
    }

    /// b= folded into lines of at most `lineLength` (§3.5 allows FWS in base64).
    static func foldBase64(_ b64: String, firstLine used: Int) -> String {
        var out = ""
        var chars = Substring(b64)
        var room = lineLength - 8 - used
        while !chars.isEmpty {
            out += chars.prefix(room)
            chars = chars.dropFirst(room)
            if !chars.isEmpty { out += "\r\n\t" }
            room = lineLength - 8
        }
        return out
    }
}
