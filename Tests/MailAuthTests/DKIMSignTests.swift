import MailAuth
import Testing

/// Signing (RFC 6376 §5, RFC 8463) and key material.
@Suite struct DKIMSignTests {
    static let message = DKIMVectors.bytes("dkimpy/test.message")

    func roundTrip(_ key: DKIMPrivateKey, record: String? = nil, selector: String = "test",
                   canonicalization: (DKIMSignature.Canonicalization, DKIMSignature.Canonicalization) = (.relaxed, .relaxed),
                   message: [UInt8] = message) async throws -> DKIMResult {
        var signer = try DKIMSigner(key: key, domain: "example.com", selector: selector)
        signer.headerCanonicalization = canonicalization.0
        signer.bodyCanonicalization = canonicalization.1
        let field = try signer.sign(message, now: dkimTestNow)
        let dns = StaticMailAuthDNS(["\(selector)._domainkey.example.com": [.txt(Array((record ?? key.record.text).utf8))]])
        let results = await DKIMVerifier(dns: dns).verify(Array(field.utf8) + message, now: dkimTestNow)
        #expect(results.count == 1)
        return results[0]
    }

    @Test(arguments: [DKIMSignature.Canonicalization.simple, .relaxed], [DKIMSignature.Canonicalization.simple, .relaxed])
    func generatedKeysRoundTrip(header: DKIMSignature.Canonicalization, body: DKIMSignature.Canonicalization) async throws {
        for kind in DKIMPrivateKey.Kind.allCases {
            let key = try DKIMPrivateKey.generate(kind)
            let r = try await roundTrip(key, canonicalization: (header, body))
            #expect(r.status == .pass, "\(kind) \(header)/\(body): \(r.reason)")
            // The PEM written by keygen reads back as the same key.
            let again = try DKIMPrivateKey(text: key.pem)
            #expect(again.record == key.record)
        }
    }

    @Test func generatedRecords() throws {
        let rsa = try DKIMPrivateKey.generate(.rsa)
        #expect(rsa.record.text.hasPrefix("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"))
        #expect(rsa.pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        let ed = try DKIMPrivateKey.generate(.ed25519)
        #expect(ed.record.text.hasPrefix("v=DKIM1; k=ed25519; p=") && ed.record.publicKey.count == 32)
    }

    /// dkimpy's key files (PKCS#1, PKCS#8, raw seed) against their records,
    /// including p= as RSAPublicKey (test_dkim_rsavariants.py).
    @Test(arguments: [
        ("test.private", "test.txt"), ("test.private", "test2.txt"),
        ("1024_testkey.key", "1024_testkey_wo_markers.pub.txt"), ("1024_testkey.key", "1024_testkey_wo_markers.pub.rsa.txt"),
        ("2048_testkey.key", "2048_testkey_wo_markers.pub.txt"), ("2048_testkey.key", "2048_testkey_wo_markers.pub.rsa.txt"),
        ("2048_testkey_PKCS8.key", "2048_testkey_PKCS8.key.pub.txt"), ("ed25519test.key", "ed25519test.dns"),
    ])
    func dkimpyKeyPairs(keyFile: String, recordFile: String) async throws {
        let key = try DKIMPrivateKey(text: DKIMVectors.text("dkimpy/\(keyFile)"))
        let r = try await roundTrip(key, record: DKIMVectors.record("dkimpy/\(recordFile)"))
        #expect(r.status == .pass, "\(keyFile): \(r.reason)")
    }

    @Test(arguments: ["badversion.txt", "badk.txt", "test_bad.txt"])
    func dkimpyBadRecords(recordFile: String) async throws {
        let key = try DKIMPrivateKey(text: DKIMVectors.text("dkimpy/test.private"))
        let r = try await roundTrip(key, record: DKIMVectors.record("dkimpy/\(recordFile)"))
        #expect(r.status == .permerror)
    }

    // RFC 8463's two keys sign the RFC's message; its records verify the result.
    @Test func rfc8463Keys() async throws {
        let msg = DKIMVectors.bytes("dkimpy/rfc6376.msg")
        for (file, selector) in [("rfc8463/rsa1024.pem", "test"), ("rfc8463/ed25519.seed.b64", "brisbane")] {
            let key = try DKIMPrivateKey(text: DKIMVectors.text(file))
            let signer = try DKIMSigner(key: key, domain: "football.example.com", selector: selector)
            let signed = Array(try signer.sign(msg, now: 1_528_637_909).utf8) + msg
            let dns = DKIMVectors.zone(DKIMVectors.text("verify/01-rfc8463.dns"))
            #expect(await DKIMVerifier(dns: dns).verify(signed, now: dkimTestNow).map(\.status) == [.pass], "\(file)")
        }
        #expect(try DKIMPrivateKey(text: DKIMVectors.text("dkimpy/rfc8032_7_1.key")).record.text
                == "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    }

    @Test func fieldShape() throws {
        let key = try DKIMPrivateKey(text: DKIMVectors.text("dkimpy/ed25519test.key"))
        let field = try DKIMSigner(key: key, domain: "example.com", selector: "test").sign(Self.message, now: dkimTestNow)
        #expect(field.hasPrefix("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com;\r\n\ts=test;"))
        #expect(field.hasSuffix("\r\n") && field.contains("t=1700000000;"))
        // From signed once per instance plus once more; absent over-signed fields once.
        #expect(field.replacingOccurrences(of: "\r\n\t", with: "").contains("h=from:from:reply-to:subject:subject:date:date:to:to:cc:message-id;"))
        for line in field.split(separator: "\r\n") { #expect(line.count <= 78) }
    }

    @Test func noFromIsRefused() throws {
        let key = try DKIMPrivateKey(text: DKIMVectors.text("dkimpy/ed25519test.key"))
        #expect(throws: DKIMError.self) {
            try DKIMSigner(key: key, domain: "example.com", selector: "test").sign(DKIMVectors.bytes("dkimpy/test_nofrom.message"), now: 0)
        }
        #expect(throws: DKIMError.self) { try DKIMSigner(key: key, domain: "legitimate.com(.attacker.com", selector: "test") }
        #expect(throws: DKIMError.self) { try DKIMSigner(key: key, domain: "example.com", selector: "a b") }
    }

    @Test func keyFileErrors() {
        #expect(throws: DKIMError.self) { try DKIMPrivateKey(text: "") }
        #expect(throws: DKIMError.self) { try DKIMPrivateKey(text: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") }
        #expect(throws: DKIMError.self) { try DKIMPrivateKey(text: "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n") }
        #expect(throws: DKIMError.self) { try DKIMPrivateKey(text: "c2hvcnQ=") }
    }
}
