import GRDB
import MailCore
#if canImport(Glibc)
import Glibc
#endif

/// What the admin API asks of the store about whole users: their usage, and
/// removing one with all of its mail (docs/ADMIN-API.md).
extension MailStore {
    /// Bytes and message count of one user, as the `usage` table keeps them
    /// (in the same transactions as `messages`).
    public struct UserUsage: Hashable, Sendable {
        public var bytes: Int64
        public var messages: Int64

        public init(bytes: Int64, messages: Int64) {
            self.bytes = bytes
            self.messages = messages
        }
    }

    /// Usage of every user the store knows, by lower-cased address.
    public func usageByUser() throws -> [String: UserUsage] {
        try read { db in
            var out: [String: UserUsage] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT u.address, g.bytes, g.messages FROM usage g JOIN users u ON u.id = g.user_id") {
                out[(row["address"] as String).lowercased()] = UserUsage(bytes: row["bytes"], messages: row["messages"])
            }
            return out
        }
    }

    /// Removes a user and everything stored for it: messages (a file goes
    /// when its last reference does, as with EXPUNGE), mailboxes, expunged
    /// UIDs, the usage row and the user row, in one transaction; files are
    /// unlinked only after it has committed. A user the store does not know
    /// is no error (false). Call on the store thread (the one writer).
    @discardableResult
    public func deleteUser(_ address: String) throws -> Bool {
        var unlinked: [String] = []
        let found = try db.write { db -> Bool in
            guard let userID = try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE address = ?", arguments: [address.lowercased()]) else {
                return false
            }
            for mb in try Row.fetchAll(db, sql: "SELECT id, highestmodseq FROM mailboxes WHERE user_id = ?", arguments: [userID]) {
                let id: Int64 = mb["id"]
                let uids = try Int64.fetchAll(db, sql: "SELECT uid FROM messages WHERE mailbox_id = ?", arguments: [id])
                unlinked += try removeMessages(db, mailboxID: id, userID: userID, modseq: mb["highestmodseq"], uids: uids).unlinked
                try db.execute(sql: "DELETE FROM expunged WHERE mailbox_id = ?", arguments: [id])
            }
            try db.execute(sql: "DELETE FROM mailboxes WHERE user_id = ?", arguments: [userID])
            try db.execute(sql: "DELETE FROM usage WHERE user_id = ?", arguments: [userID])
            try db.execute(sql: "DELETE FROM users WHERE id = ?", arguments: [userID])
            return true
        }
        for blob in unlinked { unlink(path(ofBlob: blob)) }
        try reloadCache()
        return found
    }
}
