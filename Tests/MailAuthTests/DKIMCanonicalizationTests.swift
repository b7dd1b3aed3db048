import MailAuth
import Testing

@Suite struct DKIMCanonicalizationTests {
    /// The example of RFC 6376 §3.4.5, byte for byte.
    static let example: [UInt8] = Array((
        "A: X\r\n" +
        "B : Y\t\r\n" +
        "\tZ  \r\n" +
        "\r\n" +
        " C \r\n" +
        "D \t E\r\n" +
        "\r\n" +
        "\r\n").utf8)

    @Test func rfc6376Example345Relaxed() {
        let m = DKIMMessage(Self.example)
        #expect(m.fields.count == 2)
        let headers = m.fields.flatMap { DKIMCanonicalization.header(m.bytes[$0.range], .relaxed) }
        #expect(headers == Array("a:X\r\nb:Y Z\r\n".utf8))
        #expect(DKIMCanonicalization.body(m.body, .relaxed) == Array(" C\r\nD E\r\n".utf8))
    }

    @Test func rfc6376Example345Simple() {
        let m = DKIMMessage(Self.example)
        let headers = m.fields.flatMap { DKIMCanonicalization.header(m.bytes[$0.range], .simple) }
        #expect(headers == Array("A: X\r\nB : Y\t\r\n\tZ  \r\n".utf8))
        #expect(DKIMCanonicalization.body(m.body, .simple) == Array(" C \r\nD \t E\r\n".utf8))
    }

    // §3.4.3: an empty body is one CRLF in simple; §3.4.4: empty in relaxed.
    @Test func emptyBodies() {
        #expect(DKIMCanonicalization.body([][...], .simple) == [0x0D, 0x0A])
        #expect(DKIMCanonicalization.body([][...], .relaxed) == [])
        #expect(DKIMCanonicalization.body(Array("\r\n\r\n".utf8)[...], .simple) == [0x0D, 0x0A])
        #expect(DKIMCanonicalization.body(Array(" \t\r\n\r\n".utf8)[...], .relaxed) == [])
    }

    // A last line without CRLF gets one (§3.4.3, §3.4.4); inner empty lines stay.
    @Test func missingFinalCRLFAndInnerEmptyLines() {
        #expect(DKIMCanonicalization.body(Array("a\r\n\r\nb".utf8)[...], .simple) == Array("a\r\n\r\nb\r\n".utf8))
        #expect(DKIMCanonicalization.body(Array("a  b \r\n\r\n \r\nc\t".utf8)[...], .relaxed)
                == Array("a b\r\n\r\n\r\nc\r\n".utf8))
    }

    // The RFC 8463 example body: its bh= under relaxed is known.
    @Test func rfc8463BodyHash() async throws {
        let msg = DKIMVectors.bytes("rfc8463/signed.eml")
        let key = try DKIMPrivateKey(text: DKIMVectors.text("rfc8463/ed25519.seed.b64"))
        let signer = try DKIMSigner(key: key, domain: "football.example.com", selector: "brisbane")
        let field = try signer.sign(msg, now: dkimTestNow)
        #expect(field.contains("bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="))
    }

    // Bare LF line ends are read as CRLF (§5.3, local form to network form).
    @Test func bareLFIsNetworkForm() {
        let m = DKIMMessage(Array("From: a\nTo: b\n\nbody\n".utf8))
        #expect(m.fields.map(\.name) == ["from", "to"])
        #expect(Array(m.body) == Array("body\r\n".utf8))
    }

    @Test func fieldsAndFolding() {
        let m = DKIMMessage(dkimCRLF("Subject: one\n two\nX-Empty:\nno colon here\nFrom : a\n\nbody"))
        #expect(m.fields.map(\.name) == ["subject", "x-empty", nil, "from"])
        #expect(Array(m.bytes[m.fields[0].range]) == Array("Subject: one\r\n two\r\n".utf8))
        #expect(DKIMCanonicalization.header(m.bytes[m.fields[3].range], .relaxed) == Array("from:a\r\n".utf8))
        #expect(DKIMCanonicalization.header(m.bytes[m.fields[1].range], .relaxed) == Array("x-empty:\r\n".utf8))
    }

    @Test func headerOnlyMessage() {
        let m = DKIMMessage(Array("From: a\r\nTo: b".utf8))
        #expect(m.fields.count == 2)
        #expect(m.body.isEmpty)
    }

    // §5.4.2: bottom-up, one instance per occurrence in h=, absent ones select nothing.
    @Test func bottomUpSelection() {
        let m = DKIMMessage(dkimCRLF("Received: 1\nFrom: a\nReceived: 2\nReceived: 3\nTo: b\n\n"))
        let chosen = m.select(["received", "received", "from", "cc", "from"]).map { String(decoding: m.bytes[$0.range], as: UTF8.self) }
        #expect(chosen == ["Received: 3\r\n", "Received: 2\r\n", "From: a\r\n"])
    }
}
