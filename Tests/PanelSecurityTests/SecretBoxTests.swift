import Crypto
import Foundation
import Testing
@testable import PanelSecurity

@Suite struct SecretBoxTests {
    func temporaryDirectory() throws -> String {
        let d = NSTemporaryDirectory() + "secretbox-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test func sealsAndOpensOnlyInItsContextUnderItsKey() {
        let box = SecretBox(key: SymmetricKey(size: .bits256))
        let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
        let sealed = box.seal(secret, context: "totp:u-1")
        #expect(SecretBox.isSealed(sealed) && !sealed.contains(secret))
        #expect(box.open(sealed, context: "totp:u-1") == secret)
        // Fresh nonce each time: the same secret never seals the same twice.
        #expect(box.seal(secret, context: "totp:u-1") != sealed)
        #expect(box.open(sealed, context: "totp:u-2") == nil, "moved to another user")
        #expect(SecretBox(key: SymmetricKey(size: .bits256)).open(sealed, context: "totp:u-1") == nil, "another key")
        #expect(box.open(secret, context: "totp:u-1") == nil, "not sealed")
        #expect(box.open("sb1:", context: "totp:u-1") == nil)
        #expect(box.open("sb1:!!!", context: "totp:u-1") == nil)
        // Any changed character of the sealed form is refused.
        let body = Array(sealed.dropFirst(4))
        for i in stride(from: 0, to: body.count, by: 3) {
            var altered = body
            altered[i] = altered[i] == "A" ? "B" : "A"
            #expect(box.open("sb1:" + String(altered), context: "totp:u-1") == nil, "position \(i)")
        }
    }

    @Test func keyFileIsMadeOncePrivateAndReusedAfterARestart() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/keys/secrets.key"
        let first = try SecretBox.loadOrCreate(path: path)
        let sealed = first.seal("secret", context: "c")
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect((try FileManager.default.attributesOfItem(atPath: dir + "/keys")[.posixPermissions] as? Int) == 0o700)
        #expect((attributes[.size] as? Int) == 32)
        let again = try SecretBox.loadOrCreate(path: path)
        #expect(again.open(sealed, context: "c") == "secret")
    }

    @Test func aKeyFileOfTheWrongSizeIsAnErrorAndKept() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/secrets.key"
        FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 16))
        #expect(throws: SecretBox.Failure.badKeyFile(path: path, bytes: 16)) { try SecretBox.loadOrCreate(path: path) }
        #expect(FileManager.default.contents(atPath: path) == Data(repeating: 7, count: 16))
    }
}
