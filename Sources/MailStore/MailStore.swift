import GRDB
import MailCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Why a delivery was not stored. Each maps to one SMTP reply in the engine.
public enum StoreFailure: Error, Hashable, Sendable {
    /// Over a quota that may clear (RFC 3463 4.2.2).
    case overQuota
    /// The message alone exceeds the whole quota (5.2.2).
    case exceedsQuota
    /// Disk full or an I/O error: nothing was stored (4.3.1).
    case storage(String)
}

/// A message being received: a file in `store/tmp/` written as bytes arrive.
/// Not thread-safe; owned by one session until handed to `commit`.
public final class IncomingMessage: @unchecked Sendable {
    public let id: String
    public let tmpPath: String
    var fd: Int32
    public private(set) var size = 0
    /// The first error met while writing; the delivery then fails.
    public private(set) var failure: StoreFailure?

    init(id: String, tmpPath: String, fd: Int32) {
        self.id = id
        self.tmpPath = tmpPath
        self.fd = fd
    }

    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil, bytes.count > 0 else { return }
        do {
            try DurableFile.writeAll(fd, bytes, path: tmpPath)
            size += bytes.count
        } catch {
            failure = .storage("\(error)")
        }
    }

    public func write(_ bytes: [UInt8]) { bytes.withUnsafeBytes { write($0) } }

    /// Removes the file; used when a transaction is abandoned.
    public func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tmpPath)
    }

    deinit { if fd >= 0 { close(fd) } }
}

/// One message to store for one or more users, with their quotas.
public struct Delivery: Sendable {
    public var message: IncomingMessage
    /// (user id, mailbox name)
    public var recipients: [(user: Int64, mailbox: String)]
    /// user id → quota in bytes (0 or absent: unlimited)
    public var userQuotas: [Int64: Int64]
    public var cellQuota: Int64
    public var internalDate: Int64
    /// Flags the message starts with (APPEND): system flag bits and keywords.
    public var flags: Int64 = 0
    public var keywords: String = ""

    public init(message: IncomingMessage, recipients: [(user: Int64, mailbox: String)], userQuotas: [Int64: Int64],
                cellQuota: Int64, internalDate: Int64) {
        self.message = message
        self.recipients = recipients
        self.userQuotas = userQuotas
        self.cellQuota = cellQuota
        self.internalDate = internalDate
    }
}

/// One stored message as listed by `messages(user:mailbox:)`.
public struct StoredMessage: Hashable, Sendable, Codable {
    public var uid: Int64
    public var size: Int64
    public var blob: String
    public var path: String
    public var internalDate: Int64
    public var modseq: Int64
    public var flags: Int64
    public var keywords: [String]
}

/// The cell's store: the SQLite index and the immutable message files
/// (docs/DATA-DIR.md). Writes go through `commit`, one batch at a time, from
/// one thread; reads may come from anywhere.
public final class MailStore: @unchecked Sendable {
    public let directory: String
    let db: DatabaseQueue
    struct Cache {
        var users: [String: Int64] = [:]
        var usage: [Int64: Int64] = [:]
        var total: Int64 = 0
    }
    let cache = Mutex(Cache())
    /// `messages/`, open: message files are read relative to it.
    let messagesFD: Int32
    var lastIDTime: UInt64 = 0

    /// Opens (creating if needed) the store under `directory` (DATA/store) and
    /// recovers from an earlier crash: files in `tmp/` were never acknowledged
    /// and are removed; complete files without an index row are moved aside.
    public init(directory: String) throws {
        self.directory = directory
        for sub in ["", "/tmp", "/messages", "/orphans"] { try DurableFile.makeDirectory(directory + sub) }
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode=WAL")
            try db.execute(sql: "PRAGMA synchronous=FULL")
            try db.execute(sql: "PRAGMA foreign_keys=ON")
            // A cell is small: 512 KiB of page cache instead of 2 MiB.
            try db.execute(sql: "PRAGMA cache_size=-512")
        }
        config.busyMode = .timeout(10)
        db = try DatabaseQueue(path: directory + "/index.sqlite", configuration: config)
        messagesFD = open(directory + "/messages", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if messagesFD < 0 { try? db.close(); throw FileSystemError("open", path: directory + "/messages", errno: errno) }
        try db.write { try StoreSchema.migrate($0) }
        try reloadCache()
    }

