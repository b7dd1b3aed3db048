@testable import CellEngine
import Foundation
import MailAuth
import SMTP
import Testing

/// The pure parts of inbound authentication: verdicts → disposition and
/// reply, the Authentication-Results field, removal of forged fields
/// (RFC 8601 §5), header scanning; and the async driver over static DNS.
@Suite struct InboundAuthenticationTests {
    static let suffixes = PublicSuffixList(text: "test\nco.test\n")

    static func failing(_ domain: String, _ policy: DMARCPolicy, sampledOut: Bool = false) -> DMARCVerdict {
        var record = DMARCRecord(policy: policy)
        record.percent = sampledOut ? 50 : 100
        var v = DMARCVerdict(result: .fail, disposition: sampledOut ? policy.weaker : policy, fromDomain: domain)
        v.record = record
        v.policy = policy
        v.sampledOut = sampledOut
        return v
    }

    static func passing(_ domain: String) -> DMARCVerdict {
        var v = DMARCVerdict(result: .pass, fromDomain: domain)
        v.record = DMARCRecord(policy: .reject)
        return v
    }

    // MARK: Decision

    @Test func rejectQuarantineNoneUnderEachEnforcement() {
        let cases: [(DMARCPolicy, DMARCEnforcement, InboundDisposition)] = [
            (.reject, .enforce, .reject(InboundPolicy.rejection("bank.test"))),
            (.quarantine, .enforce, .junk),
            (.none, .enforce, .inbox),
            (.reject, .quarantineOnly, .junk),
            (.quarantine, .quarantineOnly, .junk),
            (.reject, .monitor, .inbox),
            (.quarantine, .monitor, .inbox),
        ]
        for (policy, enforcement, expected) in cases {
            var verdict = InboundVerdict(dmarc: [Self.failing("bank.test", policy)])
            #expect(InboundPolicy.decide(&verdict, enforcement: enforcement) == expected, "\(policy) \(enforcement)")
            // dis= reports what was applied.
            #expect(verdict.dmarc[0].disposition == InboundPolicy.applied(policy, enforcement))
        }
    }

    @Test func rejectionReply() {
        let r = InboundPolicy.rejection("bank.test")
        #expect(r.code == 550)
        #expect(r.enhanced == "5.7.1")
        #expect(r.lines == ["Rejected by the DMARC policy of bank.test"])
        // A From domain that is not plain ASCII does not reach the reply.
        #expect(InboundPolicy.rejection("bad\r\ndomain").lines == ["Rejected by DMARC policy"])
    }

    @Test func passAndSampledOutMail() {
        var pass = InboundVerdict(dmarc: [Self.passing("bank.test")])
        #expect(InboundPolicy.decide(&pass, enforcement: .enforce) == .inbox)
        // pct= left this one out: p=reject becomes quarantine (RFC 7489 §6.3).
        var sampled = InboundVerdict(dmarc: [Self.failing("bank.test", .reject, sampledOut: true)])
        #expect(InboundPolicy.decide(&sampled, enforcement: .enforce) == .junk)
    }

    /// RFC 7489 §6.6.1: several From domains, the strictest policy applies.
    @Test func severalFromDomainsTakeTheStrictest() {
        var v = InboundVerdict(dmarc: [Self.passing("a.test"), Self.failing("b.test", .quarantine), Self.failing("c.test", .reject)])
        #expect(InboundPolicy.decide(&v, enforcement: .enforce) == .reject(InboundPolicy.rejection("c.test")))
        var q = InboundVerdict(dmarc: [Self.passing("a.test"), Self.failing("b.test", .quarantine)])
        #expect(InboundPolicy.decide(&q, enforcement: .enforce) == .junk)
    }

    @Test func fromFieldDMARCCannotRead() {
        var none = InboundVerdict(fromProblem: .noDomain)
        #expect(InboundPolicy.decide(&none, enforcement: .enforce) == .inbox)
        var many = InboundVerdict(fromProblem: .tooManyDomains(9))
        #expect(InboundPolicy.decide(&many, enforcement: .enforce) == .junk)
        #expect(InboundPolicy.decide(&many, enforcement: .monitor) == .inbox)
        #expect(many.results.map(\.description) == ["dkim=none", "dmarc=permerror (9 RFC5322.From domains)"])
    }

