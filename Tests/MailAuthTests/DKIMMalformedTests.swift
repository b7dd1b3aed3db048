import Foundation
import MailAuth
import TestSupport
import Testing

/// Broken signatures and key records give permerror or neutral, never a
/// crash; random damage to signed messages never passes by accident.
@Suite struct DKIMMalformedTests {
    static let body = "From: a@example.com\r\nSubject: x\r\n\r\nhello\r\n"
    static let edKey = try! DKIMPrivateKey(text: DKIMVectors.text("dkimpy/ed25519test.key"))
    static let dns = StaticMailAuthDNS(["s._domainkey.example.com": [.txt(Array(edKey.record.text.utf8))]])

    func results(_ signature: String, dns: StaticMailAuthDNS = dns) async -> [DKIMResult] {
        await DKIMVerifier(dns: dns).verify(Array(("DKIM-Signature: " + signature + "\r\n" + Self.body).utf8), now: 1_700_000_000)
    }

    static let base = "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com; s=s; h=from; bh=AAAA; b=AAAA"

    @Test(arguments: [
        "", ";", "garbage", "v=1", "v=1; v=1; " + base, base.replacingOccurrences(of: "b=AAAA", with: "b=A@A#"),
        base.replacingOccurrences(of: "bh=AAAA", with: "bh="), base.replacingOccurrences(of: "a=ed25519-sha256", with: "a=rsa-md5"),
        base.replacingOccurrences(of: "a=ed25519-sha256", with: "a="), base + "; l=" + String(repeating: "9", count: 200),
        base + "; l=99999999999999999", base.replacingOccurrences(of: "d=example.com", with: "d=.."),
        base.replacingOccurrences(of: "s=s", with: "s="), base.replacingOccurrences(of: "h=from", with: "h="),
        base.replacingOccurrences(of: "h=from", with: "h=to"), base + "; x=1", base + "; t=99999999999999",
        base.replacingOccurrences(of: "v=1", with: "v=1.0"), base + "; i=@", base + "; i=@@example.com",
        String(repeating: "a=b; ", count: 1) + "\u{00}=1", base + "; " + String(repeating: "z", count: 100_000) + "=1",
        base.replacingOccurrences(of: "h=from", with: "h=" + Array(repeating: "from", count: 5000).joined(separator: ":")),
    ])
    func brokenSignatureIsAnErrorNotACrash(_ signature: String) async {
        let r = await results(signature)
        #expect(r.count == 1)
        #expect([.permerror, .neutral, .fail].contains(r[0].status), "\(signature.prefix(60)): \(r[0])")
        #expect(!r[0].reason.isEmpty)
    }

    @Test(arguments: [
        "", "v=DKIM1", "v=DKIM1; p=!!!!", "v=DKIM1; k=ed25519; p=AAAA", "v=DKIM2; k=ed25519; p=AAAA",
        "v=DKIM1; k=rsa; p=" + String(repeating: "A", count: 400), "k=ed25519; p=; p=",
        "v=DKIM1; k=ed25519; p=" + String(repeating: "QUFB", count: 3000),
    ])
    func brokenKeyRecordIsPermerror(_ record: String) async {
        let dns = StaticMailAuthDNS(["s._domainkey.example.com": [.txt(Array(record.utf8))]])
        let signed = Array(try! DKIMSigner(key: Self.edKey, domain: "example.com", selector: "s").sign(Array(Self.body.utf8), now: 1).utf8)
        let r = await DKIMVerifier(dns: dns).verify(signed + Array(Self.body.utf8), now: 1_700_000_000)
        #expect(r.map(\.status) == [.permerror], "\(record.prefix(40)): \(r)")
    }

    @Test func fieldWithoutValueAndOddFolding() async {
        // A DKIM-Signature field that is only a name, and one folded onto many lines.
        let msg = "DKIM-Signature:\r\nDKIM-Signature: v=1;\r\n\r\n a=ed25519-sha256\r\n" + Self.body
        let r = await DKIMVerifier(dns: Self.dns).verify(Array(msg.utf8), now: 0)
        #expect(r.allSatisfy { $0.status == .permerror })
    }

    /// Random input to every parser: errors, never a crash.
    @Test func parsersTakeRandomBytes() {
        var rng = SeededGenerator(seed: 0x6376)
        let alphabet = Array("v=1;a:b \t\r\n=;@.-_AZaz09+/=kpDKIM".utf8)
        for round in 0..<2000 {
            let n = Int.random(in: 0...200, using: &rng)
            let bytes: [UInt8] = (0..<n).map { _ in
                round % 2 == 0 ? UInt8.random(in: 0...255, using: &rng) : alphabet.randomElement(using: &rng)!
            }
            if let tags = try? DKIMTagList.parse(bytes) { _ = try? DKIMSignature(tags) }
            if let record = try? DKIMKeyRecord(bytes) { _ = try? DKIMPublicKey(record: record) }
            _ = try? DKIMPublicKey(record: DKIMKeyRecord(publicKey: bytes))
            _ = try? DKIMPrivateKey(text: String(decoding: bytes, as: UTF8.self))
            let m = DKIMMessage(bytes)
            _ = m.select(["from", "to", "from"])
            _ = DKIMCanonicalization.body(m.body, .relaxed)
        }
    }

    /// A nested SubjectPublicKeyInfo (an SPKI inside the BIT STRING) is not a key.
    @Test func nestedKeyStructureIsRefused() throws {
        let spki = [UInt8](try #require(Data(base64Encoded: DKIMVectors.record("dkimpy/test.txt").components(separatedBy: "p=")[1])))
        // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { 0, spki } }
        let alg: [UInt8] = [0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01, 0x05, 0x00]
        let bits: [UInt8] = [0x03, 0x81, UInt8(spki.count + 1), 0x00] + spki
        let inner = alg + bits
        let nested: [UInt8] = [0x30, 0x81, UInt8(inner.count)] + inner
        #expect(throws: DKIMError.self) { try DKIMPublicKey(record: DKIMKeyRecord(publicKey: nested)) }
        #expect(try DKIMPublicKey(record: DKIMKeyRecord(publicKey: spki)).bits == 1024)
    }

    /// Random bytes flipped, inserted or removed in a signed message: never a
    /// crash, and a pass only when the damage missed the signed bytes.
    @Test func randomDamage() async throws {
        var rng = SeededGenerator(seed: 0xD1C1)
        let signer = try DKIMSigner(key: Self.edKey, domain: "example.com", selector: "s")
        let original = Array(try signer.sign(Array(Self.body.utf8), now: 1).utf8) + Array(Self.body.utf8)
        let verifier = DKIMVerifier(dns: Self.dns)
        #expect(await verifier.verify(original, now: 2).map(\.status) == [.pass])
        for _ in 0..<300 {
            var m = original
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<m.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: m[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: m.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                default: m.remove(at: i)
                }
            }
            let r = await verifier.verify(m, now: 2)
            #expect(r.count <= 1)
        }
    }
}
