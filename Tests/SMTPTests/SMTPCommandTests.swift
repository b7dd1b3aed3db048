import MailCore
import SMTP
import Testing

@Suite struct SMTPCommandTests {
    func parse(_ s: String) -> Result<SMTPCommand, SMTPReply> { SMTPCommandParser.parse(Array(s.utf8)) }

    @Test func verbsAreCaseInsensitive() throws {
        #expect(try parse("ehlo client.example").get() == .ehlo("client.example"))
        #expect(try parse("HeLo client.example").get() == .helo("client.example"))
        #expect(try parse("quit").get() == .quit)
        #expect(try parse("STARTTLS").get() == .startTLS)
    }

    /// RFC 5321 §4.1.1.2, §4.1.1.3 with RFC 1870 SIZE and RFC 6152 BODY.
    @Test func mailAndRcpt() throws {
        guard case .mail(let path, let p) = try parse("MAIL FROM:<Smith@bar.com> SIZE=1000 BODY=8BITMIME").get() else {
            Issue.record("not MAIL"); return
        }
        #expect(path.address?.description == "Smith@bar.com")
        #expect(p.size == 1000)
        #expect(p.body == .eightBitMIME)
        #expect(try parse("MAIL FROM:<>").get() == .mail(.null, MailParameters()))
        #expect(try parse("RCPT TO:<Jones@foo.com>").get() == .rcpt(.mailbox(MailAddress(localPart: "Jones", domain: "foo.com")), [:]))
        #expect(try parse("RCPT TO:<Postmaster>").get() == .rcpt(.postmaster, [:]))
        // Tolerated: a space after the colon.
        #expect((try? parse("MAIL FROM: <a@b.example>").get()) != nil)
    }

    @Test(arguments: [
        ("MAIL FROM:a@b.example", SMTPReply.badSender),
        ("MAIL FROM:<a@b.example", .badSender),
        ("MAIL FROM:<a@b.example> SIZE=abc", .syntax),
        ("MAIL FROM:<a@b.example> BODY=9BIT", .unsupportedParameter),
        ("MAIL FROM:<a@b.example> RET=FULL", .unsupportedParameter),
        ("MAIL FROM:<jörg@b.example>", .needUTF8),
        ("MAIL TO:<a@b.example>", .syntax),
        ("RCPT TO:<a@b.example> NOTIFY=NEVER", .unsupportedParameter),
        ("RCPT TO:<<a@b.example>", .badRecipient),
        ("RCPT TO:", .badRecipient),
        ("EHLO", .syntaxHelo),
        ("HELO ", .syntaxHelo),
        ("DATA now", .syntax),
        ("BDAT", .syntax),
        ("BDAT 10 NOTLAST", .syntax),
        ("BDAT -1", .syntax),
        ("FROB", .unknownCommand),
        ("MAIL\u{0}FROM:<a@b.example>", .nulInCommand),
    ])
    func badCommands(_ line: String, _ reply: SMTPReply) {
        #expect(parse(line) == .failure(reply))
    }

    @Test func bdatAndAuth() throws {
        #expect(try parse("BDAT 1000").get() == .bdat(size: 1000, last: false))
        #expect(try parse("BDAT 0 LAST").get() == .bdat(size: 0, last: true))
        #expect(try parse("AUTH plain AGFsaWNlAHB3").get() == .auth(mechanism: "PLAIN", initialResponse: "AGFsaWNlAHB3"))
        #expect(try parse("AUTH LOGIN").get() == .auth(mechanism: "LOGIN", initialResponse: nil))
    }

    @Test func replyEncoding() {
        #expect(SMTPReply.ok.description == "250 2.0.0 Ok\r\n")
        #expect(SMTPReply(250, nil, ["mx.example", "PIPELINING", "SIZE 10"]).description == "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n")
        #expect(SMTPReply(550, "5.1.1", ["a", "b"]).description == "550-5.1.1 a\r\n550 5.1.1 b\r\n")
    }

    /// RFC 4648 §10 test vectors.
    @Test func base64Vectors() {
        let vectors = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
        for (plain, encoded) in vectors {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(Array(encoded.utf8)) == Array(plain.utf8))
        }
        #expect(Base64.decode(Array("Zm9v=".utf8)) == nil)
        #expect(Base64.decode(Array("Zg==Zg==".utf8)) == nil)
        #expect(Base64.decode(Array("Z!==".utf8)) == nil)
    }
}
