import MailAuth
import Testing

@Suite struct DKIMTagListTests {
    func tags(_ s: String) throws -> DKIMTagList { try DKIMTagList.parse(Array(s.utf8)) }

    // §3.2: FWS around names, "=" and values; a trailing ";" is allowed.
    @Test func basic() throws {
        let t = try tags(" v = 1 ;\r\n\ta=rsa-sha256; b=ab\r\n cd ; ")
        #expect(t.tags.map(\.name) == ["v", "a", "b"])
        #expect(t.text("v") == "1")
        #expect(t["b"] == Array("ab\r\n cd".utf8))
        #expect(t["missing"] == nil)
    }

    @Test func valueRangeCoversSurroundingWhitespace() throws {
        let s = Array("a=1; b= xyz ;c=2".utf8)
        let t = try DKIMTagList.parse(s)
        #expect(String(decoding: s[t.tag("b")!.valueRange], as: UTF8.self) == " xyz ")
    }

    @Test func errors() {
        #expect(throws: DKIMError.self) { try tags("a=1; a=2") }          // duplicate (§3.2)
        #expect(throws: DKIMError.self) { try tags("a=1; novalue") }      // no "="
        #expect(throws: DKIMError.self) { try tags("1a=x") }              // name must start with ALPHA
        #expect(throws: DKIMError.self) { try tags("=x") }                // empty name
        #expect(throws: DKIMError.self) { try tags("a=x\u{01}y") }        // control character
        #expect((try? tags("a=1;;b=2"))?.tags.count == 2)                 // empty specs tolerated
        #expect((try? tags(""))?.tags.isEmpty == true)
    }

    static let goodSignature = "v=1; a=rsa-sha256; d=example.com; s=sel; h=From : To:subject; bh=AAAA; b=AAAA"

    @Test func signatureFields() throws {
        let s = try DKIMSignature(tags(Self.goodSignature + "; i=user@mail.example.com; l=12; t=100; x=200; q=dns/txt; z=From:a"))
        #expect(s.algorithm == .rsaSHA256)
        #expect(s.headerCanonicalization == .simple && s.bodyCanonicalization == .simple)
        #expect(s.signedHeaders == ["from", "to", "subject"])
        #expect(s.identity == "user@mail.example.com" && s.identityDomain == "mail.example.com")
        #expect(s.bodyLength == 12 && s.timestamp == 100 && s.expiration == 200)
        #expect(s.keyName == "sel._domainkey.example.com")
        let d = try DKIMSignature(tags(Self.goodSignature + "; c=relaxed"))
        #expect(d.headerCanonicalization == .relaxed && d.bodyCanonicalization == .simple)
        #expect(d.identity == "@example.com")
    }

    @Test(arguments: [
        ("v", "v=2"), ("a", "a=rsa-sha512"), ("c", "c=relaxed/fancy"), ("d", "d=legitimate.com(.attacker.com"),
        ("d", "d=example.com\u{e9}"), ("h", "h=from::to"), ("i", "i=nobody"), ("l", "l=12a"),
        ("l", "l=" + String(repeating: "9", count: 40)), ("l", "l=" + String(repeating: "9", count: 80)),
        ("t", "t=-5"), ("x", "x=1234567890123"), ("q", "q=http/well-known"), ("b", "b=!!!!"), ("bh", "bh=***"),
        ("s", "s=bad selector"),
    ])
    func badSignatureTags(tag: String, replacement: String) throws {
        var parts = Self.goodSignature.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        parts.removeAll { $0.hasPrefix(tag + "=") }
        parts.append(replacement)
        #expect(throws: DKIMError.self) { try DKIMSignature(tags(parts.joined(separator: "; "))) }
    }

    @Test(arguments: ["v", "a", "b", "bh", "d", "h", "s"])
    func missingRequiredTag(tag: String) throws {
        let parts = Self.goodSignature.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.hasPrefix(tag + "=") }
        #expect(throws: DKIMError.self) { try DKIMSignature(tags(parts.joined(separator: "; "))) }
    }

    @Test func expiryBeforeTimestampIsRefused() {
        #expect(throws: DKIMError.self) { try DKIMSignature(tags(Self.goodSignature + "; t=200; x=100")) }
    }

    // §3.6.1 key records.
    @Test func keyRecords() throws {
        let r = try DKIMKeyRecord(Array(DKIMVectors.record("dkimpy/test.txt").utf8))
        #expect(r.keyType == "rsa" && !r.isRevoked && r.serviceTypes == ["*"] && !r.testing)
        let implicit = try DKIMKeyRecord(Array(DKIMVectors.record("dkimpy/test2.txt").utf8))
        #expect(implicit.keyType == "rsa")
        let flags = try DKIMKeyRecord(Array("v=DKIM1; h=sha1:sha256; k=ed25519; s=email; t=y:s:x; n=note; p=".utf8))
        #expect(flags.hashAlgorithms == ["sha1", "sha256"] && flags.keyType == "ed25519" && flags.serviceTypes == ["email"])
        #expect(flags.testing && flags.strict && flags.isRevoked)
        #expect(throws: DKIMError.self) { try DKIMKeyRecord(Array(DKIMVectors.record("dkimpy/badversion.txt").utf8)) }
        #expect(throws: DKIMError.self) { try DKIMKeyRecord(Array("k=rsa; v=DKIM1; p=AAAA".utf8)) }   // v= not first
        #expect(throws: DKIMError.self) { try DKIMKeyRecord(Array("v=DKIM1; k=rsa".utf8)) }           // no p=
        #expect(throws: DKIMError.self) { try DKIMKeyRecord(Array("v=DKIM1; p=%%%%".utf8)) }
    }

    @Test func keyRecordText() throws {
        let r = DKIMKeyRecord(keyType: "ed25519", publicKey: [1, 2, 3], testing: true)
        #expect(r.text == "v=DKIM1; k=ed25519; t=y; p=AQID")
        #expect(try DKIMKeyRecord(Array(r.text.utf8)) == r)
    }
}
