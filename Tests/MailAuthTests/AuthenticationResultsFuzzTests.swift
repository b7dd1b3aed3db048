import MailAuth
import TestSupport
import Testing

/// Random and mutated inputs into every parser of SPF, DMARC and
/// Authentication-Results: nothing traps, and what parses encodes to text
/// that parses to the same value. Seeded, so failures repeat.
@Suite struct AuthenticationResultsFuzzTests {
    static let seeds: [String] = [
        "v=spf1 ip4:192.0.2.0/24 a:mail.%{d}/28//64 mx -ptr ?exists:%{ir}.%{l1r+-}.x.example include:a.example ~all redirect=b.example exp=c.%{d2} x=%{h}",
        "v=DMARC1; p=reject; sp=none; adkim=s; aspf=r; pct=30; rua=mailto:a@example.org!10m; ruf=mailto:b@example.org; fo=1:d; ri=60",
        "mx.example.net 1; spf=pass (comment (nested)) smtp.mailfrom=a@example.org; dkim/1=fail reason=\"bad sig\" header.d=example.org header.b=\"ab/c=\"; dmarc=none header.from=example.org",
    ]

    static func mutate(_ s: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var b = s
        let alphabet = Array("%{}()\";:=/.@!-+, \t\r\nvVaA0129".utf8) + [0x00, 0x7F, 0xC3, 0xA9, 0xFF]
        for _ in 0..<Int.random(in: 1...6, using: &rng) {
            guard !b.isEmpty else { b = [alphabet.randomElement(using: &rng)!]; continue }
            let i = Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: b[i] = alphabet.randomElement(using: &rng)!
            case 1: b.insert(alphabet.randomElement(using: &rng)!, at: i)
            case 2: b.remove(at: i)
            default: b = Array(b[..<i]) + Array(b[i...].prefix(Int.random(in: 0...20, using: &rng)))
            }
        }
        return b
    }

    @Test func mutatedInputs() throws {
        var rng = SeededGenerator(seed: 7208)
        for _ in 0..<4000 {
            for (n, seed) in Self.seeds.enumerated() {
                let input = Self.mutate(Array(seed.utf8), &rng)
                let text = String(decoding: input, as: UTF8.self)
                switch n {
                case 0:
                    if let r = try? SPFRecord.parse(input) {
                        #expect(try SPFRecord.parse(Array(r.description.utf8)) == r, "\(text)")
                    }
                case 1:
                    if let r = try? DMARCRecord.parse(text) {
                        #expect(try DMARCRecord.parse(r.description) == r, "\(text)")
                    }
                default:
                    if let r = AuthenticationResults.parse(text) {
                        #expect(AuthenticationResults.parse(r.encoded()) == r, "\(text)")
                    }
                    _ = AuthenticationResults.authservID(of: text)
                }
                _ = try? SPFMacroString.parse(Substring(text), explanation: true)
                _ = IPAddress(text)
            }
        }
    }
}
