import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Seals small secrets the control plane must read back (TOTP keys) before
/// they go into the database: AES-256-GCM under a key kept beside the
/// database, not in it, so a copy of the database alone (a dump, a backup,
/// a read-only SQL injection) does not give them away. Each value is bound
/// to a context (the user's id): a sealed value copied to another row does
/// not open.
///
/// Stored form: `sb1:` + base64url(nonce ‖ ciphertext ‖ tag).
public struct SecretBox: Sendable {
    static let prefix = "sb1:"
    /// The key's bytes (SymmetricKey itself is not Sendable).
    let keyBytes: [UInt8]
    var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    public init(key: SymmetricKey) {
        precondition(key.bitCount == 256, "SecretBox takes a 256-bit key")
        self.keyBytes = key.withUnsafeBytes { Array($0) }
    }

    /// Reads the key file, or makes one (32 random bytes, mode 0600, in a
    /// directory of mode 0700) when there is none. A key file of the wrong
    /// size is an error, never replaced: the values sealed with it would be lost.
    public static func loadOrCreate(path: String) throws -> SecretBox {
        let fm = FileManager.default
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        if let data = fm.contents(atPath: path) {
            guard data.count == 32 else { throw Failure.badKeyFile(path: path, bytes: data.count) }
            return SecretBox(key: SymmetricKey(data: data))
        }
        let key = SymmetricKey(size: .bits256)
        let bytes = key.withUnsafeBytes { Data($0) }
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            // Another process made it first: use theirs.
            if errno == EEXIST, let data = fm.contents(atPath: path), data.count == 32 { return SecretBox(key: SymmetricKey(data: data)) }
            throw Failure.cannotWrite(path: path, errno: errno)
        }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            unlink(path)
            throw Failure.cannotWrite(path: path, errno: errno)
        }
        return SecretBox(key: key)
    }

    public enum Failure: Error, Hashable {
        case badKeyFile(path: String, bytes: Int)
        case cannotWrite(path: String, errno: Int32)
    }

    public static func isSealed(_ stored: String) -> Bool { stored.hasPrefix(prefix) }

    public func seal(_ plaintext: String, context: String) -> String {
        // AES-GCM sealing fails only for a wrong key size, which init rules out.
        let box = try! AES.GCM.seal(Data(plaintext.utf8), using: key, authenticating: Data(context.utf8))
        return Self.prefix + Base64URL.encode(box.combined!)
    }

    /// The plaintext, or nil when the value is not ours, was altered, or was
    /// sealed for another context or under another key.
    public func open(_ stored: String, context: String) -> String? {
        guard Self.isSealed(stored), let raw = Base64URL.decode(String(stored.dropFirst(Self.prefix.count))),
              let box = try? AES.GCM.SealedBox(combined: Data(raw)),
              let plain = try? AES.GCM.open(box, using: key, authenticating: Data(context.utf8)) else { return nil }
        return String(data: plain, encoding: .utf8)
    }
}
