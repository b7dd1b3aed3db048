import Crypto
import _CryptoExtras
import Foundation

/// Password hashes in the PHC string format with scrypt (RFC 7914):
/// `$scrypt$ln=14,r=8,p=1$<salt, base64 unpadded>$<hash, base64 unpadded>`.
///
/// scrypt is memory-hard; `ln` is log2 of the cost N. The default (N=2^14,
/// r=8: 16 MiB per hash) suits a cell's small memory budget; the parameters
/// travel with each hash, so they can be raised later without a migration.
public struct PasswordHash: Hashable, Sendable, CustomStringConvertible {
    public var log2N: Int
    public var r: Int
    public var p: Int
    public var salt: [UInt8]
    public var hash: [UInt8]

    public static let defaultLog2N = 14

    public enum ParseError: Error, Hashable, Sendable { case unsupportedScheme, malformed }

    /// Makes a new hash with a random 16-byte salt.
    public static func make(password: String, log2N: Int = defaultLog2N, r: Int = 8, p: Int = 1) throws -> PasswordHash {
        var salt = [UInt8](repeating: 0, count: 16)
        var rng = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255, using: &rng) }
        let h = try derive(password: password, salt: salt, log2N: log2N, r: r, p: p)
        return PasswordHash(log2N: log2N, r: r, p: p, salt: salt, hash: h)
    }

    static func derive(password: String, salt: [UInt8], log2N: Int, r: Int, p: Int, length: Int = 32) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: length,
                                           rounds: 1 << log2N, blockSize: r, parallelism: p)
        return key.withUnsafeBytes { Array($0) }
    }

    /// Checks a password in constant time with respect to the hash bytes.
    public func verify(_ password: String) -> Bool {
        guard let candidate = try? PasswordHash.derive(password: password, salt: salt, log2N: log2N, r: r, p: p, length: hash.count)
        else { return false }
        var diff: UInt8 = 0
        for (a, b) in zip(candidate, hash) { diff |= a ^ b }
        return diff == 0 && candidate.count == hash.count
    }

    public init(log2N: Int, r: Int, p: Int, salt: [UInt8], hash: [UInt8]) {
        self.log2N = log2N; self.r = r; self.p = p; self.salt = salt; self.hash = hash
    }

    public init(parsing text: String) throws {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false)
        // "", "scrypt", params, salt, hash
        guard parts.count == 5, parts[0].isEmpty else { throw ParseError.malformed }
        guard parts[1] == "scrypt" else { throw ParseError.unsupportedScheme }
        var ln: Int?, r: Int?, p: Int?
        for kv in parts[2].split(separator: ",") {
            let pair = kv.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, let v = Int(pair[1]) else { throw ParseError.malformed }
            switch pair[0] {
            case "ln": ln = v
            case "r": r = v
            case "p": p = v
            default: throw ParseError.malformed
            }
        }
        guard let ln, let r, let p, (1...24).contains(ln), (1...32).contains(r), (1...16).contains(p),
              let salt = PasswordHash.decodeBase64(parts[3]), let hash = PasswordHash.decodeBase64(parts[4]),
              salt.count >= 8, hash.count >= 16
        else { throw ParseError.malformed }
        self.init(log2N: ln, r: r, p: p, salt: salt, hash: hash)
    }

    public var description: String {
        "$scrypt$ln=\(log2N),r=\(r),p=\(p)$\(PasswordHash.encodeBase64(salt))$\(PasswordHash.encodeBase64(hash))"
    }

    static func encodeBase64(_ bytes: [UInt8]) -> String {
        var s = Data(bytes).base64EncodedString()
        while s.hasSuffix("=") { s.removeLast() }
        return s
    }

    static func decodeBase64<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var s = String(text)
        while s.count % 4 != 0 { s.append("=") }
        return Data(base64Encoded: s).map { Array($0) }
    }
}
