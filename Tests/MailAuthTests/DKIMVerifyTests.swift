import MailAuth
import Testing

/// Verification rules of RFC 6376 §6 and RFC 8301 on messages signed here.
@Suite struct DKIMVerifyTests {
    static let message = dkimCRLF("""
        From: Alice <alice@example.com>
        To: Bob <bob@example.net>
        Subject: Lunch
        Date: Tue, 14 Nov 2023 22:13:20 +0000
        Message-ID: <1@example.com>

        Shall we?
        """)

    static let rsaKey = try! DKIMPrivateKey(text: DKIMVectors.text("dkimpy/2048_testkey.key"))
    static let edKey = try! DKIMPrivateKey(text: DKIMVectors.text("dkimpy/ed25519test.key"))

    func dns(_ key: DKIMPrivateKey, record: String? = nil) -> StaticMailAuthDNS {
        StaticMailAuthDNS(["s1._domainkey.example.com": [.txt(Array((record ?? key.record.text).utf8))]])
    }

    func signed(_ key: DKIMPrivateKey = rsaKey, _ message: [UInt8] = message,
                configure: (inout DKIMSigner) -> Void = { _ in }) throws -> [UInt8] {
        var signer = try DKIMSigner(key: key, domain: "example.com", selector: "s1")
        configure(&signer)
        return Array(try signer.sign(message, now: dkimTestNow).utf8) + message
    }

    func verify(_ msg: [UInt8], _ dns: some MailAuthDNS, now: Int64 = dkimTestNow) async -> [DKIMResult] {
        await DKIMVerifier(dns: dns).verify(msg, now: now)
    }

    /// Replaces the first occurrence of `a` with `b` in the bytes.
    func replacing(_ msg: [UInt8], _ a: String, _ b: String) -> [UInt8] {
        Array(String(decoding: msg, as: UTF8.self).replacingOccurrences(of: a, with: b).utf8)
    }

    @Test func unsignedMessageHasNoResults() async {
        #expect(await verify(Self.message, dns(Self.rsaKey)).isEmpty)
    }

    @Test(arguments: [DKIMPrivateKey.Kind.rsa, .ed25519])
    func tamperedBodyAndHeaderFail(kind: DKIMPrivateKey.Kind) async throws {
        let key = kind == .rsa ? Self.rsaKey : Self.edKey
        let msg = try signed(key)
        #expect(await verify(msg, dns(key)).map(\.status) == [.pass])
        let body = await verify(replacing(msg, "Shall we?", "Shall we not?"), dns(key))
        #expect(body.map(\.status) == [.fail] && body[0].reason == "body hash did not verify")
        let header = await verify(replacing(msg, "Subject: Lunch", "Subject: Dinner"), dns(key))
        #expect(header.map(\.status) == [.fail] && header[0].reason == "signature did not verify")
        // Relaxed canonicalization forgives whitespace changes.
        #expect(await verify(replacing(msg, "Subject: Lunch", "Subject:   Lunch "), dns(key)).map(\.status) == [.pass])
        // Over-signed From: a second From breaks the signature (§8.15).
        let twoFroms = replacing(msg, "To: Bob", "From: Mallory <m@example.org>\r\nTo: Bob")
        #expect(await verify(twoFroms, dns(key)).map(\.status) == [.fail])
    }

    @Test func dnsOutcomes() async throws {
        let msg = try signed()
        let timeout = StaticMailAuthDNS(["s1._domainkey.example.com": [.timeout]])
        let t = await verify(msg, timeout)
        #expect(t.map(\.status) == [.temperror])
        let none = await verify(msg, StaticMailAuthDNS())
        #expect(none.map(\.status) == [.permerror] && none[0].reason == "no key for signature")
        let noData = await verify(msg, StaticMailAuthDNS(["s1._domainkey.example.com": [.a([192, 0, 2, 1])]]))
        #expect(noData.map(\.status) == [.permerror])
        let revoked = await verify(msg, dns(Self.rsaKey, record: "v=DKIM1; k=rsa; p="))
        #expect(revoked.map(\.reason) == ["key revoked"])
        let huge = await verify(msg, dns(Self.rsaKey, record: Self.rsaKey.record.text + "; n=" + String(repeating: "x", count: 5000)))
        #expect(huge.map(\.status) == [.permerror] && huge[0].reason.contains("larger"))
        // Several records: the first that parses is used (§3.6.2.2).
        var two = StaticMailAuthDNS()
        two.add("s1._domainkey.example.com", .txt(Array("v=spf1 -all".utf8)))
        two.add("s1._domainkey.example.com", .txt(Array(Self.rsaKey.record.text.utf8)))
        #expect(await verify(msg, two).map(\.status) == [.pass])
    }

