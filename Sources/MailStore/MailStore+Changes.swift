import Foundation
import GRDB
import MailCore
#if canImport(Glibc)
import Glibc
#endif

/// System flags as stored: a bitmask (docs/DATA-DIR.md).
public struct SystemFlags: OptionSet, Hashable, Sendable {
    public let rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
    public static let seen = SystemFlags(rawValue: 1)
    public static let answered = SystemFlags(rawValue: 2)
    public static let flagged = SystemFlags(rawValue: 4)
    public static let deleted = SystemFlags(rawValue: 8)
    public static let draft = SystemFlags(rawValue: 16)

    static let names: [(String, SystemFlags)] = [("\\Seen", .seen), ("\\Answered", .answered), ("\\Flagged", .flagged),
                                                 ("\\Deleted", .deleted), ("\\Draft", .draft)]

    /// Splits IMAP flag names into system bits and keywords (RFC 9051 §2.3.2);
    /// system flags are case-insensitive, keywords keep their spelling.
    public static func parse(_ flags: [String]) -> (SystemFlags, [String]) {
        var bits = SystemFlags()
        var keywords: [String] = []
        for f in flags {
            if let (_, bit) = names.first(where: { $0.0.lowercased() == f.lowercased() }) {
                bits.insert(bit)
            } else if !f.hasPrefix("\\"), !keywords.contains(where: { $0.lowercased() == f.lowercased() }) {
                keywords.append(f)
            }
        }
        return (bits, keywords)
    }

    public var names: [String] { SystemFlags.names.filter { contains($0.1) }.map(\.0) }
}

/// A message's flags after a change, with its new MODSEQ (RFC 7162).
public struct FlagChange: Hashable, Sendable {
    public var uid: Int64
    public var flags: SystemFlags
    public var keywords: [String]
    public var modseq: Int64
}

public enum FlagMode: Sendable { case replace, add, remove }

public enum MailboxError: Error, Hashable, Sendable {
    case noSuchMailbox
    case alreadyExists
    case notAllowed(String)
    case overQuota
}

