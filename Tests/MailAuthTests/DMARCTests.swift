import MailAuth
import TestSupport
import Testing

/// DMARC records (RFC 7489 §6.3, §6.6.3), discovery and evaluation over
/// zone data written here and a small Public Suffix List.
@Suite struct DMARCTests {
    static let suffixes = PublicSuffixList(text: "com\norg\nuk\nco.uk\nexample\n")

    static func txt(_ s: String) -> StaticMailAuthDNS.Record { .txt(Array(s.utf8)) }

    static let dns: StaticMailAuthDNS = {
        var z = StaticMailAuthDNS()
        z.add("_dmarc.example.org", txt("v=DMARC1; p=reject; sp=quarantine; rua=mailto:agg@example.org"))
        z.add("_dmarc.example.org", txt("v=spf1 -all"))     // not a DMARC record: ignored
        z.add("_dmarc.strict.com", txt("v=DMARC1;p=quarantine;adkim=s;aspf=s"))
        z.add("_dmarc.half.com", txt("v=DMARC1; p=reject; pct=50"))
        z.add("_dmarc.two.com", txt("v=DMARC1; p=none"))
        z.add("_dmarc.two.com", txt("v=DMARC1; p=reject"))
        z.add("_dmarc.bad.com", txt("v=DMARC1; p=bogus"))
        z.add("_dmarc.rua.com", txt("v=DMARC1; p=bogus; rua=mailto:d@rua.com"))
        z.add("_dmarc.slow.com", .timeout)
        z.add("_dmarc.own.example.org", txt("v=DMARC1; p=none"))
        return z
    }()

    static let checker = DMARCChecker(dns: dns, suffixes: suffixes)

    static func check(_ from: String, spf: (SPFResult, String) = (.fail, "elsewhere.net"),
                      dkim: [DMARCDKIMInput] = [], seed: UInt64 = 1) async -> DMARCVerdict {
        var rng = SeededGenerator(seed: seed)
        return await checker.check(fromDomain: from, spf: DMARCSPFInput(result: spf.0, domain: spf.1), dkim: dkim, using: &rng)
    }

    @Test func recordParsing() throws {
        let r = try DMARCRecord.parse("v=DMARC1; p=Quarantine ; sp=reject; np=reject; adkim=s; aspf=r; pct=25; rua=mailto:a@example.org!10m, bogus ,mailto:b@example.org; ruf=mailto:f@example.org; fo=1:d; rf=afrf; ri=3600; x-new=1;")
        #expect(r.policy == .quarantine && r.subdomainPolicy == .reject && r.nonexistentPolicy == .reject)
        #expect(r.dkimAlignment == .strict && r.spfAlignment == .relaxed && r.percent == 25)
        #expect(r.aggregateReports == [DMARCReportURI(uri: "mailto:a@example.org", maximumSize: 10 << 20),
                                       DMARCReportURI(uri: "mailto:b@example.org", maximumSize: nil)])
        #expect(r.failureOptions == ["1", "d"] && r.reportInterval == 3600)
        #expect(try DMARCRecord.parse(r.description) == r)
        #expect(r.description == "v=DMARC1; p=quarantine; sp=reject; np=reject; adkim=s; pct=25; rua=mailto:a@example.org!10m,mailto:b@example.org; ruf=mailto:f@example.org; fo=1:d; ri=3600")
    }

    @Test func invalidRecords() throws {
        for bad in ["p=reject; v=DMARC1", "v=DMARC2; p=reject", "v=DMARC1", "v=DMARC1; p=reject; sp=maybe", "v=DMARC1; p=reject; p=none", ""] {
            #expect(throws: DMARCSyntaxError.self, "\(bad)") { try DMARCRecord.parse(bad) }
        }
        // §6.6.3: no valid p= but a valid rua=: read as p=none.
        let r = try DMARCRecord.parse("v=DMARC1; rua=mailto:d@example.com")
        #expect(r.policyDefaulted && r.policy == .none)
        // Optional tags with bad values keep their defaults.
        let d = try DMARCRecord.parse("v=DMARC1; p=reject; pct=150; adkim=x; ri=soon")
        #expect(d.percent == 100 && d.dkimAlignment == .relaxed && d.reportInterval == 86400)
        #expect(DMARCRecord.isDMARC(Array("v=DMARC1; p=none".utf8)))
        #expect(!DMARCRecord.isDMARC(Array("v=DMARC10; p=none".utf8)))
    }

    @Test func passThroughAlignedSPFOrDKIM() async {
        let spf = await Self.check("example.org", spf: (.pass, "bounces.example.org"))
        #expect(spf.result == .pass && spf.spfAligned && spf.disposition == .none)
        let dkim = await Self.check("example.org", dkim: [DMARCDKIMInput(result: .fail, domain: "example.org"),
                                                           DMARCDKIMInput(result: .pass, domain: "other.net"),
                                                           DMARCDKIMInput(result: .pass, domain: "Mail.Example.org.", selector: "s1")])
        #expect(dkim.result == .pass && !dkim.spfAligned && dkim.dkimAlignedDomain == "mail.example.org")
    }

    @Test func strictAlignment() async {
        let relaxedOnly = await Self.check("strict.com", spf: (.pass, "mail.strict.com"),
                                           dkim: [DMARCDKIMInput(result: .pass, domain: "sub.strict.com")])
        #expect(relaxedOnly.result == .fail && relaxedOnly.disposition == .quarantine)
        #expect(await Self.check("strict.com", spf: (.pass, "STRICT.com")).result == .pass)
    }

    @Test func organizationalDomainAndSubdomainPolicy() async {
        let sub = await Self.check("news.example.org")
        #expect(sub.result == .fail && sub.policyDomain == "example.org")
        #expect(sub.policy == .quarantine && sub.disposition == .quarantine)
        let top = await Self.check("example.org")
        #expect(top.policy == .reject && top.disposition == .reject)
        // A record at the subdomain itself wins over the Organizational Domain's.
        let own = await Self.check("own.example.org")
        #expect(own.policyDomain == "own.example.org" && own.disposition == .none && own.result == .fail)
    }

    @Test func noneErrorsAndPermerrors() async {
        #expect(await Self.check("nothing.com").result == .none)
        #expect(await Self.check("slow.com").result == .temperror)
        #expect(await Self.check("two.com").result == .permerror)
        let bad = await Self.check("bad.com")
        #expect(bad.result == .permerror && bad.disposition == .none)
        let rua = await Self.check("rua.com")
        #expect(rua.result == .fail && rua.disposition == .none)
    }

    @Test func pctSamplesWithInjectedRandomness() async {
        var applied = 0, weakened = 0
        for seed in 0..<200 as Range<UInt64> {
            let v = await Self.check("half.com", seed: seed)
            #expect(v.result == .fail)
            if v.sampledOut { weakened += 1; #expect(v.disposition == .quarantine) } else { applied += 1; #expect(v.disposition == .reject) }
        }
        #expect(applied > 60 && weakened > 60)
        // The same seed gives the same disposition.
        #expect(await Self.check("half.com", seed: 7) == (await Self.check("half.com", seed: 7)))
    }
}
