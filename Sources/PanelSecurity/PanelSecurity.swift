/// PanelSecurity: the small security values the control-plane panels use.
///
/// - `TOTP`, `Base32`: second factor codes (RFC 6238 over RFC 4226) and the
///   authenticator enrolment URI.
/// - `PasswordPolicy`: libpwquality plus our own checks; verdicts are values.
/// - `SelfSignedCertificate`: the panel's first-start TLS certificate.
/// - `LoginThrottle`: failure counting per account and per address.
/// - `CSRFToken`, `SessionToken`: form tokens and session / API token ids.
///
/// Nothing here does network I/O; clocks and randomness come from callers
/// where tests need to fix them. No function logs a secret.
enum ConstantTime {
    /// Compares two byte sequences in time that depends only on their lengths.
    static func equals<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }
}

/// Base64url without padding (RFC 4648 §5), for tokens placed in URLs,
/// cookies and form fields.
enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    static func encode<C: Collection<UInt8>>(_ input: C) -> String {
        let bytes = Array(input)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v: UInt32 = 0
            for j in 0..<3 { v = v << 8 | UInt32(j < n ? bytes[i + j] : 0) }
            // n input bytes give n + 1 characters; no '=' (RFC 4648 §3.2 allows omitting it).
            for j in 0...n { out.append(alphabet[Int(v >> UInt32(18 - 6 * j) & 0x3F)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes unpadded base64url; nil on any character outside the alphabet,
    /// an impossible length, or non-zero leftover bits (canonical form only).
    static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(input.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for c in input {
            let d = table[Int(c)]
            if d == 0xFF { return nil }
            buffer = buffer << 6 | UInt32(d)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(buffer >> UInt32(bits) & 0xFF))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        guard buffer == 0 else { return nil }
        return out
    }
}
