import MailCore
import NIOCore
import Testing

@Suite struct MailAddressTests {
    func path(_ s: String, utf8: Bool = true) -> MailAddress? {
        var p = AddressParser(Array(s.utf8), utf8Allowed: utf8)
        guard let m = p.path(), p.atEnd else { return nil }
        return m
    }

    @Test func plainMailbox() {
        let m = path("<Smith@Bar.COM>")!
        #expect(m.localPart == "Smith")
        #expect(m.domain == "bar.com")
        #expect(m.lookupKey == "smith@bar.com")
    }

    /// RFC 5321 §4.1.2 / §C: source routes are accepted and dropped.
    @Test func sourceRouteIsDropped() {
        let m = path("<@hosta.int,@jkl.org:userc@d.bar.org>")!
        #expect(m.description == "userc@d.bar.org")
    }

    @Test func quotedLocalPart() {
        let m = path("<\"user@other.test\"@example.test>")!
        #expect(m.wasQuoted)
        #expect(m.localPart == "user@other.test")
        #expect(m.description == "\"user@other.test\"@example.test")
        let escaped = path("<\"a\\\"b\"@example.test>")!
        #expect(escaped.localPart == "a\"b")
    }

    @Test func addressLiterals() {
        #expect(path("<user@[127.0.0.1]>")!.isAddressLiteral)
        #expect(path("<user@[IPv6:::1]>")!.domain == "[ipv6:::1]")
    }

    @Test(arguments: ["<>", "<user>", "<@example.test>", "<user@>", "<user@-bad.test>", "<user@bad-.test>",
                      "<user@example.test.>", "<us..er@example.test>", "<.user@example.test>", "<user.@example.test>",
                      "user@example.test", "<user@example.test", "<a@b@c.test>", "<user@exa mple.test>",
                      "<\"unterminated@example.test>", "<user@example..test>"])
    func rejected(_ s: String) {
        #expect(path(s) == nil)
    }

    /// RFC 5321 §4.5.3.1.1: local part at most 64 octets.
    @Test func localPartLimit() {
        #expect(path("<" + String(repeating: "a", count: 64) + "@example.test>") != nil)
        #expect(path("<" + String(repeating: "a", count: 65) + "@example.test>") == nil)
    }

    /// RFC 6531 §3.3: UTF-8 only when allowed.
    @Test func utf8Addresses() {
        #expect(path("<jörg@bücher.example>", utf8: false) == nil)
        let m = path("<jörg@bücher.example>")!
        #expect(!m.isASCII)
        #expect(m.domain == "bücher.example")
    }

    @Test func nullReversePath() {
        var p = AddressParser(Array("<>".utf8), utf8Allowed: false)
        #expect(p.reversePath() == .null)
    }
}

@Suite struct ProxyHeaderTests {
    @Test func roundTripIPv4() throws {
        let bytes = ProxyHeader.encode(sourceHost: "203.0.113.7", sourcePort: 4444, destinationHost: "127.0.0.1", destinationPort: 25)!
        // The signature, version 2 PROXY, TCP over IPv4, 12 address bytes.
        #expect(Array(bytes.prefix(16)) == ProxyHeader.signature + [0x21, 0x11, 0x00, 0x0C])
        var buffer = ByteBufferHelpers.make(bytes + Array("EHLO x\r\n".utf8))
        let header = try #require(try ProxyHeader.parse(&buffer))
        #expect(header.sourceHost == "203.0.113.7")
        #expect(header.sourcePort == 4444)
        #expect(header.destinationPort == 25)
        #expect(buffer.readableBytes == 8)
    }

    @Test func roundTripIPv6() throws {
        let bytes = ProxyHeader.encode(sourceHost: "2001:db8::7", sourcePort: 1, destinationHost: "::1", destinationPort: 587)!
        var buffer = ByteBufferHelpers.make(bytes)
        let header = try #require(try ProxyHeader.parse(&buffer))
        #expect(header.sourceHost == "2001:db8:0:0:0:0:0:7")
        #expect(header.destinationHost == "0:0:0:0:0:0:0:1")
    }