    @Test func keyRecordRules() async throws {
        let msg = try signed()
        let p = "p=" + Self.rsaKey.record.text.components(separatedBy: "p=")[1]
        func status(_ record: String) async -> (DKIMStatus, String) {
            let r = await verify(msg, dns(Self.rsaKey, record: record))[0]
            return (r.status, r.reason)
        }
        #expect(await status("v=DKIM1; k=ed25519; " + p).0 == .permerror)       // k= does not match a=
        #expect(await status("v=DKIM1; h=sha1; " + p).0 == .permerror)          // h= excludes sha256
        #expect(await status("v=DKIM1; s=tlsrpt; " + p).0 == .permerror)        // not for email
        #expect(await status("v=DKIM1; s=email:tlsrpt; " + p).0 == .pass)
        #expect(await status("v=DKIM1; k=foo; " + p).0 == .permerror)
        #expect(await status(DKIMVectors.record("dkimpy/badk.txt")).0 == .permerror)
        #expect(await status(DKIMVectors.record("dkimpy/test_bad.txt")).0 == .permerror)
        let testing = await verify(msg, dns(Self.rsaKey, record: "v=DKIM1; t=y; " + p))
        #expect(testing[0].status == .pass && testing[0].testing && testing[0].resinfo.contains("testing"))
    }

    // t=s: i= must not be a subdomain of d= (§3.6.1); i= outside d= is refused (§6.1.1).
    @Test func identityRules() async throws {
        let sub = try signed { $0.identity = "alice@mail.example.com" }
        let p = Self.rsaKey.record.text
        #expect(await verify(sub, dns(Self.rsaKey, record: p)).map(\.status) == [.pass])
        #expect(await verify(sub, dns(Self.rsaKey, record: p + "; t=s")).map(\.status) == [.permerror])
        let outside = replacing(sub, "i=alice@mail.example.com", "i=alice@example.org")
        let r = await verify(outside, dns(Self.rsaKey))
        #expect(r.map(\.status) == [.permerror] && r[0].reason == "i= is not within d=")
    }

    @Test func expiry() async throws {
        let msg = try signed { $0.validFor = 3600 }
        #expect(await verify(msg, dns(Self.rsaKey), now: dkimTestNow + 3599).map(\.status) == [.pass])
        let late = await verify(msg, dns(Self.rsaKey), now: dkimTestNow + 3601)
        #expect(late.map(\.status) == [.permerror] && late[0].reason == "signature expired")
    }

    @Test func fromMustBeSigned() async throws {
        let msg = try signed { $0.headers = ["subject"]; $0.overSigned = [] }
        // The signer refuses nothing here (From exists); the h= lacks From.
        let r = await verify(msg, dns(Self.rsaKey))
        #expect(r.map(\.status) == [.permerror] && r[0].reason == "From field not signed")
    }

    @Test func bodyLength() async throws {
        let msg = try signed { $0.signBodyLength = true }
        #expect(await verify(msg, dns(Self.rsaKey)).map(\.status) == [.pass])
        // Text added after the signed length still verifies (§3.5 l=, §8.2).
        #expect(await verify(msg + Array("\r\nP.S. added".utf8), dns(Self.rsaKey)).map(\.status) == [.pass])
        // A body shorter than l= cannot be checked.
        let short = await verify(replacing(msg, "Shall we?", "S"), dns(Self.rsaKey))
        #expect(short.map(\.status) == [.permerror] && short[0].reason == "l= is larger than the body")
    }

    // RFC 8301: rsa-sha1 is refused; RSA keys under 1024 bits are refused.
    @Test func rfc8301() async throws {
        let msg = try signed()
        let sha1 = await verify(replacing(msg, "a=rsa-sha256", "a=rsa-sha1"), dns(Self.rsaKey))
        #expect(sha1.map(\.status) == [.policy])
        // dkimpy's 512-bit canonical.com key (test_dkim.py).
        let small = "k=rsa; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBANmBe10IgY+u7h3enWTukkqtUD5PR52Tb/mPfjC0QJTocVBq6Za/PlzfV+Py92VaCak19F4WrbVTK5Gg5tW220MCAwEAAQ=="
        let r = await verify(msg, dns(Self.rsaKey, record: small))
        #expect(r.map(\.status) == [.permerror] && r[0].reason == "RSA key too small (512 bits)")
    }

    @Test func signatureLimit() async throws {
        var msg = Self.message
        for i in 0..<12 {
            var signer = try DKIMSigner(key: Self.edKey, domain: "example.com", selector: "s1")
            signer.headers = ["from"]
            msg = Array(try signer.sign(msg, now: dkimTestNow + Int64(i)).utf8) + msg
        }
        let r = await verify(msg, dns(Self.edKey))
        #expect(r.count == 12)
        #expect(r.prefix(10).allSatisfy { $0.status == .pass })
        #expect(r.suffix(2).allSatisfy { $0.status == .neutral && $0.domain == "example.com" })
    }

    @Test func bodySizeLimit() async throws {
        let msg = try signed()
        var limits = DKIMLimits.default
        limits.maxBodyBytes = 4
        let r = await DKIMVerifier(dns: dns(Self.rsaKey), limits: limits).verify(msg, now: dkimTestNow)
        #expect(r.map(\.status) == [.neutral])
    }
}
