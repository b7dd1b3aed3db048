import MailCore

/// A DKIM key record, the TXT data at `selector._domainkey.domain`
/// (RFC 6376 §3.6.1):
///
///     v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA...
///     v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
///
/// Unknown tags are ignored; n= (notes) is not kept.
public struct DKIMKeyRecord: Hashable, Sendable {
    /// h=: acceptable hash algorithms; nil means all (§3.6.1).
    public var hashAlgorithms: [String]?
    /// k=: the key type, lowercased; "rsa" when absent (§3.6.1, RFC 8463 §4).
    public var keyType: String
    /// p=: the public key data, decoded; empty when revoked (§3.6.1).
    public var publicKey: [UInt8]
    /// s=: service types; "*" when absent (§3.6.1).
    public var serviceTypes: [String]
    /// t=y: the domain is testing DKIM (§3.6.1).
    public var testing: Bool
    /// t=s: i= must use d= exactly, no subdomain (§3.6.1).
    public var strict: Bool

    /// An empty p= means the key was revoked (§3.6.1).
    public var isRevoked: Bool { publicKey.isEmpty }

    public init(hashAlgorithms: [String]? = nil, keyType: String = "rsa", publicKey: [UInt8],
                serviceTypes: [String] = ["*"], testing: Bool = false, strict: Bool = false) {
        self.hashAlgorithms = hashAlgorithms
        self.keyType = keyType
        self.publicKey = publicKey
        self.serviceTypes = serviceTypes
        self.testing = testing
        self.strict = strict
    }

    /// Parses TXT data (the record's strings already joined, §3.6.2.2).
    public init(_ txt: [UInt8]) throws(DKIMError) {
        let tags = try DKIMTagList.parse(txt)
        // v= is optional, but when present it MUST be first and "DKIM1" (§3.6.1).
        if let v = tags.tag("v") {
            guard tags.tags.first?.name == "v", v.value == Array("DKIM1".utf8) else {
                throw DKIMError(.syntax, "key record v= is not DKIM1 or not first")
            }
        }
        func list(_ name: String) -> [String]? {
            tags.text(name).map { v in
                v.split(separator: ":").map { String($0).trimmingFWS().lowercased() }.filter { !$0.isEmpty }
            }
        }
        hashAlgorithms = list("h")
        keyType = tags.text("k").map { $0.trimmingFWS().lowercased() } ?? "rsa"
        serviceTypes = list("s") ?? ["*"]
        let flags = list("t") ?? []
        testing = flags.contains("y")
        strict = flags.contains("s")
        guard let p = tags["p"] else { throw DKIMError(.syntax, "key record has no p=") }
        if p.allSatisfy(DKIMBytes.isFWS) {
            publicKey = []
        } else {
            guard let key = DKIMBytes.base64(p) else { throw DKIMError(.key, "key record p= is not base64") }
            publicKey = key
        }
    }

    /// The TXT value that publishes this record.
    public var text: String {
        var parts = ["v=DKIM1"]
        if let h = hashAlgorithms { parts.append("h=" + h.joined(separator: ":")) }
        parts.append("k=" + keyType)
        if serviceTypes != ["*"] { parts.append("s=" + serviceTypes.joined(separator: ":")) }
        var flags: [String] = []
        if testing { flags.append("y") }
        if strict { flags.append("s") }
        if !flags.isEmpty { parts.append("t=" + flags.joined(separator: ":")) }
        parts.append("p=" + Base64.encode(publicKey))
        return parts.joined(separator: "; ")
    }
}

extension String {
    func trimmingFWS() -> String {
        String(decoding: DKIMBytes.trimmed(ArraySlice(self.utf8)), as: UTF8.self)
    }
}
