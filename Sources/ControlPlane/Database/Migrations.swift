import Foundation

/// Versioned schema migrations. Each runs once, in its own transaction, and
/// is recorded in `schema_migrations`; the same statements run on SQLite and
/// PostgreSQL (BIGINT, TEXT, no dialect-specific types). Never edit a
/// migration that has shipped: add the next one.
public struct Migration: Sendable {
    public var version: Int
    public var name: String
    public var statements: [String]
}

public enum Migrations {
    public static let all: [Migration] = [
        Migration(version: 1, name: "initial model", statements: [
            """
            CREATE TABLE plans (
              id TEXT PRIMARY KEY, name TEXT NOT NULL, currency TEXT NOT NULL, monthly_price TEXT NOT NULL,
              mailboxes BIGINT NOT NULL, storage_bytes BIGINT NOT NULL, messages_per_day BIGINT NOT NULL,
              domains BIGINT NOT NULL, active BIGINT NOT NULL DEFAULT 1)
            """,
            """
            CREATE TABLE hosts (
              id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, backend TEXT NOT NULL,
              capacity_cells BIGINT NOT NULL, port_base BIGINT NOT NULL, port_stride BIGINT NOT NULL,
              created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE tenants (
              id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL, plan_id TEXT NOT NULL REFERENCES plans(id),
              status TEXT NOT NULL, status_reason TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX tenants_status ON tenants(status)",
            """
            CREATE TABLE users (
              id TEXT PRIMARY KEY, tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE, email TEXT NOT NULL UNIQUE,
              password_hash TEXT NOT NULL, role TEXT NOT NULL, email_verified_at BIGINT,
              totp_secret TEXT, totp_enabled BIGINT NOT NULL DEFAULT 0, totp_last_step BIGINT NOT NULL DEFAULT 0,
              disabled BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, last_login_at BIGINT)
            """,
            "CREATE INDEX users_tenant ON users(tenant_id)",
            """
            CREATE TABLE email_verifications (
              token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
              expires_at BIGINT NOT NULL, used_at BIGINT)
            """,
            """
            CREATE TABLE sessions (
              id_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
              csrf_secret TEXT NOT NULL, second_factor_pending BIGINT NOT NULL DEFAULT 0,
              created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, ip TEXT)
            """,
            "CREATE INDEX sessions_user ON sessions(user_id)",
            """
            CREATE TABLE api_tokens (
              token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
              name TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT)
            """,
            """
            CREATE TABLE cells (
              id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL UNIQUE REFERENCES tenants(id) ON DELETE CASCADE,
              host_id TEXT NOT NULL REFERENCES hosts(id), slot BIGINT NOT NULL, desired_state TEXT NOT NULL,
              observed_phase TEXT NOT NULL DEFAULT 'pending', healthy BIGINT NOT NULL DEFAULT 0,
              restarts BIGINT NOT NULL DEFAULT 0, last_exit TEXT, detail TEXT, observed_at BIGINT,
              created_at BIGINT NOT NULL, UNIQUE (host_id, slot))
            """,
            "CREATE INDEX cells_phase ON cells(observed_phase)",
            """
            CREATE TABLE domains (
              name TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
              kind TEXT NOT NULL, verified_at BIGINT, created_at BIGINT NOT NULL)
            """,
            "CREATE INDEX domains_tenant ON domains(tenant_id)",
            """
            CREATE TABLE mailboxes (
              address TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
              display_name TEXT NOT NULL, password_hash TEXT NOT NULL, quota_bytes BIGINT,
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX mailboxes_tenant ON mailboxes(tenant_id)",
            """
            CREATE TABLE aliases (
              address TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
              targets TEXT NOT NULL, created_at BIGINT NOT NULL)
            """,
            "CREATE INDEX aliases_tenant ON aliases(tenant_id)",
            """
            CREATE TABLE audit_log (
              id TEXT PRIMARY KEY, at BIGINT NOT NULL, actor_id TEXT, actor_email TEXT, actor_role TEXT,
              tenant_id TEXT, action TEXT NOT NULL, target TEXT, detail TEXT, ip TEXT)
            """,
            "CREATE INDEX audit_at ON audit_log(at)",
            "CREATE INDEX audit_tenant ON audit_log(tenant_id, at)",
        ]),
        Migration(version: 2, name: "password resets; expiry indexes for the clean-up job", statements: [
            """
            CREATE TABLE password_resets (
              token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
              created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT)
            """,
            "CREATE INDEX password_resets_user ON password_resets(user_id)",
            "CREATE INDEX sessions_expires ON sessions(expires_at)",
            "CREATE INDEX email_verifications_expires ON email_verifications(expires_at)",
            "CREATE INDEX api_tokens_user ON api_tokens(user_id)",
        ]),
        Migration(version: 3, name: "tenant list order index", statements: [
            "CREATE INDEX tenants_created ON tenants(created_at, id)",
        ]),
        // Tokens get a public id (to list and revoke them without the hash)
        // and the time of their last use.
        Migration(version: 4, name: "api token ids and last use", statements: [
            "ALTER TABLE api_tokens ADD COLUMN id TEXT",
            "ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT",
            "UPDATE api_tokens SET id = 'tok-' || substr(token_hash, 1, 16) WHERE id IS NULL",
            "CREATE UNIQUE INDEX api_tokens_id ON api_tokens(id)",
        ]),
    ]

    /// Applies every migration not yet applied, in order; returns the versions applied now.
    @discardableResult
    /// `upTo` stops at a version (tests of a later migration's data steps).
    public static func run(on db: any SQLDatabase, upTo last: Int = .max, now: Int64 = Int64(Date().timeIntervalSince1970)) async throws -> [Int] {
        try await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)", [])
        let done = Set(try await db.query("SELECT version FROM schema_migrations", []).compactMap { $0.int("version") })
        var applied: [Int] = []
        for m in all.sorted(by: { $0.version < $1.version }) where !done.contains(Int64(m.version)) && m.version <= last {
            try await db.transaction { tx in
                for s in m.statements { try await tx.execute(s, []) }
                try await tx.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                                     [.int(Int64(m.version)), .text(m.name), .int(now)])
            }
            applied.append(m.version)
        }
        return applied
    }
}