    /// A read transaction. Not GRDB's `read`: that one switches `PRAGMA
    /// query_only` on and off around each read, and SQLite expires every
    /// prepared statement when a flag pragma changes, so the statements
    /// `cachedStatement` keeps would be compiled again on every read.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try db.inDatabase { db in
            var result: T?
            try db.inTransaction(.deferred) {
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    deinit { if messagesFD >= 0 { close(messagesFD) } }

    /// Gives back SQLite's cached pages and prepared statements (an idle
    /// cell's footprint; they are made again on next use).
    public func releaseMemory() {
        db.inDatabase { $0.releaseMemory() }
    }

    /// Crash recovery; call once at engine start before accepting mail.
    public func recover() throws -> (removedTmp: Int, orphans: Int) {
        var removed = 0
        for name in DurableFile.list(directory + "/tmp") {
            unlink(directory + "/tmp/" + name)
            removed += 1
        }
        // Only the newest day directories can hold files of a delivery that
        // crashed between rename and index commit.
        let days = DurableFile.list(directory + "/messages").sorted().suffix(2)
        var orphans = 0
        let known = try read { db in try Set(String.fetchAll(db.cachedStatement(sql: "SELECT id FROM blobs WHERE id >= ?"), arguments: [days.first ?? ""])) }
        for day in days {
            for name in DurableFile.list(directory + "/messages/" + day) where !known.contains(name) {
                try DurableFile.rename(directory + "/messages/\(day)/\(name)", directory + "/orphans/\(name)")
                orphans += 1
            }
        }
        if orphans > 0 { try DurableFile.syncDirectory(directory + "/orphans") }
        return (removed, orphans)
    }

    func reloadCache() throws {
        let (users, usage) = try read { db -> ([String: Int64], [Int64: Int64]) in
            var u: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, address FROM users") { u[(row["address"] as String).lowercased()] = row["id"] }
            var g: [Int64: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT user_id, bytes FROM usage") { g[row["user_id"]] = row["bytes"] }
            return (u, g)
        }
        cache.withLock {
            $0.users = users
            $0.usage = usage
            $0.total = usage.values.reduce(0, +)
        }
    }

    /// Makes sure each address has a user row and the default mailboxes.
    public func ensureUsers(_ addresses: [String], now: Int64) throws {
        let missing = cache.withLock { c in addresses.filter { c.users[$0.lowercased()] == nil } }
        guard !missing.isEmpty else { return }
        try db.write { db in
            for address in missing {
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO users(address) VALUES (?)").execute(arguments: [address.lowercased()])
                let id = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM users WHERE address = ?"), arguments: [address.lowercased()])!
                for (i, mb) in DefaultMailboxes.all.enumerated() {
                    // UIDVALIDITY (RFC 9051 §2.3.1.1): creation time, kept forever.
                    try db.cachedStatement(sql: """
                        INSERT OR IGNORE INTO mailboxes(user_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)
                        """).execute(arguments: [id, mb.name, mb.specialUse, now + Int64(i)])
                }
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO usage(user_id, bytes, messages) VALUES (?, 0, 0)").execute(arguments: [id])
            }
        }
        try reloadCache()
    }

    public func userID(_ address: String) -> Int64? { cache.withLock { $0.users[address.lowercased()] } }
    public func usage(user: Int64) -> Int64 { cache.withLock { $0.usage[user] ?? 0 } }
    public var totalUsage: Int64 { cache.withLock { $0.total } }

    /// Starts a new message file in `tmp/`.
    public func newMessage() throws -> IncomingMessage {
        let id = makeID()
        let path = directory + "/tmp/" + id
        return IncomingMessage(id: id, tmpPath: path, fd: try DurableFile.create(path))
    }

    /// Sortable unique ids: microseconds since 1970 and 24 random bits, in hex.
    func makeID() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let micros = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec / 1000)
        let r = UInt32.random(in: 0..<(1 << 24))
        return hex(micros, width: 14) + hex(UInt64(r), width: 6)
    }

    func hex(_ v: UInt64, width: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }

    /// The directory a blob lives in: the first 5 hex digits of its id's
    /// microsecond time, i.e. one directory per 2^36 µs (~19 hours). Coarse on
    /// purpose: a batch of deliveries shares one directory fsync.
    static func bucket(of id: String) -> String { String(id.prefix(5)) }

    public func path(ofBlob id: String) -> String { directory + "/messages/" + MailStore.bucket(of: id) + "/" + id }

