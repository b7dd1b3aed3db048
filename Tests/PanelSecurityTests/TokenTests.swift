import Foundation
import Testing
@testable import PanelSecurity

@Suite struct CSRFTokenTests {
    static let secret = Array(0..<32).map { UInt8($0) }

    @Test func tokensVerifyForTheirSessionAndPurposeOnly() {
        let csrf = CSRFToken(secret: Self.secret)
        let token = csrf.token(sessionID: "s1", purpose: "change-password")
        #expect(token.utf8.count == 43)
        #expect(token.utf8.allSatisfy { Base64URL.table[Int($0)] != 0xFF })
        #expect(csrf.token(sessionID: "s1", purpose: "change-password") == token)  // deterministic
        #expect(csrf.verify(token, sessionID: "s1", purpose: "change-password"))
        #expect(!csrf.verify(token, sessionID: "s2", purpose: "change-password"))
        #expect(!csrf.verify(token, sessionID: "s1", purpose: "delete-mailbox"))
        #expect(!CSRFToken(secret: Array(Self.secret.reversed())).verify(token, sessionID: "s1", purpose: "change-password"))
    }

    @Test func fieldsCannotBeShiftedAcrossTheBoundary() {
        let csrf = CSRFToken(secret: Self.secret)
        #expect(csrf.token(sessionID: "ab", purpose: "c") != csrf.token(sessionID: "a", purpose: "bc"))
        #expect(CSRFToken.message(sessionID: "ab", purpose: "c") != CSRFToken.message(sessionID: "a", purpose: "bc"))
    }

    @Test func knownAnswer() {
        // HMAC-SHA256(key 00..1f, "postcell-csrf-v1" || be32(2) "s1" || be32(15) "change-password"),
        // computed independently with Python's hmac module.
        let csrf = CSRFToken(secret: Self.secret)
        #expect(csrf.token(sessionID: "s1", purpose: "change-password") == CSRFTokenTests.expectedKnownAnswer)
    }
    static let expectedKnownAnswer = "QeKyfPYiosZQSgHbB1FIYQzPH0CtNaAyhoAxN5WDhEo"

    @Test func tamperedTokensAreRefused() {
        let csrf = CSRFToken(secret: Self.secret)
        let token = csrf.token(sessionID: "s1", purpose: "p")
        var bytes = Array(token.utf8)
        bytes[10] = bytes[10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(!csrf.verify(String(decoding: bytes, as: UTF8.self), sessionID: "s1", purpose: "p"))
        #expect(!csrf.verify(String(token.dropLast()), sessionID: "s1", purpose: "p"))
        #expect(!csrf.verify(token + "A", sessionID: "s1", purpose: "p"))
        #expect(!csrf.verify("", sessionID: "s1", purpose: "p"))
        #expect(!csrf.verify(String(repeating: "*", count: 43), sessionID: "s1", purpose: "p"))
        // Standard base64's "+" and "/" are not base64url.
        #expect(!csrf.verify(String(repeating: "/", count: 43), sessionID: "s1", purpose: "p"))
    }

    @Test func generatedSecrets() {
        let a = CSRFToken.generateSecret(), b = CSRFToken.generateSecret()
        #expect(a.count == 32 && a != b)
    }
}

@Suite struct SessionTokenTests {
    @Test func tokensAre256RandomBitsInBase64URL() {
        var seen = Set<String>()
        for _ in 0..<200 {
            let token = SessionToken.generate()
            #expect(token.value.utf8.count == 43)
            #expect(Base64URL.decode(token.value)?.count == 32)
            #expect(token.value.utf8.allSatisfy { Base64URL.table[Int($0)] != 0xFF })
            seen.insert(token.value)
        }
        #expect(seen.count == 200)
    }

    @Test func storageHashIsSHA256Hex() {
        // FIPS 180-2 / RFC 6234 test: SHA-256("abc").
        #expect(SessionToken.storageHash(of: "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let token = SessionToken.generate()
        #expect(token.storageHash == SessionToken.storageHash(of: token.value))
        #expect(token.storageHash.count == 64)
    }

    @Test func parsingAcceptsOnlyOurShape() {
        let token = SessionToken.generate()
        #expect(SessionToken(parsing: token.value) == token)
        #expect(SessionToken(parsing: String(token.value.dropLast())) == nil)
        #expect(SessionToken(parsing: token.value + "A") == nil)
        #expect(SessionToken(parsing: String(repeating: "+", count: 43)) == nil)
        #expect(SessionToken(parsing: "") == nil)
        // 43 characters whose last one carries non-zero leftover bits: not canonical.
        #expect(SessionToken(parsing: String(repeating: "A", count: 42) + "B") == nil)
        #expect(SessionToken(parsing: String(repeating: "A", count: 42) + "E") != nil)
    }

    @Test func descriptionHidesTheToken() {
        let token = SessionToken.generate()
        #expect(!"\(token)".contains(token.value))
        #expect(!String(reflecting: token).contains(token.value))
    }

    @Test func base64URLRoundTrips() {
        var bytes: [UInt8] = []
        for n in 0..<70 {
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("="))
            #expect(Base64URL.decode(text) == bytes)
            bytes.append(UInt8(truncatingIfNeeded: n &* 151 &+ 250))
        }
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
    }
}
