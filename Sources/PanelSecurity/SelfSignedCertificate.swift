import Crypto
import Foundation
import MailCore
import SwiftASN1
import X509

/// The panel's certificate for its first start, before an operator installs
/// a real one: a P-256 key and a self-signed X.509 v3 certificate (RFC 5280)
/// for the given DNS names and IP addresses.
///
/// Extensions: subjectAltName (RFC 5280 §4.2.1.6), basicConstraints CA:false
/// (§4.2.1.9), keyUsage digitalSignature (§4.2.1.3, critical),
/// extendedKeyUsage serverAuth (§4.2.1.12), subjectKeyIdentifier (§4.2.1.2).
/// The key is PEM PKCS#8 ("BEGIN PRIVATE KEY", RFC 5958), which
/// `NIOSSLPrivateKey(bytes:format: .pem)` loads.
public struct SelfSignedCertificate: Sendable {
    public var certificatePEM: String
    public var privateKeyPEM: String
    public var notValidBefore: Date
    public var notValidAfter: Date
    /// True when `loadOrCreate` made this certificate rather than reading it.
    public var created: Bool

    public struct Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        public enum Code: Hashable, Sendable { case noNames, invalidName, invalidValidity }
        public var code: Code
        public var description: String {
            switch code {
            case .noNames: "a self-signed certificate needs at least one name"
            case .invalidName: "a certificate name is neither a DNS name nor an IP address"
            case .invalidValidity: "the validity must be at least one day"
            }
        }
    }

    /// Backdating of notBefore, for clients whose clocks run a little behind.
    public static let clockSkewAllowance: TimeInterval = 3600

    /// Makes a new key and certificate. `names` are DNS names ("localhost",
    /// "panel.example.com") or IP addresses ("127.0.0.1", "::1"); the first
    /// DNS name (else the first address) is also the subject's common name.
    public static func generate(names: [String], validityDays: Int = 365, now: Date = Date()) throws -> SelfSignedCertificate {
        guard !names.isEmpty else { throw Error(code: .noNames) }
        guard validityDays >= 1 else { throw Error(code: .invalidValidity) }
        let sans = try names.map(generalName)
        let commonName = names.first(where: { ipAddressBytes($0) == nil }) ?? names[0]

        let key = P256.Signing.PrivateKey()
        let privateKey = Certificate.PrivateKey(key)
        let publicKey = privateKey.publicKey
        let subject = try DistinguishedName {
            OrganizationName("Postcell")
            CommonName(commonName)
        }
        let notBefore = now.addingTimeInterval(-clockSkewAllowance)
        let notAfter = now.addingTimeInterval(TimeInterval(validityDays) * 86_400)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(sans)
            SubjectKeyIdentifier(hash: publicKey)
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),  // 20 random bytes, positive (RFC 5280 §4.1.2.2)
            publicKey: publicKey,
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: privateKey)
        return SelfSignedCertificate(
            certificatePEM: try certificate.serializeAsPEM().pemString,
            privateKeyPEM: key.pemRepresentation,
            notValidBefore: certificate.notValidBefore,
            notValidAfter: certificate.notValidAfter,
            created: true)
    }

    /// Reads `<directory>/tls/panel.crt` and `panel.key`, or makes and writes
    /// them (both mode 0600, written durably: tmp, fsync, rename, fsync).
    ///
    /// Existing files are reused while they parse, the key matches the
    /// certificate and the certificate is more than `renewBefore` from its
    /// end; names are not compared, so a changed name list takes effect
    /// only once the files are removed. Files that fail those tests are
    /// renamed to `*.old-<unix time>` (never deleted) and replaced.
    public static func loadOrCreate(directory: String, names: [String], validityDays: Int = 365,
                                    renewBefore: TimeInterval = 7 * 86_400, now: Date = Date()) throws -> SelfSignedCertificate {
        let tlsDirectory = directory + "/tls"
        let certificatePath = tlsDirectory + "/panel.crt"
        let keyPath = tlsDirectory + "/panel.key"
        try DurableFile.makeDirectory(tlsDirectory, mode: 0o700)

        let haveCertificate = DurableFile.exists(certificatePath)
        let haveKey = DurableFile.exists(keyPath)
        if haveCertificate && haveKey,
           let existing = try? load(certificatePath: certificatePath, keyPath: keyPath),
           now.addingTimeInterval(renewBefore) < existing.notValidAfter {
            return existing
        }
        let stamp = Int(now.timeIntervalSince1970)
        if haveCertificate { try DurableFile.rename(certificatePath, certificatePath + ".old-\(stamp)") }
        if haveKey { try DurableFile.rename(keyPath, keyPath + ".old-\(stamp)") }

        let fresh = try generate(names: names, validityDays: validityDays, now: now)
        // The key first: a crash before the certificate is written leaves a
        // lone key, which the next start moves aside.
        try DurableFile.write(Array(fresh.privateKeyPEM.utf8), to: keyPath, tmpDirectory: tlsDirectory)
        try DurableFile.write(Array(fresh.certificatePEM.utf8), to: certificatePath, tmpDirectory: tlsDirectory)
        return fresh
    }

    /// Reads a certificate and key pair, checking that they belong together.
    static func load(certificatePath: String, keyPath: String) throws -> SelfSignedCertificate {
        let certificatePEM = String(decoding: try DurableFile.readAll(certificatePath), as: UTF8.self)
        let keyPEM = String(decoding: try DurableFile.readAll(keyPath), as: UTF8.self)
        let certificate = try Certificate(pemEncoded: certificatePEM)
        let key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw CertificateError.keyMismatch
        }
        return SelfSignedCertificate(certificatePEM: certificatePEM, privateKeyPEM: keyPEM,
                                     notValidBefore: certificate.notValidBefore,
                                     notValidAfter: certificate.notValidAfter, created: false)
    }

    enum CertificateError: Swift.Error { case keyMismatch }

    static func generalName(_ name: String) throws -> GeneralName {
        if let bytes = ipAddressBytes(name) {
            return .ipAddress(ASN1OctetString(contentBytes: bytes[...]))  // RFC 5280 §4.2.1.6: 4 or 16 octets
        }
        let lower = name.lowercased()
        let labels = lower.split(separator: ".", omittingEmptySubsequences: false)
        let ok = !lower.isEmpty && lower.utf8.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.utf8.allSatisfy { c in
                (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x2A
            }
        }
        guard ok else { throw Error(code: .invalidName) }
        return .dnsName(lower)
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 address literal, else nil.
    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}
