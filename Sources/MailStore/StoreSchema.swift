import GRDB

/// The index schema (docs/DATA-DIR.md). Migrations are numbered and only
/// ever appended.
enum StoreSchema {
    static let migrations: [String] = [
        """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE users(id INTEGER PRIMARY KEY, address TEXT NOT NULL UNIQUE COLLATE NOCASE);
        CREATE TABLE mailboxes(
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            name TEXT NOT NULL,
            special_use TEXT,
            uidvalidity INTEGER NOT NULL,
            uidnext INTEGER NOT NULL DEFAULT 1,
            highestmodseq INTEGER NOT NULL DEFAULT 1,
            subscribed INTEGER NOT NULL DEFAULT 1,
            UNIQUE(user_id, name));
        CREATE TABLE blobs(id TEXT PRIMARY KEY, size INTEGER NOT NULL, refs INTEGER NOT NULL);
        CREATE TABLE messages(
            id INTEGER PRIMARY KEY,
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),
            uid INTEGER NOT NULL,
            blob TEXT NOT NULL REFERENCES blobs(id),
            size INTEGER NOT NULL,
            internal_date INTEGER NOT NULL,
            modseq INTEGER NOT NULL,
            flags INTEGER NOT NULL DEFAULT 0,
            keywords TEXT NOT NULL DEFAULT '',
            UNIQUE(mailbox_id, uid));
        CREATE TABLE usage(user_id INTEGER PRIMARY KEY REFERENCES users(id), bytes INTEGER NOT NULL, messages INTEGER NOT NULL);
        """,
        // 2: expunged UIDs with their MODSEQ, for QRESYNC's VANISHED (RFC 7162 §3.2.10),
        // and an index for per-mailbox changes.
        """
        CREATE TABLE expunged(mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id), uid INTEGER NOT NULL, modseq INTEGER NOT NULL,
            PRIMARY KEY(mailbox_id, uid));
        CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
        CREATE INDEX messages_blob ON messages(blob);
        """,
        // 3: per-message renderings cached for IMAP (header block, ENVELOPE,
        // BODYSTRUCTURE), filled on first use; `render_version` says which
        // renderer made the last two.
        """
        ALTER TABLE blobs ADD COLUMN header BLOB;
        ALTER TABLE blobs ADD COLUMN envelope BLOB;
        ALTER TABLE blobs ADD COLUMN bodystructure BLOB;
        ALTER TABLE blobs ADD COLUMN render_version INTEGER NOT NULL DEFAULT 0;
        """,
        // 4: the header fields SEARCH, SORT and THREAD read (From, To, Cc,
        // Bcc, Subject, Date, Message-ID, In-Reply-To, References), as lines of
        // the header block, in a table of their own: small rows, read by the
        // thousand per search without touching the larger renderings.
        """
        CREATE TABLE search_fields(blob TEXT PRIMARY KEY, fields BLOB NOT NULL) WITHOUT ROWID;
        """,
    ]

    static func migrate(_ db: Database) throws {
        try db.execute(sql: "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")
        let current = try Int.fetchOne(db, sql: "SELECT max(version) FROM schema_version") ?? 0
        for (i, sql) in migrations.enumerated() where i + 1 > current {
            try db.execute(sql: sql)
            try db.execute(sql: "INSERT INTO schema_version(version) VALUES (?)", arguments: [i + 1])
        }
    }
}

/// The default mailboxes and their RFC 6154 roles.
public enum DefaultMailboxes {
    public static let all: [(name: String, specialUse: String?)] = [
        ("INBOX", nil), ("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Junk", "\\Junk"),
        ("Trash", "\\Trash"), ("Archive", "\\Archive"),
    ]
}
