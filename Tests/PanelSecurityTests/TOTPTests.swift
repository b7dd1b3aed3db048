import Foundation
import Testing
@testable import PanelSecurity

@Suite struct TOTPTests {
    static let rfcSecret20 = Array("12345678901234567890".utf8)
    static let rfcSecret32 = Array("12345678901234567890123456789012".utf8)
    static let rfcSecret64 = Array("1234567890123456789012345678901234567890123456789012345678901234".utf8)

    // RFC 4226 Appendix D: the truncated decimal value and the 6-digit HOTP
    // for counts 0-9 with the ASCII secret "12345678901234567890".
    static let hotpVectors: [(Int64, UInt32, String)] = [
        (0, 1284755224, "755224"), (1, 1094287082, "287082"), (2, 137359152, "359152"),
        (3, 1726969429, "969429"), (4, 1640338314, "338314"), (5, 868254676, "254676"),
        (6, 1918287922, "287922"), (7, 82162583, "162583"), (8, 673399871, "399871"),
        (9, 645520489, "520489"),
    ]

    @Test(arguments: hotpVectors)
    func rfc4226AppendixD(count: Int64, truncated: UInt32, code: String) {
        #expect(TOTP.truncatedValue(secret: Self.rfcSecret20, counter: UInt64(count), algorithm: .sha1) == truncated)
        #expect(TOTP(secret: Self.rfcSecret20).code(counter: count) == code)
    }

    // RFC 6238 Appendix B: 8-digit codes, 30-second steps, one seed per hash.
    static let totpVectors: [(TimeInterval, String, String, String)] = [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ]

    @Test(arguments: totpVectors)
    func rfc6238AppendixB(time: TimeInterval, sha1: String, sha256: String, sha512: String) {
        let date = Date(timeIntervalSince1970: time)
        #expect(TOTP(secret: Self.rfcSecret20, digits: 8, algorithm: .sha1).code(at: date) == sha1)
        #expect(TOTP(secret: Self.rfcSecret32, digits: 8, algorithm: .sha256).code(at: date) == sha256)
        #expect(TOTP(secret: Self.rfcSecret64, digits: 8, algorithm: .sha512).code(at: date) == sha512)
    }

    @Test func rfc6238TimeSteps() {
        // RFC 6238 Appendix B lists T (hex) for each time.
        let totp = TOTP(secret: Self.rfcSecret20)
        #expect(totp.counter(at: Date(timeIntervalSince1970: 59)) == 0x1)
        #expect(totp.counter(at: Date(timeIntervalSince1970: 1111111109)) == 0x23523EC)
        #expect(totp.counter(at: Date(timeIntervalSince1970: 20000000000)) == 0x27BC86AA)
        #expect(totp.counter(at: Date(timeIntervalSince1970: -5)) == 0)
    }

    @Test func sixDigitCodesArePaddedWithZeros() {
        // Count 7 of RFC 4226 Appendix D truncates to 82162583: 8 digits "82162583",
        // 6 digits "162583"; a 6-digit value below 100000 must keep its zeros.
        let totp = TOTP(secret: Self.rfcSecret20, digits: 8)
        #expect(totp.code(counter: 7) == "82162583")
        // 1111111109 gives 07081804 in RFC 6238 Appendix B: the leading zero stays.
        #expect(totp.code(at: Date(timeIntervalSince1970: 1111111109)).first == "0")
    }

    @Test func matchAcceptsTheWindowAndReturnsTheStep() {
        let totp = TOTP(secret: Self.rfcSecret20)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let step = totp.counter(at: now)
        #expect(totp.match(totp.code(counter: step), at: now) == step)
        #expect(totp.match(totp.code(counter: step - 1), at: now) == step - 1)
        #expect(totp.match(totp.code(counter: step + 1), at: now) == step + 1)
        #expect(totp.match(totp.code(counter: step - 2), at: now) == nil)
        #expect(totp.match(totp.code(counter: step + 2), at: now) == nil)
        #expect(totp.match(totp.code(counter: step - 2), at: now, window: 2) == step - 2)
        #expect(totp.match(totp.code(counter: step - 1), at: now, window: 0) == nil)
        #expect(totp.verify(totp.code(at: now), at: now))
    }