extension MailStore {
    func mailboxRow(_ db: Database, user: String, mailbox: String) throws -> Row {
        // Statements run by every IMAP command are prepared once per connection (cachedStatement).
        guard let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT b.id, b.user_id, b.uidnext, b.highestmodseq, b.uidvalidity FROM mailboxes b JOIN users u ON u.id = b.user_id
            WHERE u.address = ? AND b.name = ?
            """), arguments: [user.lowercased(), mailbox]) else { throw MailboxError.noSuchMailbox }
        return row
    }

    /// Changes flags of the given UIDs; returns the messages that changed.
    /// `unchangedSince` (RFC 7162 §3.1.3) leaves messages modified after it
    /// alone and reports their UIDs as `failed`.
    public func setFlags(user: String, mailbox: String, uids: [Int64], mode: FlagMode, flags: [String],
                         unchangedSince: Int64? = nil) throws -> (changed: [FlagChange], failed: [Int64]) {
        let (bits, keywords) = SystemFlags.parse(flags)
        return try db.write { db in
            let mb = try mailboxRow(db, user: user, mailbox: mailbox)
            let mbID: Int64 = mb["id"]
            var modseq: Int64 = mb["highestmodseq"]
            var changed: [FlagChange] = []
            var failed: [Int64] = []
            for uid in uids {
                guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT flags, keywords, modseq FROM messages WHERE mailbox_id = ? AND uid = ?"),
                                                 arguments: [mbID, uid]) else { continue }
                if let limit = unchangedSince, row["modseq"] as Int64 > limit { failed.append(uid); continue }
                let oldBits = SystemFlags(rawValue: row["flags"])
                let oldKeywords = (row["keywords"] as String).split(separator: " ").map(String.init)
                var newBits = oldBits
                var newKeywords = oldKeywords
                switch mode {
                case .replace:
                    newBits = bits
                    newKeywords = keywords
                case .add:
                    newBits.formUnion(bits)
                    for k in keywords where !newKeywords.contains(where: { $0.lowercased() == k.lowercased() }) { newKeywords.append(k) }
                case .remove:
                    newBits.subtract(bits)
                    newKeywords.removeAll { k in keywords.contains { $0.lowercased() == k.lowercased() } }
                }
                guard newBits != oldBits || newKeywords != oldKeywords else { continue }
                modseq += 1
                try db.cachedStatement(sql: "UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?")
                    .execute(arguments: [newBits.rawValue, newKeywords.joined(separator: " "), modseq, mbID, uid])
                changed.append(FlagChange(uid: uid, flags: newBits, keywords: newKeywords, modseq: modseq))
            }
            try db.cachedStatement(sql: "UPDATE mailboxes SET highestmodseq = ? WHERE id = ?").execute(arguments: [modseq, mbID])
            return (changed, failed)
        }
    }

    /// Removes messages (EXPUNGE, UID EXPUNGE, the second half of MOVE).
    /// A message file goes when its last reference does. Returns the UIDs removed.
    @discardableResult
    public func expunge(user: String, mailbox: String, uids: [Int64]) throws -> [Int64] {
        var unlinked: [String] = []
        let removed = try db.write { db -> [Int64] in
            let mb = try mailboxRow(db, user: user, mailbox: mailbox)
            let r = try removeMessages(db, mailboxID: mb["id"], userID: mb["user_id"], modseq: mb["highestmodseq"], uids: uids)
            unlinked = r.unlinked
            return r.removed
        }
        // Files go only once the index no longer names them.
        for blob in unlinked { unlink(path(ofBlob: blob)) }
        try reloadCache()
        return removed
    }

    func removeMessages(_ db: Database, mailboxID: Int64, userID: Int64, modseq start: Int64, uids: [Int64]) throws -> (removed: [Int64], unlinked: [String]) {
        var modseq = start
        var removed: [Int64] = []
        var unlinked: [String] = []
        for uid in uids {
            guard let row = try Row.fetchOne(db, sql: "SELECT blob, size FROM messages WHERE mailbox_id = ? AND uid = ?",
                                             arguments: [mailboxID, uid]) else { continue }
            let blob: String = row["blob"]
            modseq += 1
            try db.cachedStatement(sql: "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?").execute(arguments: [mailboxID, uid])
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?, ?, ?)").execute(arguments: [mailboxID, uid, modseq])
            try db.cachedStatement(sql: "UPDATE usage SET bytes = bytes - ?, messages = messages - 1 WHERE user_id = ?").execute(arguments: [row["size"] as Int64, userID])
            try db.cachedStatement(sql: "UPDATE blobs SET refs = refs - 1 WHERE id = ?").execute(arguments: [blob])
            if try Int64.fetchOne(db.cachedStatement(sql: "SELECT refs FROM blobs WHERE id = ?"), arguments: [blob]) == 0 {
                try db.cachedStatement(sql: "DELETE FROM blobs WHERE id = ?").execute(arguments: [blob])
                try db.cachedStatement(sql: "DELETE FROM search_fields WHERE blob = ?").execute(arguments: [blob])
                unlinked.append(blob)
            }
            removed.append(uid)
        }
        try db.cachedStatement(sql: "UPDATE mailboxes SET highestmodseq = ? WHERE id = ?").execute(arguments: [modseq, mailboxID])
        return (removed, unlinked)
    }

    /// Copies messages into another mailbox of the same user, sharing their
    /// files; with `move`, removes the originals in the same transaction
    /// (RFC 6851). Returns (source UID, new UID) pairs for COPYUID (RFC 4315).
    public func copy(user: String, from source: String, to target: String, uids: [Int64], move: Bool,
                     quota: Int64) throws -> [(Int64, Int64)] {
        var unlinked: [String] = []
        let pairs = try db.write { db -> [(Int64, Int64)] in
            let from = try mailboxRow(db, user: user, mailbox: source)
            let to = try mailboxRow(db, user: user, mailbox: target)
            let userID: Int64 = from["user_id"]
            var uidnext: Int64 = to["uidnext"]
            var modseq: Int64 = to["highestmodseq"]
            var added: Int64 = 0
            var pairs: [(Int64, Int64)] = []
            for uid in uids {
                guard let row = try Row.fetchOne(db, sql: "SELECT blob, size, internal_date, flags, keywords FROM messages WHERE mailbox_id = ? AND uid = ?",
                                                 arguments: [from["id"] as Int64, uid]) else { continue }
                modseq += 1
                try db.cachedStatement(sql: """
                    INSERT INTO messages(mailbox_id, uid, blob, size, internal_date, modseq, flags, keywords) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [to["id"] as Int64, uidnext, row["blob"] as String, row["size"] as Int64, row["internal_date"] as Int64,
                                     modseq, row["flags"] as Int64, row["keywords"] as String])
                try db.cachedStatement(sql: "UPDATE blobs SET refs = refs + 1 WHERE id = ?").execute(arguments: [row["blob"] as String])
                try db.cachedStatement(sql: "UPDATE usage SET bytes = bytes + ?, messages = messages + 1 WHERE user_id = ?").execute(arguments: [row["size"] as Int64, userID])
                added += row["size"] as Int64
                pairs.append((uid, uidnext))
                uidnext += 1
            }
            if !move && quota > 0, let used = try Int64.fetchOne(db.cachedStatement(sql: "SELECT bytes FROM usage WHERE user_id = ?"), arguments: [userID]), used > quota {
                throw MailboxError.overQuota // rolls the transaction back
            }
            try db.cachedStatement(sql: "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?").execute(arguments: [uidnext, modseq, to["id"] as Int64])
            if move {
                let fromRow = try mailboxRow(db, user: user, mailbox: source)
                unlinked = try removeMessages(db, mailboxID: fromRow["id"], userID: userID, modseq: fromRow["highestmodseq"],
                                              uids: pairs.map(\.0)).unlinked
            }
            return pairs
        }
        for blob in unlinked { unlink(path(ofBlob: blob)) }
        try reloadCache()
        return pairs
    }

    /// RFC 9051 §6.3.4: a new mailbox; parents are implied by the hierarchy
    /// delimiter "/" and created as needed.
    public func createMailbox(user: String, name: String, now: Int64) throws {
        try db.write { db in
            guard let userID = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM users WHERE address = ?"), arguments: [user.lowercased()]) else {
                throw MailboxError.noSuchMailbox
            }
            if try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM mailboxes WHERE user_id = ? AND name = ?"), arguments: [userID, name]) != nil {
                throw MailboxError.alreadyExists
            }
            let parts = name.split(separator: "/")
            for k in 1...parts.count {
                let prefix = parts[0..<k].joined(separator: "/")
                try db.execute(sql: "INSERT OR IGNORE INTO mailboxes(user_id, name, uidvalidity) VALUES (?, ?, ?)",
                               arguments: [userID, prefix, now])
            }
        }
    }

    /// RFC 9051 §6.3.5: INBOX cannot be deleted; messages of a deleted
    /// mailbox are expunged. Child mailboxes stay.
    public func deleteMailbox(user: String, name: String) throws {
        guard name != "INBOX" else { throw MailboxError.notAllowed("INBOX cannot be deleted") }
        var unlinked: [String] = []
        try db.write { db in
            let mb = try mailboxRow(db, user: user, mailbox: name)
            let uids = try Int64.fetchAll(db.cachedStatement(sql: "SELECT uid FROM messages WHERE mailbox_id = ?"), arguments: [mb["id"] as Int64])
            unlinked = try removeMessages(db, mailboxID: mb["id"], userID: mb["user_id"], modseq: mb["highestmodseq"], uids: uids).unlinked
            try db.cachedStatement(sql: "DELETE FROM expunged WHERE mailbox_id = ?").execute(arguments: [mb["id"] as Int64])
            try db.cachedStatement(sql: "DELETE FROM mailboxes WHERE id = ?").execute(arguments: [mb["id"] as Int64])
        }
        for blob in unlinked { unlink(path(ofBlob: blob)) }
        try reloadCache()
    }

    /// RFC 9051 §6.3.6: renames a mailbox and its children; a new
    /// UIDVALIDITY is not needed because UIDs travel with the rows.
    /// Renaming INBOX moves its messages to the new name and leaves INBOX empty.
    public func renameMailbox(user: String, from: String, to: String, now: Int64) throws {
        try db.write { db in
            let mb = try mailboxRow(db, user: user, mailbox: from)
            let userID: Int64 = mb["user_id"]
            if try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM mailboxes WHERE user_id = ? AND name = ?"), arguments: [userID, to]) != nil {
                throw MailboxError.alreadyExists
            }
            if from == "INBOX" {
                try db.cachedStatement(sql: "UPDATE mailboxes SET name = ?, special_use = NULL WHERE id = ?").execute(arguments: [to, mb["id"] as Int64])
                try db.cachedStatement(sql: "INSERT INTO mailboxes(user_id, name, uidvalidity) VALUES (?, 'INBOX', ?)").execute(arguments: [userID, now])
                return
            }
            try db.cachedStatement(sql: "UPDATE mailboxes SET name = ? WHERE id = ?").execute(arguments: [to, mb["id"] as Int64])
            for row in try Row.fetchAll(db, sql: "SELECT id, name FROM mailboxes WHERE user_id = ? AND name LIKE ? ESCAPE '\\'",
                                        arguments: [userID, MailStore.likeEscape(from) + "/%"]) {
                let name: String = row["name"]
                try db.cachedStatement(sql: "UPDATE mailboxes SET name = ? WHERE id = ?").execute(arguments: [to + name.dropFirst(from.count), row["id"] as Int64])
            }
        }
    }

    static func likeEscape(_ s: String) -> String {
        s.replacingOccurrences("\\", "\\\\").replacingOccurrences("%", "\\%").replacingOccurrences("_", "\\_")
    }

    public func setSubscribed(user: String, mailbox: String, _ subscribed: Bool) throws {
        try db.write { db in
            let mb = try mailboxRow(db, user: user, mailbox: mailbox)
            try db.cachedStatement(sql: "UPDATE mailboxes SET subscribed = ? WHERE id = ?").execute(arguments: [subscribed, mb["id"] as Int64])
        }
    }

    /// STATUS figures (RFC 9051 §6.3.11, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE).
    public struct MailboxStatus: Hashable, Sendable {
        public var messages: Int64
        public var unseen: Int64
        public var uidNext: Int64
        public var uidValidity: Int64
        public var highestModseq: Int64
        public var size: Int64
        public var deleted: Int64
    }

    public func status(user: String, mailbox: String) throws -> MailboxStatus {
        try read { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT b.uidnext, b.uidvalidity, b.highestmodseq, count(m.id) AS n,
                       coalesce(sum(m.flags & 1 = 0), 0) AS unseen, coalesce(sum(m.size), 0) AS size,
                       coalesce(sum(m.flags & 8 != 0), 0) AS deleted
                FROM mailboxes b JOIN users u ON u.id = b.user_id LEFT JOIN messages m ON m.mailbox_id = b.id
                WHERE u.address = ? AND b.name = ? GROUP BY b.id
                """), arguments: [user.lowercased(), mailbox]) else { throw MailboxError.noSuchMailbox }
            return MailboxStatus(messages: row["n"], unseen: row["unseen"], uidNext: row["uidnext"], uidValidity: row["uidvalidity"],
                                 highestModseq: row["highestmodseq"], size: row["size"], deleted: row["deleted"])
        }
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

extension MailStore {
    /// All mailboxes of a user with their subscription state.
    public func mailboxList(user: String) throws -> [(name: String, specialUse: String?, subscribed: Bool)] {
        try read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT b.name, b.special_use, b.subscribed FROM mailboxes b JOIN users u ON u.id = b.user_id
                WHERE u.address = ? ORDER BY b.name = 'INBOX' DESC, b.name
                """), arguments: [user.lowercased()]).map { ($0["name"], $0["special_use"], $0["subscribed"]) }
        }
    }

    /// One message by UID.
    public func message(user: String, mailbox: String, uid: Int64) throws -> StoredMessage? {
        try read { db in
            try Row.fetchOne(db.cachedStatement(sql: """
                SELECT m.uid, m.size, m.blob, m.internal_date, m.modseq, m.flags, m.keywords FROM messages m
                JOIN mailboxes b ON b.id = m.mailbox_id JOIN users u ON u.id = b.user_id
                WHERE u.address = ? AND b.name = ? AND m.uid = ?
                """), arguments: [user.lowercased(), mailbox, uid]).map {
                StoredMessage(uid: $0["uid"], size: $0["size"], blob: $0["blob"], path: path(ofBlob: $0["blob"]),
                              internalDate: $0["internal_date"], modseq: $0["modseq"], flags: $0["flags"],
                              keywords: ($0["keywords"] as String).split(separator: " ").map(String.init))
            }
        }
    }

    /// The UID a blob got in a mailbox (APPENDUID, RFC 4315).
    public func uid(ofBlob blob: String, user: String, mailbox: String) throws -> Int64? {
        try read { db in
            try Int64.fetchOne(db.cachedStatement(sql: """
                SELECT m.uid FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id JOIN users u ON u.id = b.user_id
                WHERE u.address = ? AND b.name = ? AND m.blob = ?
                """), arguments: [user.lowercased(), mailbox, blob])
        }
    }
}

