import GRDB
import MailCore

extension MailStore {
    /// A full consistency check of index against files (run while no engine
    /// writes): every message row's file exists with its size, reference
    /// counts and usage match, UIDs are below UIDNEXT, no stray files remain.
    /// Returns the problems found; empty means consistent.
    public func check() throws -> [String] {
        var problems: [String] = []
        try read { db in
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            if integrity != ["ok"] { problems.append("sqlite integrity: \(integrity.joined(separator: "; "))") }
            for row in try Row.fetchAll(db, sql: """
                SELECT b.id, b.size, b.refs, (SELECT count(*) FROM messages m WHERE m.blob = b.id) AS n FROM blobs b
                """) {
                let id: String = row["id"]
                let size: Int64 = row["size"]
                if row["refs"] as Int64 != row["n"] as Int64 { problems.append("blob \(id): refs \(row["refs"] as Int64) but \(row["n"] as Int64) messages") }
                let p = path(ofBlob: id)
                if let actual = DurableFile.fileSize(p) {
                    if Int64(actual) != size { problems.append("blob \(id): size \(actual) on disk, \(size) in index") }
                } else {
                    problems.append("blob \(id): file missing")
                }
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT b.name, b.uidnext, max(m.uid) AS maxuid, count(m.id) AS n, count(DISTINCT m.uid) AS d
                FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id GROUP BY b.id
                """) {
                if let maxUID = row["maxuid"] as Int64?, maxUID >= row["uidnext"] as Int64 {
                    problems.append("mailbox \(row["name"] as String): uid \(maxUID) not below uidnext")
                }
                if row["n"] as Int64 != row["d"] as Int64 { problems.append("mailbox \(row["name"] as String): duplicate uids") }
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT u.address, g.bytes, g.messages,
                  (SELECT coalesce(sum(m.size), 0) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.user_id = u.id) AS s,
                  (SELECT count(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.user_id = u.id) AS c
                FROM users u JOIN usage g ON g.user_id = u.id
                """) where row["bytes"] as Int64 != row["s"] as Int64 || row["messages"] as Int64 != row["c"] as Int64 {
                problems.append("usage of \(row["address"] as String): \(row["bytes"] as Int64) bytes/\(row["messages"] as Int64) recorded, \(row["s"] as Int64)/\(row["c"] as Int64) actual")
            }
            let known = try Set(String.fetchAll(db, sql: "SELECT id FROM blobs"))
            for bucket in DurableFile.list(directory + "/messages") {
                for name in DurableFile.list(directory + "/messages/" + bucket) where !known.contains(name) {
                    problems.append("file messages/\(bucket)/\(name) has no index entry")
                }
            }
        }
        for name in DurableFile.list(directory + "/tmp") { problems.append("leftover tmp/\(name)") }
        return problems
    }
}