    // MARK: Temperrors never reject

    @Test func alignedTemperrorTurnsFailIntoTemperror() {
        let checker = DMARCChecker(dns: StaticMailAuthDNS(), suffixes: Self.suffixes)
        let aligned = { (d: String, m: DMARCAlignment) in checker.aligned(d, "bank.test", m) }
        let fail = Self.failing("bank.test", .reject)
        let spfTemp = SPFVerdict(result: .temperror, domain: "bounce.bank.test", problem: "timeout")
        var settled = InboundPolicy.settle(fail, spf: spfTemp, dkim: [], aligned: aligned)
        #expect(settled.result == .temperror && settled.disposition == .none)
        var verdict = InboundVerdict(dmarc: [settled])
        #expect(InboundPolicy.decide(&verdict, enforcement: .enforce) == .inbox)
        #expect(verdict.results.last?.description == "dmarc=temperror (p=reject; spf temperror) header.from=bank.test")

        let dkimTemp = DKIMResult(status: .temperror, reason: "key lookup failed", domain: "bank.test", selector: "s")
        settled = InboundPolicy.settle(fail, spf: nil, dkim: [dkimTemp], aligned: aligned)
        #expect(settled.result == .temperror)
    }

    /// An envelope domain the sender controls, whose DNS never answers, must
    /// not get a forged From past p=reject.
    @Test func unalignedTemperrorStillFails() {
        let checker = DMARCChecker(dns: StaticMailAuthDNS(), suffixes: Self.suffixes)
        let aligned = { (d: String, m: DMARCAlignment) in checker.aligned(d, "bank.test", m) }
        let fail = Self.failing("bank.test", .reject)
        let settled = InboundPolicy.settle(fail, spf: SPFVerdict(result: .temperror, domain: "attacker.test"),
                                           dkim: [DKIMResult(status: .temperror, domain: "attacker.test")], aligned: aligned)
        #expect(settled == fail)
    }

    // MARK: The field