    /// Stores a batch durably (group commit): fsync each file, rename into
    /// `messages/`, fsync the directories, then one index transaction. Results
    /// are in the batch's order. Call from one thread at a time.
    public func commit(_ batch: [Delivery]) -> [Result<String, StoreFailure>] {
        var results = [Result<String, StoreFailure>?](repeating: nil, count: batch.count)
        // 1. Each file durable on its own, or the delivery fails. Writeback
        // is started for every file first, so their blocks are allocated in
        // one journal transaction and the fsyncs after the first find little
        // left to commit (instead of one journal commit per file).
        for d in batch where d.message.failure == nil && d.message.fd >= 0 {
            DurableFile.startWriteback(d.message.fd)
        }
        for (i, d) in batch.enumerated() {
            if let f = d.message.failure { results[i] = .failure(f); d.message.discard(); continue }
            do {
                try DurableFile.fsync(d.message.fd, path: d.message.tmpPath)
                close(d.message.fd)
                d.message.fd = -1
            } catch {
                results[i] = .failure(.storage("\(error)"))
                d.message.discard()
            }
        }
        // 2. Quotas, counting earlier deliveries of this batch.
        var (usage, total) = cache.withLock { ($0.usage, $0.total) }
        for (i, d) in batch.enumerated() where results[i] == nil {
            let size = Int64(d.message.size)
            var failure: StoreFailure?
            for r in d.recipients {
                let limit = d.userQuotas[r.user] ?? 0
                if limit > 0 && size > limit { failure = .exceedsQuota; break }
                if limit > 0 && (usage[r.user] ?? 0) + size > limit { failure = failure ?? .overQuota }
            }
            let added = size * Int64(d.recipients.count)
            if failure == nil && d.cellQuota > 0 {
                if size > d.cellQuota { failure = .exceedsQuota } else if total + added > d.cellQuota { failure = .overQuota }
            }
            if let failure { results[i] = .failure(failure); d.message.discard(); continue }
            for r in d.recipients { usage[r.user, default: 0] += size }
            total += added
        }
        // 3. Rename into place; 4. fsync the directories once each.
        var dirs = Set<String>()
        var placed: [Int] = []
        for (i, d) in batch.enumerated() where results[i] == nil {
            let final = path(ofBlob: d.message.id)
            let dir = DurableFile.parentDirectory(of: final)
            do {
                if !dirs.contains(dir) { try DurableFile.makeDirectory(dir) }
                try DurableFile.rename(d.message.tmpPath, final)
                dirs.insert(dir)
                placed.append(i)
            } catch {
                results[i] = .failure(.storage("\(error)"))
                d.message.discard()
            }
        }
        do {
            for dir in dirs { try DurableFile.syncDirectory(dir) }
            // 5. The index, in one transaction (synchronous=FULL: durable at commit).
            try db.write { db in
                for i in placed {
                    let d = batch[i]
                    let size = Int64(d.message.size)
                    try db.execute(sql: "INSERT INTO blobs(id, size, refs) VALUES (?, ?, ?)",
                                   arguments: [d.message.id, size, d.recipients.count])
                    for r in d.recipients {
                        let next = """
                            UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
                            WHERE user_id = ? AND name = ? RETURNING id, uidnext - 1 AS uid, highestmodseq
                            """
                        // A mailbox other than INBOX (Junk) may have been deleted
                        // or renamed by the user: the message goes to INBOX then.
                        guard let row = try Row.fetchOne(db.cachedStatement(sql: next), arguments: [r.user, r.mailbox])
                                ?? (r.mailbox == "INBOX" ? nil : Row.fetchOne(db.cachedStatement(sql: next), arguments: [r.user, "INBOX"])) else {
                            throw StoreFailure.storage("no mailbox \(r.mailbox) for user \(r.user)")
                        }
                        try db.cachedStatement(sql: """
                            INSERT INTO messages(mailbox_id, uid, blob, size, internal_date, modseq, flags, keywords) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                            """).execute(arguments: [row["id"] as Int64, row["uid"] as Int64, d.message.id, size, d.internalDate, row["highestmodseq"] as Int64, d.flags, d.keywords])
                        try db.execute(sql: "UPDATE usage SET bytes = bytes + ?, messages = messages + 1 WHERE user_id = ?",
                                       arguments: [size, r.user])
                    }
                }
            }
        } catch {
            for i in placed {
                unlink(path(ofBlob: batch[i].message.id))
                results[i] = .failure(.storage("\(error)"))
            }
            try? reloadCache()
            return results.map { $0! }
        }
        for i in placed { results[i] = .success(batch[i].message.id) }
        cache.withLock {
            for i in placed {
                for r in batch[i].recipients { $0.usage[r.user, default: 0] += Int64(batch[i].message.size) }
                $0.total += Int64(batch[i].message.size) * Int64(batch[i].recipients.count)
            }
        }
        return results.map { $0! }
    }

    /// Messages of one mailbox in UID order.
    public func messages(user address: String, mailbox: String) throws -> [StoredMessage] {
        try read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT m.uid, m.size, m.blob, m.internal_date, m.modseq, m.flags, m.keywords FROM messages m
                JOIN mailboxes b ON b.id = m.mailbox_id JOIN users u ON u.id = b.user_id
                WHERE u.address = ? AND b.name = ? ORDER BY m.uid
                """), arguments: [address.lowercased(), mailbox]).map {
                StoredMessage(uid: $0["uid"], size: $0["size"], blob: $0["blob"], path: path(ofBlob: $0["blob"]),
                              internalDate: $0["internal_date"], modseq: $0["modseq"], flags: $0["flags"],
                              keywords: ($0["keywords"] as String).split(separator: " ").map(String.init))
            }
        }
    }

    /// Mailboxes of a user: (name, special use, uidvalidity, uidnext).
    public func mailboxes(user address: String) throws -> [(name: String, specialUse: String?, uidValidity: Int64, uidNext: Int64)] {
        try read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT b.name, b.special_use, b.uidvalidity, b.uidnext FROM mailboxes b JOIN users u ON u.id = b.user_id
                WHERE u.address = ? ORDER BY b.id
                """), arguments: [address.lowercased()]).map { ($0["name"], $0["special_use"], $0["uidvalidity"], $0["uidnext"]) }
        }
    }
}
