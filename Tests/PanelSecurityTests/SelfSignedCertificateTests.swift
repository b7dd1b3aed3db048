import Crypto
import Foundation
import SwiftASN1
import Testing
import X509
@testable import PanelSecurity

@Suite struct SelfSignedCertificateTests {
    static let now = Date(timeIntervalSince1970: 1_750_000_000)
    static let opensslPath = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test func certificateHasTheExtensionsAsked() throws {
        let made = try SelfSignedCertificate.generate(names: ["localhost", "Panel.Example.COM", "127.0.0.1", "::1"], validityDays: 30, now: Self.now)
        #expect(made.certificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----"))
        #expect(made.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))  // PKCS#8
        let cert = try Certificate(pemEncoded: made.certificatePEM)
        #expect(cert.version == .v3)
        #expect(cert.issuer == cert.subject)
        #expect(cert.subject.description.contains("CN=localhost"))
        #expect(cert.notValidBefore == Self.now.addingTimeInterval(-3600))
        #expect(cert.notValidAfter == Self.now.addingTimeInterval(30 * 86_400))
        #expect(made.notValidAfter == cert.notValidAfter)
        #expect(cert.signatureAlgorithm == .ecdsaWithSHA256)

        let sans = try #require(try cert.extensions.subjectAlternativeNames)
        #expect(Array(sans) == [
            .dnsName("localhost"), .dnsName("panel.example.com"),
            .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
            .ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
        ])
        #expect(try cert.extensions.basicConstraints == .notCertificateAuthority)
        let keyUsage = try #require(try cert.extensions.keyUsage)
        #expect(keyUsage == KeyUsage(digitalSignature: true))
        #expect(try cert.extensions.extendedKeyUsage == ExtendedKeyUsage([.serverAuth]))
        #expect(cert.extensions[oid: .X509ExtensionID.keyUsage]?.critical == true)
        #expect(cert.extensions[oid: .X509ExtensionID.basicConstraints]?.critical == true)
        #expect(cert.extensions[oid: .X509ExtensionID.subjectKeyIdentifier] != nil)

        // The key is the certificate's and it signed the certificate.
        let key = try P256.Signing.PrivateKey(pemRepresentation: made.privateKeyPEM)
        #expect(Certificate.PublicKey(key.publicKey) == cert.publicKey)
        #expect(cert.publicKey.isValidSignature(cert.signature, for: cert))
    }

    @Test func namesAreChecked() {
        #expect(throws: SelfSignedCertificate.Error(code: .noNames)) { try SelfSignedCertificate.generate(names: []) }
        #expect(throws: SelfSignedCertificate.Error(code: .invalidName)) { try SelfSignedCertificate.generate(names: ["bad name"]) }
        #expect(throws: SelfSignedCertificate.Error(code: .invalidName)) { try SelfSignedCertificate.generate(names: ["a..b"]) }
        #expect(throws: SelfSignedCertificate.Error(code: .invalidValidity)) { try SelfSignedCertificate.generate(names: ["x"], validityDays: 0) }
        #expect(SelfSignedCertificate.ipAddressBytes("10.1.2.3") == [10, 1, 2, 3])
        #expect(SelfSignedCertificate.ipAddressBytes("10.1.2") == nil)
        #expect(SelfSignedCertificate.ipAddressBytes("fe80::1")?.count == 16)
        // Only an address: it becomes the common name too.
        #expect(throws: Never.self) { try SelfSignedCertificate.generate(names: ["192.0.2.7"]) }
    }

    @Test(.enabled(if: opensslPath != nil, "needs the openssl command"))
    func opensslAcceptsIt() throws {
        let dir = try TemporaryDirectory()
        let made = try SelfSignedCertificate.generate(names: ["localhost", "127.0.0.1"], validityDays: 10)
        let certPath = dir.path + "/cert.pem", keyPath = dir.path + "/key.pem"
        try made.certificatePEM.write(toFile: certPath, atomically: true, encoding: .utf8)
        try made.privateKeyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)

        let text = try Self.openssl(["x509", "-noout", "-text", "-in", certPath])
        #expect(text.status == 0)
        #expect(text.output.contains("Version: 3 (0x2)"))
        #expect(text.output.contains("DNS:localhost, IP Address:127.0.0.1"))
        #expect(text.output.contains("CA:FALSE"))
        #expect(text.output.contains("Digital Signature"))
        #expect(text.output.contains("TLS Web Server Authentication"))
        #expect(text.output.contains("prime256v1"))

        let verify = try Self.openssl(["verify", "-CAfile", certPath, certPath])
        #expect(verify.status == 0, "\(verify.output)")
        #expect(verify.output.contains(": OK"))
        let forHost = try Self.openssl(["verify", "-CAfile", certPath, "-purpose", "sslserver", "-verify_hostname", "localhost", "-verify_ip", "127.0.0.1", certPath])
        #expect(forHost.status == 0, "\(forHost.output)")
        let wrongHost = try Self.openssl(["verify", "-CAfile", certPath, "-verify_hostname", "example.net", certPath])
        #expect(wrongHost.status != 0)

        // The key loads, and its public half is the certificate's.
        let keyPub = try Self.openssl(["pkey", "-in", keyPath, "-pubout"])
        let certPub = try Self.openssl(["x509", "-in", certPath, "-noout", "-pubkey"])
        #expect(keyPub.status == 0 && certPub.status == 0)
        #expect(keyPub.output == certPub.output)
    }

    @Test func loadOrCreateWritesOnceAndReuses() throws {
        let dir = try TemporaryDirectory()
        let first = try SelfSignedCertificate.loadOrCreate(directory: dir.path, names: ["localhost"], now: Self.now)
        #expect(first.created)
        for name in ["panel.crt", "panel.key"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: dir.path + "/tls/" + name)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600, "\(name)")
        }
        #expect(try String(contentsOfFile: dir.path + "/tls/panel.crt", encoding: .utf8) == first.certificatePEM)
        #expect(try String(contentsOfFile: dir.path + "/tls/panel.key", encoding: .utf8) == first.privateKeyPEM)

        let second = try SelfSignedCertificate.loadOrCreate(directory: dir.path, names: ["localhost"], now: Self.now.addingTimeInterval(86_400))
        #expect(!second.created)
        #expect(second.certificatePEM == first.certificatePEM)
        #expect(second.privateKeyPEM == first.privateKeyPEM)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/tls")) == ["panel.crt", "panel.key"])
    }

    @Test func badOrExpiringFilesAreMovedAsideAndReplaced() throws {
        let dir = try TemporaryDirectory()
        let first = try SelfSignedCertificate.loadOrCreate(directory: dir.path, names: ["localhost"], validityDays: 30, now: Self.now)

        // Within a week of the end: renewed, the old pair kept aside.
        let later = Self.now.addingTimeInterval(25 * 86_400)
        let renewed = try SelfSignedCertificate.loadOrCreate(directory: dir.path, names: ["localhost"], validityDays: 30, now: later)
        #expect(renewed.created && renewed.certificatePEM != first.certificatePEM)
        let stamp = Int(later.timeIntervalSince1970)
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/tls"))
        #expect(names == ["panel.crt", "panel.key", "panel.crt.old-\(stamp)", "panel.key.old-\(stamp)"])

        // A key that does not match the certificate: replaced.
        try first.privateKeyPEM.write(toFile: dir.path + "/tls/panel.key", atomically: false, encoding: .utf8)
        let rematched = try SelfSignedCertificate.loadOrCreate(directory: dir.path, names: ["localhost"], now: later.addingTimeInterval(1))
        #expect(rematched.created)

        // A lone key (a crash between the two writes): replaced.
        try FileManager.default.removeItem(atPath: dir.path + "/tls/panel.crt")
        let fromLoneKey = try SelfSignedCertificate.loadOrCreate(directory: dir.path, names: ["localhost"], now: later.addingTimeInterval(2))
        #expect(fromLoneKey.created)
        #expect(!(try SelfSignedCertificate.loadOrCreate(directory: dir.path, names: ["localhost"], now: later.addingTimeInterval(3)).created))
    }

    static func openssl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: opensslPath!)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// A fresh directory under the system's temporary directory, removed on deinit.
final class TemporaryDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "/panelsecurity-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
