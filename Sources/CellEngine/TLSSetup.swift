import Crypto
import Foundation
import MailCore
import NIOSSL
import X509

/// TLS for the listeners: the configured PEM files, or a self-signed
/// certificate for the hostname generated once into `DATA/tls/`.
enum TLSSetup {
    static func context(config: CellConfiguration, dataDirectory: String) throws -> NIOSSLContext {
        var certPath = config.tls?.certificate
        var keyPath = config.tls?.key
        if certPath == nil {
            certPath = dataDirectory + "/tls/cert.pem"
            keyPath = dataDirectory + "/tls/key.pem"
            if !DurableFile.exists(certPath!) || !DurableFile.exists(keyPath!) {
                try generate(hostname: config.hostname, certPath: certPath!, keyPath: keyPath!, tmp: dataDirectory + "/tls")
            }
        }
        let cert = resolve(certPath!, dataDirectory), key = resolve(keyPath!, dataDirectory)
        let chain = try NIOSSLCertificate.fromPEMFile(cert)
        let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        tls.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: tls)
    }

    static func resolve(_ path: String, _ base: String) -> String { path.hasPrefix("/") ? path : base + "/" + path }

    static func generate(hostname: String, certPath: String, keyPath: String, tmp: String) throws {
        try DurableFile.makeDirectory(tmp)
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(hostname) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(3650 * 86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                SubjectAlternativeNames([.dnsName(hostname)])
                try ExtendedKeyUsage([.serverAuth])
            },
            issuerPrivateKey: .init(key))
        let pem = try certificate.serializeAsPEM().pemString + "\n"
        try DurableFile.write(Array(key.pemRepresentation.utf8) + [10], to: keyPath, tmpDirectory: tmp)
        try DurableFile.write(Array(pem.utf8), to: certPath, tmpDirectory: tmp)
    }
}