/// What changed in a mailbox after a MODSEQ (RFC 7162): messages added or
/// with new flags, and UIDs expunged. `since: 0` lists every message.
public struct MailboxChanges: Sendable {
    public var uidValidity: Int64
    public var uidNext: Int64 = 0
    public var highestModseq: Int64
    public var changed: [StoredMessage]
    public var expunged: [Int64]
}

extension MailStore {
    /// One indexed query per table: cheap enough to run before every IMAP
    /// command, which is how sessions keep their view of a mailbox current.
    public func changes(user: String, mailbox: String, since modseq: Int64) throws -> MailboxChanges {
        try read { db in
            let mb = try mailboxRow(db, user: user, mailbox: mailbox)
            let id: Int64 = mb["id"]
            let highest: Int64 = mb["highestmodseq"]
            let validity: Int64 = mb["uidvalidity"]
            let uidNext: Int64 = mb["uidnext"]
            if modseq >= highest {
                return MailboxChanges(uidValidity: validity, uidNext: uidNext, highestModseq: highest, changed: [], expunged: [])
            }
            var changed: [StoredMessage] = []
            let rows = try Row.fetchCursor(db.cachedStatement(sql: """
                SELECT uid, size, blob, internal_date, modseq, flags, keywords FROM messages
                WHERE mailbox_id = ? AND modseq > ? ORDER BY uid
                """), arguments: [id, modseq])
            while let row = try rows.next() {
                // Columns by position: by-name lookups cost more than the rest for big mailboxes.
                let blob: String = row[2], keywords: String = row[6]
                changed.append(StoredMessage(uid: row[0], size: row[1], blob: blob, path: path(ofBlob: blob), internalDate: row[3],
                                             modseq: row[4], flags: row[5],
                                             keywords: keywords.isEmpty ? [] : keywords.split(separator: " ").map(String.init)))
            }
            let expunged = modseq == 0 ? [] : try Int64.fetchAll(db.cachedStatement(sql: "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid"),
                                                                 arguments: [id, modseq])
            return MailboxChanges(uidValidity: validity, uidNext: uidNext, highestModseq: highest, changed: changed, expunged: expunged)
        }
    }

