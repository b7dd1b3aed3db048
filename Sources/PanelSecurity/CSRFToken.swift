import Crypto

/// Anti-forgery tokens for panel forms: HMAC-SHA256 (RFC 2104) under a
/// secret kept with the session, over the session id and the form's purpose,
/// as unpadded base64url (RFC 4648 §5). A token is bound to one session and
/// one purpose ("delete-mailbox"), so a token leaked from one form cannot
/// authorise another, and a new session invalidates every old token.
///
///     let csrf = CSRFToken(secret: session.csrfSecret)
///     form.hidden("csrf", csrf.token(sessionID: session.id, purpose: "change-password"))
///     guard csrf.verify(posted, sessionID: session.id, purpose: "change-password") else { 403 }
public struct CSRFToken: Sendable {
    /// The per-session key; make it with `generateSecret()` when the session starts.
    public var secret: [UInt8]

    public init(secret: [UInt8]) {
        precondition(secret.count >= 16, "a CSRF secret needs at least 128 bits")
        self.secret = secret
    }

    /// 32 random bytes.
    public static func generateSecret() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return generateSecret(using: &rng)
    }

    public static func generateSecret<R: RandomNumberGenerator>(using rng: inout R) -> [UInt8] {
        (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }

    /// The token for a form: 43 characters of [A-Za-z0-9_-].
    public func token(sessionID: String, purpose: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: CSRFToken.message(sessionID: sessionID, purpose: purpose),
                                                  using: SymmetricKey(data: secret))
        return Base64URL.encode(Array(mac))
    }

    /// Checks a submitted token; the MAC comparison is constant-time.
    public func verify(_ token: String, sessionID: String, purpose: String) -> Bool {
        guard token.utf8.count == 43, let mac = Base64URL.decode(token) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: CSRFToken.message(sessionID: sessionID, purpose: purpose),
                                                      using: SymmetricKey(data: secret))
    }

    /// A label, then each field with a 4-byte length before it, so that no
    /// two (session, purpose) pairs give the same bytes.
    static func message(sessionID: String, purpose: String) -> [UInt8] {
        var out = Array("postcell-csrf-v1".utf8)
        for field in [sessionID, purpose] {
            let bytes = Array(field.utf8)
            let n = UInt32(truncatingIfNeeded: bytes.count)
            out += [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
            out += bytes
        }
        return out
    }
}