    /// Incremental: every prefix needs more bytes and consumes nothing.
    @Test func dripFeed() throws {
        let bytes = ProxyHeader.encode(sourceHost: "192.0.2.1", sourcePort: 9, destinationHost: "192.0.2.2", destinationPort: 25)!
        for n in 0..<bytes.count {
            var b = ByteBufferHelpers.make(Array(bytes.prefix(n)))
            #expect(try ProxyHeader.parse(&b) == nil)
            #expect(b.readableBytes == n)
        }
    }

    @Test func garbageFailsEarly() {
        var b = ByteBufferHelpers.make(Array("EHLO x\r\n".utf8))
        #expect(throws: ProxyHeader.ParseError.badSignature) { try ProxyHeader.parse(&b) }
        var v1 = ByteBufferHelpers.make(Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8))
        #expect(throws: ProxyHeader.ParseError.badSignature) { try ProxyHeader.parse(&v1) }
    }

    @Test func localCommand() throws {
        var b = ByteBufferHelpers.make(ProxyHeader.signature + [0x20, 0x00, 0x00, 0x00])
        let h = try #require(try ProxyHeader.parse(&b))
        #expect(h.command == .local)
        #expect(h.sourceHost == nil)
    }

    @Test func peerMatching() {
        #expect(PeerMatcher("127.0.0.0/8")!.matches(host: "127.1.2.3"))
        #expect(!PeerMatcher("127.0.0.0/8")!.matches(host: "128.0.0.1"))
        #expect(PeerMatcher("10.1.0.0/17")!.matches(host: "10.1.127.255"))
        #expect(!PeerMatcher("10.1.0.0/17")!.matches(host: "10.1.128.0"))
        #expect(PeerMatcher("127.0.0.1")!.matches(host: "::ffff:127.0.0.1"))
        #expect(PeerMatcher("::1/128")!.matches(host: "::1"))
        #expect(PeerMatcher("unix")!.matches(host: nil))
        #expect(!PeerMatcher("unix")!.matches(host: "127.0.0.1"))
        #expect(PeerMatcher("300.1.1.1") == nil)
    }
}

@Suite struct PasswordHashTests {
    @Test func makeVerifyAndParse() throws {
        let h = try PasswordHash.make(password: "correct horse", log2N: 10)
        #expect(h.verify("correct horse"))
        #expect(!h.verify("correct horsf"))
        let parsed = try PasswordHash(parsing: h.description)
        #expect(parsed == h)
        #expect(h.description.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
    }

    /// RFC 7914 §12, the second test vector ("password", "NaCl", N=1024, r=8, p=16).
    @Test func rfc7914Vector() throws {
        let expected: [UInt8] = [0xfd, 0xba, 0xbe, 0x1c, 0x9d, 0x34, 0x72, 0x00, 0x78, 0x56, 0xe7, 0x19, 0x0d, 0x01, 0xe9, 0xfe,
                                 0x7c, 0x6a, 0xd7, 0xcb, 0xc8, 0x23, 0x78, 0x30, 0xe7, 0x73, 0x76, 0x63, 0x4b, 0x37, 0x31, 0x62,
                                 0x2e, 0xaf, 0x30, 0xd9, 0x2e, 0x22, 0xa3, 0x88, 0x6f, 0xf1, 0x09, 0x27, 0x9d, 0x98, 0x30, 0xda,
                                 0xc7, 0x27, 0xaf, 0xb9, 0x4a, 0x83, 0xee, 0x6d, 0x83, 0x60, 0xcb, 0xdf, 0xa2, 0xcc, 0x06, 0x40]
        let h = PasswordHash(log2N: 10, r: 8, p: 16, salt: Array("NaCl".utf8), hash: expected)
        #expect(h.verify("password"))
    }

    @Test(arguments: ["", "plain", "$scrypt$ln=14$abc$def", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "$scrypt$ln=99,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"])
    func rejectsMalformed(_ text: String) {
        #expect(throws: (any Error).self) { try PasswordHash(parsing: text) }
    }
}
