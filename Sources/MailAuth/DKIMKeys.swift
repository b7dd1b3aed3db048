import Crypto
import Foundation
import MailCore
import _CryptoExtras

/// A public key from a key record's p= (RFC 6376 §3.6.1), ready to check
/// signatures.
///
/// RSA keys arrive as SubjectPublicKeyInfo (or a bare RSAPublicKey); they
/// must have 1024 to 8192 bits: RFC 8301 §3.2 makes keys under 1024 bits a
/// permanent failure, and the upper bound keeps a hostile key from costing
/// much CPU. Ed25519 keys are the 32 raw octets (RFC 8463 §4).
///
/// swift-crypto's `_RSA.Signing.PublicKey(derRepresentation:)` refuses keys
/// under 2048 bits, and RFC 8463's example and many senders use 1024. We read
/// the modulus and exponent ourselves (DERReader) and build the key with
/// `init(n:e:)`, which takes any size, after checking the size here.
public enum DKIMPublicKey: Sendable {
    case rsa(_RSA.Signing.PublicKey, bits: Int)
    /// The 32-octet key (swift-crypto's Curve25519 keys are not Sendable).
    case ed25519([UInt8])

    public static let minimumRSABits = 1024
    public static let maximumRSABits = 8192

    /// The key of a record, checked against the signature's algorithm
    /// (§3.6.1 k=, RFC 8463 §4).
    public init(record: DKIMKeyRecord) throws(DKIMError) {
        if record.isRevoked { throw DKIMError(.key, "key revoked") }
        switch record.keyType {
        case "rsa":
            guard let (n, e) = DERReader.rsaPublicKey(record.publicKey) else { throw DKIMError(.key, "malformed RSA key") }
            let bits = DERReader.bitCount(n)
            // RFC 8301 §3.2: keys smaller than 1024 bits MUST NOT be considered valid.
            guard bits >= Self.minimumRSABits else { throw DKIMError(.key, "RSA key too small (\(bits) bits)") }
            guard bits <= Self.maximumRSABits else { throw DKIMError(.key, "RSA key too large (\(bits) bits)") }
            do {
                self = .rsa(try _RSA.Signing.PublicKey(n: n, e: e), bits: bits)
            } catch {
                throw DKIMError(.key, "unusable RSA key")
            }
        case "ed25519":
            guard record.publicKey.count == 32,
                  (try? Curve25519.Signing.PublicKey(rawRepresentation: record.publicKey)) != nil else {
                throw DKIMError(.key, "malformed Ed25519 key")
            }
            self = .ed25519(record.publicKey)
        default:
            throw DKIMError(.key, "unknown key type k=\(record.keyType.prefix(16))")
        }
    }

    public var bits: Int {
        switch self {
        case .rsa(_, let bits): return bits
        case .ed25519: return 256
        }
    }

    /// Whether `signature` signs `data` (the canonicalized header fields,
    /// §3.7). RSA: RSASSA-PKCS1-v1_5 over SHA-256 (§3.3.2). Ed25519: PureEdDSA
    /// over the SHA-256 hash of the data (RFC 8463 §3).
    public func isValid(_ signature: [UInt8], for data: [UInt8]) -> Bool {
        let digest = SHA256.hash(data: data)
        switch self {
        case .rsa(let key, _):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: digest,
                                        padding: .insecurePKCS1v1_5)
        case .ed25519(let raw):
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else { return false }
            return key.isValidSignature(signature, for: Array(digest))
        }
    }
}

/// A signing key: RSA (at least 1024 bits, RFC 8301 §3.2; 2048 when we make
/// one) or Ed25519 (RFC 8463).
public enum DKIMPrivateKey: Sendable {
    case rsa(_RSA.Signing.PrivateKey)
    /// The 32-octet seed (RFC 8032 §5.1.5's private key).
    case ed25519([UInt8])

    public enum Kind: String, Sendable, CaseIterable {
        case rsa, ed25519
    }

