import MailAuth
import Testing

/// Authentication-Results (RFC 8601): the examples of Appendix B parsed,
/// our own fields built and read back, forged fields recognised (§5).
@Suite struct AuthenticationResultsTests {
    /// The field values of RFC 8601 Appendix B (B.2–B.7), folded as printed there.
    static let appendixB: [(section: String, value: String)] = [
        ("B.2", " example.org 1; none"),
        ("B.3", " example.com;\r\n          spf=pass smtp.mailfrom=example.net"),
        ("B.4a", " example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n          spf=pass smtp.mailfrom=example.net"),
        ("B.4b", " example.com; iprev=pass\r\n          policy.iprev=192.0.2.200"),
        ("B.5a", " example.com;\r\n          dkim=pass (good signature) header.d=example.com"),
        ("B.5b", " example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.com;\r\n          spf=fail smtp.mailfrom=example.com"),
        ("B.6a", " example.com;\r\n      dkim=pass reason=\"good signature\"\r\n        header.i=@mail-router.example.net;\r\n      dkim=fail reason=\"bad signature\"\r\n        header.i=@newyork.example.com"),
        ("B.6b", " example.net;\r\n      dkim=pass (good signature) header.i=@newyork.example.com"),
        ("B.7", " foo.example.net (foobar) 1 (baz);\r\n    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n      policy (A dot can go here) . (like that) expired\r\n      (this surprised me) = (as I wasn't expecting it) 1362471462"),
    ]

    static func parse(_ section: String) throws -> AuthenticationResults {
        let value = try #require(appendixB.first { $0.section == section }?.value)
        return try #require(AuthenticationResults.parse(value), "\(section) does not parse")
    }

    @Test func appendixBParses() throws {
        let none = try Self.parse("B.2")
        #expect(none.authservID == "example.org" && none.version == 1 && none.results.isEmpty)
        #expect(none.encoded() == "example.org 1; none")

        let spf = try Self.parse("B.3")
        #expect(spf.results == [AuthenticationResult(method: "spf", result: "pass",
                                                     properties: [AuthenticationProperty("smtp", "mailfrom", "example.net")])])

        let several = try Self.parse("B.4a")
        #expect(several.results.map(\.method) == ["auth", "spf"])
        #expect(several.results[0].comment == "cram-md5" && several.results[0].property("smtp", "auth") == "sender@example.net")
        #expect(try Self.parse("B.4b").results[0].property("policy", "iprev") == "192.0.2.200")
        #expect(try Self.parse("B.5a").results[0].property("header", "d") == "example.com")
        #expect(try Self.parse("B.5b").results[1].result == "fail")

        let tiers = try Self.parse("B.6a")
        #expect(tiers.results.map(\.reason) == ["good signature", "bad signature"])
        #expect(tiers.results.map { $0.property("header", "i") } == ["@mail-router.example.net", "@newyork.example.com"])
        #expect(try Self.parse("B.6b").authservID == "example.net")

        let comments = try Self.parse("B.7")
        #expect(comments.authservID == "foo.example.net" && comments.version == 1)
        #expect(comments.results == [AuthenticationResult(method: "dkim", methodVersion: 1, result: "fail",
                                                          properties: [AuthenticationProperty("policy", "expired", "1362471462")])])
    }

    @Test func appendixBRoundTrips() throws {
        for (section, value) in Self.appendixB {
            let parsed = try #require(AuthenticationResults.parse(value), "\(section)")
            #expect(AuthenticationResults.parse(parsed.encoded()) == parsed, "\(section)")
            #expect(AuthenticationResults.parse(parsed.encoded(folded: true)) == parsed, "\(section) folded")
        }
    }

    @Test func ourFieldFromVerdicts() throws {
        let spf = SPFVerdict(result: .pass, domain: "example.org", mechanism: "ip4:192.0.2.0/24")
        let dmarcRecord = try DMARCRecord.parse("v=DMARC1; p=reject")
        var dmarc = DMARCVerdict(result: .fail, disposition: .quarantine, fromDomain: "example.org")
        dmarc.record = dmarcRecord
        dmarc.sampledOut = false
        let field = AuthenticationResults(authservID: "mx.example.net", results: [
            .spf(spf, mailFrom: "alice@example.org", helo: "mail.example.org"),
            .dkim(DMARCDKIMInput(result: .pass, domain: "example.org", selector: "s1"), signature: "Rk3bX7Q1+/abcdef=="),
            .dmarc(dmarc),
        ])
        #expect(field.encoded() == "mx.example.net; spf=pass (example.org: ip4:192.0.2.0/24 matched) smtp.mailfrom=alice@example.org; dkim=pass header.d=example.org header.s=s1 header.b=Rk3bX7Q1; dmarc=fail (p=reject dis=quarantine) header.from=example.org")
        #expect(AuthenticationResults.parse(field.encoded(folded: true)) == field)
    }

    @Test func nullSenderUsesHelo() {
        let v = SPFVerdict(result: .none, domain: "mail.example.org", problem: "no SPF record")
        #expect(AuthenticationResult.spf(v, mailFrom: "", helo: "mail.example.org").description
                == "spf=none (mail.example.org: no SPF record) smtp.helo=mail.example.org")
    }

    @Test func quotingValuesThatAreNotTokens() throws {
        let r = AuthenticationResult(method: "dkim", result: "fail", comment: "a (nested) \\ comment", reason: "bad signature",
                                     properties: [AuthenticationProperty("header", "i", "\"odd local\"@example.org"),
                                                  AuthenticationProperty("smtp", "mailfrom", "first.last+tag@example.org"),
                                                  AuthenticationProperty("header", "b", "ab/c=")])
        let field = AuthenticationResults(authservID: "mx;example", results: [r])
        #expect(field.encoded() == "\"mx;example\"; dkim=fail (a \\(nested\\) \\\\ comment) reason=\"bad signature\" header.i=\"\\\"odd local\\\"@example.org\" smtp.mailfrom=first.last+tag@example.org header.b=\"ab/c=\"")
        #expect(AuthenticationResults.parse(field.encoded()) == field)
    }

    @Test func forgedFieldsAreRecognised() {
        #expect(AuthenticationResults.claims(" MX.Example.NET; spf=pass smtp.mailfrom=x@example.org", authservID: "mx.example.net"))
        #expect(AuthenticationResults.claims("(sneaky) mx.example.net 1; none", authservID: "mx.example.net"))
        #expect(AuthenticationResults.claims("mx.example.net; this is not ( valid", authservID: "mx.example.net"))
        #expect(!AuthenticationResults.claims("mx.example.net.evil; spf=pass", authservID: "mx.example.net"))
        #expect(!AuthenticationResults.claims("other.example; spf=pass", authservID: "mx.example.net"))
        #expect(AuthenticationResults.parse("mx.example.net; spf") == nil)
        #expect(AuthenticationResults.parse("mx.example.net; spf=pass smtp.mailfrom") == nil)
    }
}
