import Foundation
import IMAP
import MailCore
import MailStore
#if canImport(Glibc)
import Glibc
#endif

/// The admin API's export (docs/ADMIN-API.md): every user's mail as
/// Maildir++ trees in one POSIX tar archive under DATA/exports/.
///
///     alice@example.test/Maildir/{cur,new,tmp}/          INBOX
///     alice@example.test/Maildir/.Sent/{cur,new,tmp}/     Sent
///     alice@example.test/Maildir/.Lists.swift/cur/…       Lists/swift
///
/// Messages go to `cur/` named `TIME.PBLOB_UUID.HOST,S=SIZE:2,FLAGS`, with
/// their stored bytes unchanged and the internal date as mtime. Flags are
/// Maildir's info letters; IMAP keywords are not carried.
/// Folder names follow Courier's Maildir++: hierarchy parts joined by `.`,
/// each in IMAP's modified UTF-7 (RFC 3501 §5.1.3).
struct MaildirExport {
    let store: MailStore
    /// Lower-cased primary addresses, in the configuration's order.
    let users: [String]
    let hostname: String

    /// Writes `exports/tmp/NAME.tar`, fsyncs it, renames it to
    /// `exports/NAME.tar` and fsyncs that directory; returns the path
    /// relative to the data directory and the size.
    func write(into dataDirectory: String, now: Int64) throws -> (path: String, bytes: Int64) {
        let exports = dataDirectory + "/exports"
        try DurableFile.makeDirectory(exports + "/tmp")
        let name = "cell-" + MaildirExport.timestamp(now) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16) + ".tar"
        let tmp = exports + "/tmp/" + name
        let fd = try DurableFile.create(tmp)
        do {
            var tar = TarWriter { bytes in try bytes.withUnsafeBytes { try DurableFile.writeAll(fd, $0, path: tmp) } }
            for user in users { try add(user, to: &tar, now: now) }
            try tar.finish()
            try DurableFile.fsync(fd, path: tmp)
            close(fd)
            try DurableFile.rename(tmp, exports + "/" + name)
            try DurableFile.syncDirectory(exports)
            return ("exports/" + name, tar.bytesWritten)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
    }

    func add(_ user: String, to tar: inout TarWriter, now: Int64) throws {
        let root = user + "/Maildir"
        try tar.addDirectory(user, mode: 0o700, mtime: now)
        for mailbox in try store.mailboxes(user: user) {
            let dir = mailbox.name == "INBOX" ? root : root + "/" + MaildirExport.folder(mailbox.name)
            try tar.addDirectory(dir, mode: 0o700, mtime: now)
            for sub in ["cur", "new", "tmp"] { try tar.addDirectory(dir + "/" + sub, mode: 0o700, mtime: now) }
            for m in try store.messages(user: user, mailbox: mailbox.name) {
                let bytes = try store.readBlob(m.blob)
                let file = "\(m.internalDate).P\(m.blob)_\(m.uid).\(MaildirExport.safeHost(hostname)),S=\(bytes.count):2,\(MaildirExport.flags(m.flags))"
                try tar.addFile(dir + "/cur/" + file, contents: bytes, mode: 0o600, mtime: m.internalDate)
            }
        }
    }

    /// `.` + the hierarchy's parts (IMAP's `/`) joined by `.`.
    static func folder(_ mailbox: String) -> String {
        "." + mailbox.split(separator: "/", omittingEmptySubsequences: false).map { ModifiedUTF7.encode(String($0)) }.joined(separator: ".")
    }

    /// Maildir's info letters for the stored system flags, in ASCII order
    /// (D \Draft, F \Flagged, R \Answered, S \Seen, T \Deleted).
    static func flags(_ bits: Int64) -> String {
        let f = SystemFlags(rawValue: bits)
        let letters: [(Character, SystemFlags)] = [("D", .draft), ("F", .flagged), ("R", .answered), ("S", .seen), ("T", .deleted)]
        return String(letters.filter { f.contains($0.1) }.map(\.0))
    }

    /// Maildir names may not hold `/` or `:` (the info separator).
    static func safeHost(_ host: String) -> String {
        String(host.map { $0 == "/" || $0 == ":" ? "_" : $0 })
    }

    static func timestamp(_ t: Int64) -> String {
        var tt = time_t(t)
        var parts = tm()
        gmtime_r(&tt, &parts)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }
}