    /// A message file's bytes by its blob id, for readers that already hold
    /// the id from `changes` (no index lookup per message).
    public func readBlob(_ blob: String) throws -> [UInt8] {
        guard !blob.isEmpty, blob.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw MailboxError.notAllowed("bad message id")
        }
        let relative = MailStore.bucket(of: blob) + "/" + blob
        do {
            return try DurableFile.readAll(relative, in: messagesFD)
        } catch var e as FileSystemError {
            e.path = directory + "/messages/" + relative  // the whole path in the report
            throw e
        }
    }
}

/// What IMAP keeps of a message besides its file (schema 3): the header
/// block, and the ENVELOPE and BODYSTRUCTURE as rendered by `version`.
public struct MessageRenderings: Sendable {
    public var header: [UInt8]?
    public var envelope: [UInt8]?
    public var bodyStructure: [UInt8]?
    /// The searched fields' lines of the header block (schema 4).
    public var searchFields: [UInt8]?
    public init(header: [UInt8]? = nil, envelope: [UInt8]? = nil, bodyStructure: [UInt8]? = nil, searchFields: [UInt8]? = nil) {
        self.header = header; self.envelope = envelope; self.bodyStructure = bodyStructure; self.searchFields = searchFields
    }

    /// Which renderings a reader wants.
    public enum Parts: Sendable {
        /// Header block, ENVELOPE and BODYSTRUCTURE.
        case all
        /// The header block only.
        case header
        /// The search fields only.
        case searchFields
    }
}

