import MailAuth
import Testing

/// check_host() over zone data written here: the cases the suite covers
/// thinly (limits, loops, HELO, IPv4-mapped, the clock, the verdict's parts).
@Suite struct SPFCheckerTests {
    static func txt(_ s: String) -> StaticMailAuthDNS.Record { .txt(Array(s.utf8)) }

    static let dns: StaticMailAuthDNS = {
        var z = StaticMailAuthDNS()
        z.add("example.org", txt("v=spf1 ip4:192.0.2.0/24 include:_spf.example.net -all exp=why.example.org"))
        z.add("example.org", txt("some other TXT record"))
        z.add("why.example.org", txt("%{i} is not allowed to send for %{d} at %{t}"))
        z.add("_spf.example.net", txt("v=spf1 ip6:2001:db8:5::/48 ~all"))
        z.add("loop-a.example", txt("v=spf1 include:loop-b.example -all"))
        z.add("loop-b.example", txt("v=spf1 include:loop-a.example -all"))
        z.add("voids.example", txt("v=spf1 a:n1.example a:n2.example a:n3.example +all"))
        z.add("twovoids.example", txt("v=spf1 a:n1.example a:n2.example +all"))
        z.add("many-mx.example", txt("v=spf1 mx -all"))
        for i in 0..<11 { z.add("many-mx.example", .mx(UInt16(i), "mx\(i).many-mx.example")) }
        z.add("redirect.example", txt("v=spf1 redirect=example.org"))
        z.add("redirect-none.example", txt("v=spf1 redirect=nothing.example"))
        z.add("include-none.example", txt("v=spf1 include:nothing.example -all"))
        z.add("helo.example", txt("v=spf1 a -all"))
        z.add("helo.example", .a([198, 51, 100, 7]))
        z.add("slow.example", .timeout)
        z.add("slow-include.example", txt("v=spf1 include:slow.example -all"))
        z.add("eleven.example", txt("v=spf1 " + (1...11).map { "a:h\($0).eleven.example" }.joined(separator: " ") + " -all"))
        for i in 1...11 { z.add("h\(i).eleven.example", .a([203, 0, 113, UInt8(i)])) }
        return z
    }()

    static func check(_ ip: String, _ mailFrom: String, helo: String = "mail.example.org") async -> SPFVerdict {
        await SPFChecker(dns: dns, receiver: "mx.example.net", now: { 1_700_000_000 })
            .checkMailFrom(ip: IPAddress(ip)!, mailFrom: mailFrom, helo: helo)
    }

    @Test func passFailAndTheMatchingDirective() async {
        let pass = await Self.check("192.0.2.9", "alice@example.org")
        #expect(pass == SPFVerdict(result: .pass, domain: "example.org", mechanism: "ip4:192.0.2.0/24"))
        let viaInclude = await Self.check("2001:db8:5::1", "alice@example.org")
        #expect(viaInclude.result == .pass && viaInclude.mechanism == "include:_spf.example.net")
    }

    @Test func failCarriesTheExpandedExplanationWithTheInjectedClock() async {
        let fail = await Self.check("198.51.100.1", "alice@example.org")
        #expect(fail.result == .fail && fail.mechanism == "-all")
        #expect(fail.explanation == "198.51.100.1 is not allowed to send for example.org at 1700000000")
        // Through redirect= the target's exp= applies (RFC 7208 §6.2).
        let redirected = await Self.check("198.51.100.1", "bob@redirect.example")
        #expect(redirected.result == .fail)
        #expect(redirected.explanation == "198.51.100.1 is not allowed to send for example.org at 1700000000")
    }

    @Test func ipv4MappedIPv6IsCheckedAsIPv4() async {
        #expect(await Self.check("::ffff:192.0.2.9", "alice@example.org").result == .pass)
    }

    @Test func includeLoopEndsInPermerror() async {
        let v = await Self.check("192.0.2.9", "x@loop-a.example")
        #expect(v.result == .permerror)
        #expect(v.problem?.contains("DNS-querying terms") == true)
    }

    @Test func voidLookups() async {
        #expect(await Self.check("192.0.2.9", "x@twovoids.example").result == .pass)
        let v = await Self.check("192.0.2.9", "x@voids.example")
        #expect(v.result == .permerror && v.problem?.contains("void") == true)
    }

    @Test func limits() async {
        #expect(await Self.check("192.0.2.9", "x@many-mx.example").result == .permerror)
        // The 11th DNS-querying term is a permerror even when it would match.
        #expect(await Self.check("203.0.113.10", "x@eleven.example").result == .pass)
        #expect(await Self.check("203.0.113.11", "x@eleven.example").result == .permerror)
        var loose = SPFLimits()
        loose.dnsTerms = 20
        let v = await SPFChecker(dns: Self.dns, limits: loose).checkMailFrom(ip: IPAddress("203.0.113.11")!, mailFrom: "x@eleven.example", helo: "h")
        #expect(v.result == .pass)
    }

    @Test func noneAndErrorsFromTargets() async {
        #expect(await Self.check("192.0.2.9", "x@nothing.example").result == .none)
        #expect(await Self.check("192.0.2.9", "x@redirect-none.example").result == .permerror)
        #expect(await Self.check("192.0.2.9", "x@include-none.example").result == .permerror)
        #expect(await Self.check("192.0.2.9", "x@slow.example").result == .temperror)
        #expect(await Self.check("192.0.2.9", "x@slow-include.example").result == .temperror)
        #expect(await Self.check("192.0.2.9", "x@[192.0.2.9]").result == .none)
    }

    @Test func heloAndTheNullSender() async {
        let checker = SPFChecker(dns: Self.dns)
        #expect(await checker.checkHelo(ip: IPAddress("198.51.100.7")!, helo: "helo.example").result == .pass)
        let null = await Self.check("198.51.100.8", "", helo: "helo.example")
        #expect(null.result == .fail && null.domain == "helo.example")
        #expect(await checker.checkHelo(ip: IPAddress("198.51.100.7")!, helo: "localhost").result == .none)
    }
}