    /// A new key: RSA 2048 bits or Ed25519, from the system's random source.
    public static func generate(_ kind: Kind) throws -> DKIMPrivateKey {
        switch kind {
        case .rsa: return .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048))
        case .ed25519: return .ed25519(Array(Curve25519.Signing.PrivateKey().rawRepresentation))
        }
    }

    /// Reads a key file: PEM "RSA PRIVATE KEY" (PKCS#1), PEM "PRIVATE KEY"
    /// (PKCS#8, RSA or Ed25519), or the base64 of a 32-octet Ed25519 seed.
    public init(text: String) throws(DKIMError) {
        if let (label, der) = PEM.decode(text) {
            switch label {
            case "PRIVATE KEY" where DERReader.isEd25519PKCS8(der):
                self = .ed25519(DERReader.ed25519Seed(der)!)
            case "PRIVATE KEY", "RSA PRIVATE KEY":
                // The "unsafe" initializer takes 1024-bit keys (RFC 8301 §3.2
                // allows them); the plain one wants 2048.
                guard let key = try? _RSA.Signing.PrivateKey(unsafeDERRepresentation: der) else {
                    throw DKIMError(.key, "not a usable RSA private key (at least 1024 bits)")
                }
                self = .rsa(key)
            default:
                throw DKIMError(.key, "unexpected PEM block \(label.prefix(32))")
            }
            return
        }
        let compact = DKIMBytes.withoutFWS(Array(text.utf8))
        guard let seed = Base64.decode(compact), seed.count == 32 else {
            throw DKIMError(.key, "not a PEM key nor a base64 Ed25519 seed")
        }
        self = .ed25519(seed)
    }

    public var kind: Kind {
        switch self {
        case .rsa: return .rsa
        case .ed25519: return .ed25519
        }
    }

    public var algorithm: DKIMSignature.Algorithm { kind == .rsa ? .rsaSHA256 : .ed25519SHA256 }

    /// The key file: PKCS#8 PEM for both kinds.
    public var pem: String {
        switch self {
        case .rsa(let key): return key.pkcs8PEMRepresentation
        case .ed25519(let seed): return PEM.encode("PRIVATE KEY", DERReader.ed25519PKCS8(seed: seed))
        }
    }

    /// The key record to publish at `selector._domainkey.domain` (§3.6.1).
    public var record: DKIMKeyRecord {
        switch self {
        case .rsa(let key): return DKIMKeyRecord(keyType: "rsa", publicKey: Array(key.publicKey.derRepresentation))
        case .ed25519(let seed):
            // Any 32 octets are a key; anything else publishes no key (p= empty).
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed)
            return DKIMKeyRecord(keyType: "ed25519", publicKey: key.map { Array($0.publicKey.rawRepresentation) } ?? [])
        }
    }

    /// Signs the canonicalized header data (§3.7; RFC 8463 §3 for Ed25519).
    func sign(_ data: [UInt8]) throws -> [UInt8] {
        let digest = SHA256.hash(data: data)
        switch self {
        case .rsa(let key): return Array(try key.signature(for: digest, padding: .insecurePKCS1v1_5).rawRepresentation)
        case .ed25519(let seed): return Array(try Curve25519.Signing.PrivateKey(rawRepresentation: seed).signature(for: Array(digest)))
        }
    }
}

/// PEM text (RFC 7468): one labelled base64 block.
enum PEM {
    static func decode(_ text: String) -> (label: String, der: [UInt8])? {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") && $0.hasSuffix("-----") }) else { return nil }
        let label = String(lines[begin].dropFirst(11).dropLast(5))
        guard let end = lines[begin...].firstIndex(of: "-----END \(label)-----") else { return nil }
        let body = lines[(begin + 1)..<end].filter { !$0.contains(":") }.joined()
        guard let der = Base64.decode(Array(body.utf8)) else { return nil }
        return (label, der)
    }

    static func encode(_ label: String, _ der: [UInt8]) -> String {
        let b64 = Array(Base64.encode(der))
        var out = "-----BEGIN \(label)-----\n"
        var i = 0
        while i < b64.count {
            out += String(b64[i..<min(i + 64, b64.count)]) + "\n"
            i += 64
        }
        return out + "-----END \(label)-----\n"
    }
}