extension MailStore {
    /// Cached renderings of messages by blob id; renderings made by another
    /// renderer version are left out (the header block is version-free).
    public func renderings(blobs: [String], version: Int64, parts: MessageRenderings.Parts = .all) throws -> [String: MessageRenderings] {
        var out: [String: MessageRenderings] = [:]
        out.reserveCapacity(blobs.count)
        // The rows of `blobs`, 512 ids per statement at most, read in place (a
        // cursor; blobs copied once from SQLite's buffer into arrays).
        func rows(_ db: Database, _ select: String, _ body: (Row) throws -> Void) throws {
            var i = 0
            while i < blobs.count {
                let part = Array(blobs[i..<min(i + 512, blobs.count)])
                i += part.count
                // Padded with "" (no blob's id) to a power of two: a few prepared
                // statements serve every batch size.
                var size = 1
                while size < part.count { size *= 2 }
                let marks = Array(repeating: "?", count: size).joined(separator: ",")
                let cursor = try Row.fetchCursor(db.cachedStatement(sql: select + " IN (\(marks))"),
                                                 arguments: StatementArguments(part + Array(repeating: "", count: size - part.count)))
                while let row = try cursor.next() { try body(row) }
            }
        }
        func bytes(_ row: Row, _ column: Int) throws -> [UInt8]? {
            try row.withUnsafeData(atIndex: column) { data in data.map { d in d.withUnsafeBytes { [UInt8]($0) } } }
        }
        if parts == .searchFields {
            try read { db in
                try rows(db, "SELECT blob, fields FROM search_fields WHERE blob") { row in
                    out[row[0]] = MessageRenderings(searchFields: try bytes(row, 1) ?? [])
                }
            }
            return out
        }
        let columns = parts == .header ? "id, header, NULL, NULL, 0" : "id, header, envelope, bodystructure, render_version"
        try read { db in
            // Columns by position (by-name lookups cost more than the rest here).
            try rows(db, "SELECT \(columns) FROM blobs WHERE id") { row in
                let current = (row[4] as Int64) == version
                out[row[0]] = MessageRenderings(header: try bytes(row, 1),
                                                envelope: current ? try bytes(row, 2) : nil,
                                                bodyStructure: current ? try bytes(row, 3) : nil)
            }
        }
        return out
    }

    /// Keeps renderings for later sessions (one transaction for the batch).
    public func saveRenderings(_ entries: [String: MessageRenderings], version: Int64) throws {
        guard !entries.isEmpty else { return }
        try db.write { db in
            for (blob, r) in entries {
                if let f = r.searchFields {
                    try db.cachedStatement(sql: """
                        INSERT OR REPLACE INTO search_fields(blob, fields) SELECT ?, ? WHERE EXISTS (SELECT 1 FROM blobs WHERE id = ?)
                        """).execute(arguments: [blob, Data(f), blob])
                }
                guard r.header != nil || r.envelope != nil || r.bodyStructure != nil else { continue }
                try db.cachedStatement(sql: """
                    UPDATE blobs SET header = coalesce(?, header),
                        envelope = coalesce(?, CASE WHEN render_version = ? THEN envelope END),
                        bodystructure = coalesce(?, CASE WHEN render_version = ? THEN bodystructure END),
                        render_version = ? WHERE id = ?
                    """).execute(arguments: [r.header.map { Data($0) }, r.envelope.map { Data($0) }, version,
                                             r.bodyStructure.map { Data($0) }, version, version, blob])
            }
        }
    }
}