    @Test func usedStepsAreRefused() {
        // RFC 6238 §5.2: a code must not be accepted twice.
        let totp = TOTP(secret: Self.rfcSecret20)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let code = totp.code(at: now)
        let used = totp.match(code, at: now)
        #expect(used != nil)
        #expect(totp.match(code, at: now.addingTimeInterval(10), lastUsedCounter: used) == nil)
        // The next step's code is still fine.
        let next = totp.code(at: now.addingTimeInterval(30))
        #expect(totp.match(next, at: now.addingTimeInterval(30), lastUsedCounter: used) == used! + 1)
        // And an older step than the used one is refused too.
        let previous = totp.code(counter: used! - 1)
        #expect(totp.match(previous, at: now, lastUsedCounter: used) == nil)
    }

    @Test func malformedCodesAreRefused() {
        let totp = TOTP(secret: Self.rfcSecret20)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let code = totp.code(at: now)
        #expect(totp.verify(String(code.prefix(3)) + " " + String(code.dropFirst(3)), at: now))
        #expect(!totp.verify(String(code.dropLast()), at: now))
        #expect(!totp.verify(code + "0", at: now))
        #expect(!totp.verify("", at: now))
        #expect(!totp.verify("12345a", at: now))
        #expect(!totp.verify("١٢٣٤٥٦", at: now))  // non-ASCII digits
    }

    @Test func otpauthURL() {
        let totp = TOTP(secret: Array("foobar".utf8) + Array(repeating: 0, count: 14))
        let url = totp.otpauthURL(issuer: "Postcell", account: "alice@example.com")
        let secret = Base32.encode(totp.secret, padding: false)
        #expect(secret == "MZXW6YTBOIAAAAAAAAAAAAAAAAAAAAAA")
        #expect(url == "otpauth://totp/Postcell:alice%40example.com?secret=\(secret)&issuer=Postcell&algorithm=SHA1&digits=6&period=30")

        let spaced = TOTP(secret: totp.secret, digits: 8, period: 60, algorithm: .sha256)
            .otpauthURL(issuer: "Acme Mail & Co", account: "bob smith:ü@example.org")
        #expect(spaced == "otpauth://totp/Acme%20Mail%20%26%20Co:bob%20smith%3A%C3%BC%40example.org?secret=\(secret)&issuer=Acme%20Mail%20%26%20Co&algorithm=SHA256&digits=8&period=60")
        // Foundation parses it back to the same parts.
        let parsed = URLComponents(string: spaced)
        #expect(parsed?.scheme == "otpauth")
        #expect(parsed?.host == "totp")
        #expect(parsed?.path == "/Acme Mail & Co:bob smith:ü@example.org")
        #expect(parsed?.queryItems?.first(where: { $0.name == "issuer" })?.value == "Acme Mail & Co")
    }

    @Test func generatedSecrets() {
        let a = TOTP.generateSecret()
        let b = TOTP.generateSecret()
        #expect(a.count == 20)
        #expect(a != b)
        #expect(TOTP.generateSecret(byteCount: 32).count == 32)
        #expect(TOTP.recommendedSecretLength(for: .sha512) == 64)
        // A generated secret survives the trip through its Base32 text.
        #expect(Base32.decode(Base32.encode(a, padding: false).lowercased()) == a)
    }

    @Test func descriptionHidesTheSecret() {
        let totp = TOTP(secret: Self.rfcSecret20)
        let text = "\(totp) \(String(reflecting: totp))"
        #expect(!text.contains("49, 50"))       // the bytes of "12"
        #expect(!text.contains(Base32.encode(Self.rfcSecret20, padding: false)))
        #expect(text.contains("20 bytes"))
    }
}
