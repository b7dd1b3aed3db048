import Crypto

/// Session ids and API tokens: 256 random bits as unpadded base64url
/// (RFC 4648 §5), 43 characters.
///
/// The database keeps only `storageHash` (SHA-256, hex) of a token: a
/// leaked table holds nothing a client can present, and lookups by hash
/// leak nothing useful through timing. The token itself is shown to the
/// client once (cookie, API key page) and never logged; `description`
/// shows only a short prefix of the hash.
public struct SessionToken: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The token as the client presents it.
    public let value: String

    public static let byteCount = 32
    public static let textLength = 43

    /// A fresh random token.
    public static func generate() -> SessionToken {
        var rng = SystemRandomNumberGenerator()
        return generate(using: &rng)
    }

    public static func generate<R: RandomNumberGenerator>(using rng: inout R) -> SessionToken {
        let bytes = (0..<byteCount).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        return SessionToken(trusted: Base64URL.encode(bytes))
    }

    /// A token presented by a client; nil unless it has the shape of one of
    /// ours (43 base64url characters decoding to 32 bytes), so that garbage
    /// is refused before any lookup.
    public init?(parsing text: String) {
        guard text.utf8.count == SessionToken.textLength,
              let bytes = Base64URL.decode(text), bytes.count == SessionToken.byteCount
        else { return nil }
        self.value = text
    }

    init(trusted value: String) { self.value = value }

    /// SHA-256 of the token's text, lower-case hex: the database key.
    public var storageHash: String { SessionToken.storageHash(of: value) }

    /// SHA-256 of any token's text, lower-case hex (also for API tokens with
    /// a prefix of their own).
    public static func storageHash(of token: String) -> String {
        let digest = SHA256.hash(data: Array(token.utf8))
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in digest { out += [hex[Int(b >> 4)], hex[Int(b & 0x0F)]] }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { "SessionToken(hash \(storageHash.prefix(8))…)" }
    public var debugDescription: String { description }
}
