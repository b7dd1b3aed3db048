import Crypto
import Foundation

/// A time-based one-time password generator and checker: TOTP (RFC 6238)
/// over HOTP (RFC 4226).
///
/// The secret is stored by the control plane (encrypted at rest there);
/// this type only computes and compares codes. `description` never shows
/// the secret.
public struct TOTP: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The HMAC hash (RFC 6238 §1.2: SHA-1, SHA-256 or SHA-512).
    public enum Algorithm: String, Hashable, Sendable, CaseIterable {
        case sha1 = "SHA1"
        case sha256 = "SHA256"
        case sha512 = "SHA512"
    }

    public var secret: [UInt8]
    /// Code length; RFC 4226 §5.3 requires at least 6, and 8 is the most a
    /// 31-bit truncated value supports comfortably (RFC 4226 §5.4).
    public var digits: Int
    /// Time step X in seconds (RFC 6238 §4.1, default 30 per §5.2).
    public var period: Int
    public var algorithm: Algorithm

    public static let allowedDigits = 6...8

    public init(secret: [UInt8], digits: Int = 6, period: Int = 30, algorithm: Algorithm = .sha1) {
        precondition(TOTP.allowedDigits.contains(digits), "TOTP digits must be 6...8")
        precondition(period > 0, "TOTP period must be positive")
        self.secret = secret
        self.digits = digits
        self.period = period
        self.algorithm = algorithm
    }

    /// The recommended secret length: the HMAC output size, at least the
    /// 160 bits of RFC 4226 §4 (R6).
    public static func recommendedSecretLength(for algorithm: Algorithm) -> Int {
        switch algorithm {
        case .sha1: 20
        case .sha256: 32
        case .sha512: 64
        }
    }

    /// A fresh random secret (RFC 4226 §7.5: from a cryptographically strong source).
    public static func generateSecret(byteCount: Int = 20) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return generateSecret(byteCount: byteCount, using: &rng)
    }

    public static func generateSecret<R: RandomNumberGenerator>(byteCount: Int = 20, using rng: inout R) -> [UInt8] {
        precondition(byteCount >= 16, "RFC 4226 §4 R6: at least 128 bits")
        return (0..<byteCount).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }

    // MARK: Codes

    /// The time step counter T = floor((Unix time - T0) / X), T0 = 0 (RFC 6238 §4.2).
    /// Dates before 1970 count as step 0.
    public func counter(at date: Date) -> Int64 {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        guard seconds > 0 else { return 0 }
        guard seconds < 9.0e18 else { return Int64.max / Int64(period) }
        return Int64(seconds) / Int64(period)
    }

    /// The code for the time step containing `date` (RFC 6238 §4.2).
    public func code(at date: Date) -> String {
        code(counter: counter(at: date))
    }

    /// The HOTP value for a counter (RFC 4226 §5.3), zero-padded to `digits`.
    public func code(counter: Int64) -> String {
        let value = TOTP.truncatedValue(secret: secret, counter: UInt64(bitPattern: counter), algorithm: algorithm)
        let modulus = (0..<digits).reduce(UInt32(1)) { r, _ in r * 10 }
        let number = String(value % modulus)
        return String(repeating: "0", count: digits - number.count) + number
    }

    /// HMAC of the 8-byte big-endian counter (RFC 4226 §5.3 step 1), then
    /// dynamic truncation to a 31-bit number (§5.3 step 2, §5.4).
    static func truncatedValue(secret: [UInt8], counter: UInt64, algorithm: Algorithm) -> UInt32 {
        let message = (0..<8).map { UInt8(truncatingIfNeeded: counter >> UInt64(56 - 8 * $0)) }
        let key = SymmetricKey(data: secret)
        let mac: [UInt8]
        switch algorithm {
        case .sha1: mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: key))
        case .sha256: mac = Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
        case .sha512: mac = Array(HMAC<SHA512>.authenticationCode(for: message, using: key))
        }
        // RFC 4226 §5.4: the offset is the low 4 bits of the last byte; RFC 6238
        // §1.2 applies the same truncation to the longer SHA-2 outputs.
        let offset = Int(mac[mac.count - 1] & 0x0F)
        return UInt32(mac[offset] & 0x7F) << 24 | UInt32(mac[offset + 1]) << 16
            | UInt32(mac[offset + 2]) << 8 | UInt32(mac[offset + 3])
    }

    // MARK: Verification

    /// Checks a submitted code against the time steps `window` either side of
    /// `date` (RFC 6238 §5.2 allows for clock drift and transmission delay) and
    /// returns the matching step. Callers store it and pass it back as
    /// `lastUsedCounter`, so that a code seen once is refused after (RFC 6238
    /// §5.2: "the verifier MUST NOT accept the second attempt of the OTP").
    ///
    /// Spaces in the submitted code are ignored ("123 456"). Every candidate
    /// step is compared in constant time and all are compared, so the time
    /// taken does not say which step matched.
    public func match(_ code: String, at date: Date, window: Int = 1, lastUsedCounter: Int64? = nil) -> Int64? {
        let submitted = Array(code.utf8.filter { $0 != UInt8(ascii: " ") })
        guard submitted.count == digits, submitted.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        let window = max(0, min(window, 10))
        let current = counter(at: date)
        var found: Int64?
        for delta in -Int64(window)...Int64(window) {
            let (candidate, overflow) = current.addingReportingOverflow(delta)
            guard !overflow, candidate >= 0 else { continue }
            let expected = Array(self.code(counter: candidate).utf8)
            if ConstantTime.equals(expected, submitted), found == nil {
                if let last = lastUsedCounter, candidate <= last { continue }
                found = candidate
            }
        }
        return found
    }

    /// True when `code` matches a step within `window` of `date`. Prefer
    /// `match` where a used step can be recorded.
    public func verify(_ code: String, at date: Date, window: Int = 1) -> Bool {
        match(code, at: date, window: window) != nil
    }

    // MARK: Enrolment

    /// The Key Uri Format used by authenticator apps:
    /// `otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=SHA1&digits=6&period=30`.
    /// Label parts and parameters are percent-encoded (RFC 3986 §2.1); only
    /// unreserved characters (§2.3) are left as they are. The secret is
    /// unpadded Base32 (RFC 4648 §6).
    public func otpauthURL(issuer: String, account: String) -> String {
        let label = TOTP.percentEncode(issuer) + ":" + TOTP.percentEncode(account)
        let query = [
            ("secret", Base32.encode(secret, padding: false)),
            ("issuer", issuer),
            ("algorithm", algorithm.rawValue),
            ("digits", String(digits)),
            ("period", String(period)),
        ].map { $0.0 + "=" + TOTP.percentEncode($0.1) }.joined(separator: "&")
        return "otpauth://totp/" + label + "?" + query
    }

    /// Percent-encodes UTF-8 bytes outside RFC 3986 §2.3's unreserved set.
    static func percentEncode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(b)
            default:
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String {
        "TOTP(\(algorithm.rawValue), \(digits) digits, \(period)s, secret: \(secret.count) bytes)"
    }

    public var debugDescription: String { description }
}