    @Test func fieldOrderAndForm() {
        var v = InboundVerdict()
        v.spf = [.spf(SPFVerdict(result: .pass, domain: "good.test", mechanism: "ip4:192.0.2.1"), mailFrom: "a@good.test", helo: "mx.good.test")]
        v.dkim = [DKIMResult(status: .pass, domain: "good.test", selector: "s1", identity: "@good.test",
                             algorithm: "ed25519-sha256", headerB: "abcdefghijkl", keyBits: 256),
                  DKIMResult(status: .fail, reason: "body hash did not verify", domain: "list.test", selector: "x")]
        v.dmarc = [Self.passing("good.test")]
        let field = String(decoding: InboundPolicy.field(authservID: "mx.cell.test", v.results), as: UTF8.self)
        #expect(field == """
            Authentication-Results: mx.cell.test;\r
            \tspf=pass (good.test: ip4:192.0.2.1 matched) smtp.mailfrom=a@good.test;\r
            \tdkim=pass (256-bit ed25519-sha256 key) header.d=good.test header.i=@good.test header.s=s1 header.b=abcdefghijkl;\r
            \tdkim=fail (body hash did not verify) header.d=list.test header.s=x;\r
            \tdmarc=pass (p=reject) header.from=good.test\r

            """)
        // What we write, our parser reads back.
        let value = field.dropFirst("Authentication-Results:".count).replacingOccurrences(of: "\r\n", with: "")
        let parsed = AuthenticationResults.parse(String(value))
        #expect(parsed?.authservID == "mx.cell.test")
        #expect(parsed?.results.map(\.result) == ["pass", "pass", "fail", "pass"])
    }

    @Test func unsignedMessageSaysDKIMNone() {
        let v = InboundVerdict(spf: [], dkim: [], dmarc: [], fromProblem: .noDomain)
        #expect(v.results.map(\.description) == ["dkim=none", "dmarc=none (no RFC5322.From domain)"])
    }

    // MARK: Forged fields (RFC 8601 §5)

    @Test func forgedFieldsAreCutOthersKept() {
        let message = Array("""
            Authentication-Results: MX.Cell.Test; spf=pass\r
            \tsmtp.mailfrom=x@bank.test\r
            Authentication-Results: relay.other.test; dkim=pass header.d=x.test\r
            From: x@bank.test\r
            Authentication-Results: (comment) mx.cell.test; none\r
            Subject: hi\r
            \r
            Authentication-Results: mx.cell.test; in the body, kept\r

            """.utf8)
        let section = HeaderSection(message)
        let forged = InboundPolicy.forged(message, section, authservID: "mx.cell.test")
        #expect(forged.count == 2)
        var out: [UInt8] = []
        for r in InboundPolicy.kept(message.count, removing: forged) { out += message[r] }
        #expect(String(decoding: out, as: UTF8.self) == """
            Authentication-Results: relay.other.test; dkim=pass header.d=x.test\r
            From: x@bank.test\r
            Subject: hi\r
            \r
            Authentication-Results: mx.cell.test; in the body, kept\r

            """)
    }

    @Test func keptRanges() {
        #expect(InboundPolicy.kept(10, removing: []) == [0..<10])
        #expect(InboundPolicy.kept(10, removing: [0..<3, 5..<6]) == [3..<5, 6..<10])
        #expect(InboundPolicy.kept(10, removing: [7..<10, 2..<4]) == [0..<2, 4..<7])
    }

    // MARK: Header scanning

    @Test func headerSectionFields() {
        let m = Array("From: A <a@x.test>\r\nSubject: one\r\n two\r\nX-Bare:lf\nNoColon\r\n\r\nbody: not a field\r\n".utf8)
        let s = HeaderSection(m)
        #expect(s.fields.map(\.name) == ["from", "subject", "x-bare", ""])
        #expect(String(decoding: m[s.fields[1].value], as: UTF8.self) == " one\r\n two")
        #expect(s.end.map { String(decoding: m[$0...], as: UTF8.self) } == "body: not a field\r\n")
        #expect(HeaderSection(Array("From: a@x.test\r\nSubj".utf8)).end == nil)
        #expect(HeaderSection(Array("\r\nbody".utf8)).end == 2)
    }

    /// The end of the header section, found as the bytes drip in.
    @Test func findEndIncrementally() {
        let message = Array("From: a@x.test\r\nTo: b@y.test\r\n\r\nbody\r\n".utf8)
        for chunk in [1, 2, 3, 5, 64] {
            var held: [UInt8] = []
            var from = 0
            var found: Int?
            var i = 0
            while found == nil, i < message.count {
                held += message[i..<min(i + chunk, message.count)]
                i += chunk
                found = HeaderSection.findEnd(held, from: &from)
            }
            #expect(found == 32, "chunk \(chunk)")
        }
        var from = 0
        #expect(HeaderSection.findEnd(Array("\r\nbody".utf8), from: &from) == 2)
        from = 0
        #expect(HeaderSection.findEnd(Array("A: b\n\nbody".utf8), from: &from) == 6)
    }

    @Test func fromDomains() {
        let m = Array("From: \"Bank, Inc\" <Ceo@Bank.Test.>, other@x.test (c)\r\nFrom: grp: a@bank.test, b@y.test;\r\nFrom: [1.2.3.4]\r\nTo: z@z.test\r\n\r\n".utf8)
        #expect(FromDomains.of(m, HeaderSection(m)) == ["bank.test", "x.test", "y.test"])
        let none = Array("Subject: no from\r\n\r\n".utf8)
        #expect(FromDomains.of(none, HeaderSection(none)).isEmpty)
    }

    // MARK: The driver over static DNS

    static func checks(_ dns: StaticMailAuthDNS, client: String? = "192.0.2.1", mailFrom: String = "a@good.test") -> InboundChecks {
        let setup = MailAuthSetup(checks: true, authservID: "mx.cell.test", suffixes: suffixes)
        return InboundChecks(setup: setup, dns: dns, client: client, helo: "mx.good.test", mailFrom: mailFrom,
                             receiver: "mx.cell.test", clock: { 1_700_000_000 })
    }

    @Test func driverPassFailAndTemperror() async {
        var dns = StaticMailAuthDNS()
        dns.add("good.test", .txt(Array("v=spf1 ip4:192.0.2.0/24 -all".utf8)))
        dns.add("_dmarc.good.test", .txt(Array("v=DMARC1; p=reject".utf8)))
        dns.add("_dmarc.slow.test", .timeout)
        let message = Array("From: a@good.test\r\nSubject: x\r\n\r\nhi\r\n".utf8)

        let pass = Self.checks(dns)
        pass.headerReceived(message, HeaderSection(message))
        var v = await pass.finish(message, now: 1_700_000_000)
        #expect(v.results.map(\.result) == ["pass", "none", "none", "pass"])   // spf mailfrom, spf helo, dkim, dmarc
        #expect(InboundPolicy.decide(&v, enforcement: .enforce) == .inbox)

        var fail = await Self.checks(dns, client: "198.51.100.1").finish(message, now: 1_700_000_000)
        #expect(fail.dmarc.map(\.result) == [.fail])
        #expect(InboundPolicy.decide(&fail, enforcement: .enforce) == .reject(InboundPolicy.rejection("good.test")))

        let slow = Array("From: a@slow.test\r\n\r\nhi\r\n".utf8)
        var temp = await Self.checks(dns, mailFrom: "a@slow.test").finish(slow, now: 1_700_000_000)
        #expect(temp.dmarc.map(\.result) == [.temperror])
        #expect(InboundPolicy.decide(&temp, enforcement: .enforce) == .inbox)

        // Null sender: SPF checks HELO (RFC 7208 §2.4), once.
        let bounce = await Self.checks(dns, mailFrom: "").finish(message, now: 1_700_000_000)
        #expect(bounce.spf.map(\.description) == ["spf=none (mx.good.test: no SPF record) smtp.helo=mx.good.test"])

        // No client address (unix socket without PROXY): SPF is not evaluated.
        let unknown = await Self.checks(dns, client: nil).finish(message, now: 1_700_000_000)
        #expect(unknown.spf.map(\.result) == ["none"])
        #expect(unknown.dmarc.map(\.result) == [.fail])
    }

    /// The header section starts the DMARC and DKIM key lookups.
    @Test func headerStartsTheLookups() {
        let asked = NSLockedNames()
        let setup = MailAuthSetup(checks: true, authservID: "mx.cell.test", suffixes: Self.suffixes)
        let checks = InboundChecks(setup: setup, dns: StaticMailAuthDNS(), prefetch: { asked.add($0) }, client: nil,
                                   helo: "h.test", mailFrom: "", receiver: "mx.cell.test", clock: { 0 })
        let header = Array("DKIM-Signature: v=1; a=ed25519-sha256; d=good.test; s=s1; h=from; bh=AAAA; b=AAAA\r\nFrom: a@news.good.test\r\n\r\n".utf8)
        checks.headerReceived(header, HeaderSection(header))
        #expect(asked.names == ["_dmarc.news.good.test", "_dmarc.good.test", "s1._domainkey.good.test"])
    }
}

@Suite struct AuthenticationConfigurationTests {
    func load(_ extra: String) throws -> CellConfiguration {
        let path = NSTemporaryDirectory() + "auth-\(UUID().uuidString).json"
        let json = #"{"hostname": "mx.example.test", "domains": ["example.test"], "listeners": [{"name": "mx", "role": "mx", "address": "127.0.0.1:0"}]"# + extra + "}"
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return try CellConfiguration.load(path: path)
    }

    @Test func defaultsAndValidSections() throws {
        #expect(try load("").checksEnabled)
        let c = try load(#", "authentication": {"checks": false, "authservID": "mx.example.test", "dmarcEnforcement": "quarantine-only", "publicSuffixList": "psl.dat"}, "dkim": [{"domain": "example.test", "selector": "2024", "keyFile": "dkim/a.pem", "algorithm": "ed25519-sha256"}, {"domain": "example.test", "selector": "rsa.2024", "keyFile": "/keys/b.pem"}]"#)
        #expect(!c.checksEnabled)
        #expect(c.dkim?.count == 2)
    }

    @Test func refusedSections() {
        for bad in [
            #", "authentication": {"check": true}"#,
            #", "authentication": {"dmarcEnforcement": "sometimes"}"#,
            #", "authentication": {"authservID": "mx example"}"#,
            #", "authentication": {"publicSuffixList": ""}"#,
            #", "dkim": [{"domain": "example.test", "selector": "s", "keyFile": "k.pem", "algorithm": "rsa-sha1"}]"#,
            #", "dkim": [{"domain": "example.test", "selector": "s", "keyFile": "k.pem", "algo": "rsa-sha256"}]"#,
            #", "dkim": [{"domain": "example", "selector": "s", "keyFile": "k.pem"}]"#,
            #", "dkim": [{"domain": "example.test", "selector": "a b", "keyFile": "k.pem"}]"#,
            #", "dkim": [{"domain": "example.test", "selector": "s", "keyFile": ""}]"#,
            #", "dkim": [{"domain": "example.test", "selector": "s", "keyFile": "a.pem"}, {"domain": "EXAMPLE.test", "selector": "S", "keyFile": "b.pem"}]"#,
        ] {
            #expect(throws: (any Error).self, "\(bad)") { try load(bad) }
        }
    }

    /// Key files are read when the engine loads the configuration; a bad one
    /// fails the load and names the entry and the file.
    @Test func keyFiles() throws {
        let dir = NSTemporaryDirectory() + "keys-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/dkim", withIntermediateDirectories: true)
        try Data(DKIMPrivateKey.generate(.ed25519).pem.utf8).write(to: URL(fileURLWithPath: dir + "/dkim/ed.pem"))
        try Data("not a key".utf8).write(to: URL(fileURLWithPath: dir + "/dkim/bad.pem"))
        let good = try load(#", "authentication": {"checks": false}, "dkim": [{"domain": "Example.test", "selector": "s", "keyFile": "dkim/ed.pem"}]"#)
        let setup = try MailAuthSetup(good, dataDirectory: dir, previous: nil)
        #expect(setup.signers(for: ["example.test"]).map(\.selector) == ["s"])
        #expect(setup.signers(for: ["other.test"]).isEmpty)
        for (entry, needle) in [
            (#"{"domain": "example.test", "selector": "s", "keyFile": "dkim/bad.pem"}"#, "bad.pem"),
            (#"{"domain": "example.test", "selector": "s", "keyFile": "dkim/missing.pem"}"#, "missing.pem"),
            (#"{"domain": "example.test", "selector": "s", "keyFile": "dkim/ed.pem", "algorithm": "rsa-sha256"}"#, "ed25519-sha256"),
        ] {
            let c = try load(#", "authentication": {"checks": false}, "dkim": ["# + entry + "]")
            do {
                _ = try MailAuthSetup(c, dataDirectory: dir, previous: nil)
                Issue.record("loaded \(entry)")
            } catch {
                #expect("\(error)".contains("dkim[0]") && "\(error)".contains(needle), "\(error)")
            }
        }
        // Checks on with a suffix list that is not there: a clear error.
        let noList = try load(#", "authentication": {"publicSuffixList": "/nonexistent/psl.dat"}"#)
        #expect(throws: CellConfiguration.Invalid.self) { try MailAuthSetup(noList, dataDirectory: dir, previous: nil) }
    }
}

final class NSLockedNames: @unchecked Sendable {
    let lock = NSLock()
    private var list: [String] = []
    func add(_ name: String) { lock.withLock { list.append(name) } }
    var names: [String] { lock.withLock { list } }
}
