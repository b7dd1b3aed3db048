import MailAuth
import Testing

/// Records, macros and addresses as values: parse, encode, round-trip.
@Suite struct SPFGrammarTests {
    static let v4 = SPFMacroContext(sender: "strong-bad@email.example.com", domain: "email.example.com",
                                    ip: IPAddress("192.0.2.3")!, helo: "mx.example.org", validatedName: nil,
                                    receiver: "mx.example.net", timestamp: 1_400_000_000)

    // RFC 7208 §7.4: the examples, with <sender> strong-bad@email.example.com and <ip> 192.0.2.3.
    @Test(arguments: [
        ("%{s}", "strong-bad@email.example.com"), ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"), ("%{d4}", "email.example.com"), ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"), ("%{d1}", "com"), ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"), ("%{l}", "strong-bad"), ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"), ("%{lr-}", "bad.strong"), ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
    ])
    func rfcMacroExamples(_ macro: String, _ expanded: String) throws {
        #expect(try SPFMacroString.parse(Substring(macro)).expand(Self.v4) == expanded)
    }

    @Test func ipv6MacroExample() throws {
        var c = Self.v4
        c.ip = IPAddress("2001:db8::cb01")!
        #expect(try SPFMacroString.parse("%{ir}.%{v}._spf.%{d2}").expand(c)
                == "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com")
    }

    @Test func explanationLettersEscapesAndURLEscaping() throws {
        let exp = try SPFMacroString.parse("%{c} at %{t} via %{r}: %% %_%-%{L}", explanation: true)
        #expect(exp.expand(Self.v4) == "192.0.2.3 at 1400000000 via mx.example.net: %  %20strong-bad")
        var c = Self.v4
        c.sender = "~jack&jill=up@example.com"
        #expect(try SPFMacroString.parse("%{L}").expand(c) == "~jack%26jill%3Dup")
        #expect(try SPFMacroString.parse("%{l}").description == "%{l}")
        #expect(try SPFMacroString.parse("%{L2r+-}x%%").description == "%{L2r+-}x%%")
    }

    @Test(arguments: ["%{c}", "%{r}.x", "%{t}", "%{d0}", "%{x}", "%(d)", "50%", "%{d", "a b", "caf\u{e9}"])
    func badDomainMacros(_ text: String) {
        #expect(throws: SPFSyntaxError.self) { try SPFMacroString.parse(Substring(text)) }
    }

    @Test func recordRoundTrip() throws {
        let text = "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a a:mail.%{d}/28//64 mx/30 -ptr:example.com ?exists:%{ir}.bl.example.org ~include:_spf.example.net -all redirect=_spf.%{d2} exp=why.%{d} x-foo=%{h}"
        let record = try SPFRecord.parse(Array(text.utf8))
        #expect(record.description == text)
        #expect(record.directives.count == 9)
        #expect(record.directives[3].mechanism == .a(try SPFMacroString.parse("mail.%{d}"), ip4Prefix: 28, ip6Prefix: 64))
        #expect(record.directives.last == SPFDirective(.fail, .all))
        #expect(record.unknownModifiers.map(\.name) == ["x-foo"])
        #expect(try SPFRecord.parse(Array(record.description.utf8)) == record)
    }

    @Test func versionSelection() {
        #expect(SPFRecord.isSPF(Array("v=spf1".utf8)))
        #expect(SPFRecord.isSPF(Array("V=SPF1 -all".utf8)))
        #expect(!SPFRecord.isSPF(Array("v=spf10".utf8)))
        #expect(!SPFRecord.isSPF(Array("v=spf1\t-all".utf8)))
    }

    @Test(arguments: [
        "v=spf1 ip4:192.0.2.0/33", "v=spf1 ip4:192.0.2.0/024", "v=spf1 ip6:::1/129", "v=spf1 a:com",
        "v=spf1 a:1.2.3.4", "v=spf1 a:example.-com", "v=spf1 include:", "v=spf1 all:x", "v=spf1 foo",
        "v=spf1 redirect=a.example redirect=b.example", "v=spf1 exp=a.example exp=b.example", "v=spf1 -x=y",
        "v=spf1 1x=y", "v=spf1 ip4:1.2.3", "v=spf1 a//", "v=spf1 mx:example.com/",
    ])
    func syntaxErrors(_ text: String) {
        #expect(throws: SPFSyntaxError.self) { try SPFRecord.parse(Array(text.utf8)) }
    }

    @Test func addresses() {
        #expect(IPAddress("192.0.2.1")?.octets == [192, 0, 2, 1])
        #expect(IPAddress("192.0.2.01") == nil)
        #expect(IPAddress("2001:db8::1")?.description == "2001:db8::1")
        #expect(IPAddress("::ffff:192.0.2.1")?.unmapped == IPAddress("192.0.2.1"))
        #expect(IPAddress("2001:0db8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1")
        #expect(IPAddress("1::2::3") == nil)
        #expect(IPAddress("1.2.3.4::") == nil)
        #expect(IPAddress("::")?.octets == [UInt8](repeating: 0, count: 16))
        #expect(IPAddress("192.0.2.77")!.matches(IPAddress("192.0.2.64")!, prefix: 26))
        #expect(!IPAddress("192.0.2.77")!.matches(IPAddress("192.0.2.64")!, prefix: 29))
        #expect(IPAddress("2001:db8::1")!.matches(IPAddress("2001:db8::")!, prefix: 32))
    }
}
