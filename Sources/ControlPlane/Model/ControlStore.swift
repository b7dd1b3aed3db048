import Foundation

/// Every statement the control plane runs, in one place, over either
/// database. Methods take an executor so the service layer can group them in
/// a transaction.
public struct ControlStore: Sendable {
    public let db: any SQLDatabase
    public init(db: any SQLDatabase) { self.db = db }

    // MARK: Plans
    public func upsertPlan(_ p: Plan, on x: (any SQLExecutor)? = nil) async throws {
        try await (x ?? db).execute("""
            INSERT INTO plans (id, name, currency, monthly_price, mailboxes, storage_bytes, messages_per_day, domains, active)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, currency = excluded.currency,
              monthly_price = excluded.monthly_price, mailboxes = excluded.mailboxes, storage_bytes = excluded.storage_bytes,
              messages_per_day = excluded.messages_per_day, domains = excluded.domains, active = 1
            """, [.text(p.id), .text(p.name), .text(p.currency), .text(p.monthlyPrice), .int(Int64(p.mailboxes)),
                  .int(p.storageBytes), .int(Int64(p.messagesPerDay)), .int(Int64(p.domains))])
    }
    public func deactivatePlans(except ids: [String]) async throws {
        let all = try await db.query("SELECT id FROM plans", [])
        for r in all where !ids.contains(r.string("id")) {
            try await db.execute("UPDATE plans SET active = 0 WHERE id = ?", [.text(r.string("id"))])
        }
    }
    public func plans(activeOnly: Bool = true) async throws -> [Plan] {
        try await db.query("SELECT * FROM plans" + (activeOnly ? " WHERE active = 1" : "") + " ORDER BY storage_bytes, id", []).map(Self.plan)
    }
    public func plan(_ id: String, on x: (any SQLExecutor)? = nil) async throws -> Plan? {
        try await (x ?? db).query("SELECT * FROM plans WHERE id = ?", [.text(id)]).first.map(Self.plan)
    }
    /// A plan on offer now (plans.json no longer listing it retires it).
    public func activePlan(_ id: String) async throws -> Plan? {
        try await db.query("SELECT * FROM plans WHERE id = ? AND active = 1", [.text(id)]).first.map(Self.plan)
    }
    static func plan(_ r: SQLRow) -> Plan {
        Plan(id: r.string("id"), name: r.string("name"), currency: r.string("currency"), monthlyPrice: r.string("monthly_price"),
             mailboxes: Int(r.int("mailboxes") ?? 0), storageBytes: r.int("storage_bytes") ?? 0,
             messagesPerDay: Int(r.int("messages_per_day") ?? 0), domains: Int(r.int("domains") ?? 0))
    }

    // MARK: Hosts
    public func hosts() async throws -> [CellHost] {
        try await db.query("SELECT * FROM hosts ORDER BY name", []).map(Self.host)
    }
    public func insertHost(_ h: CellHost, now: Int64) async throws {
        try await db.execute("INSERT INTO hosts (id, name, backend, capacity_cells, port_base, port_stride, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [.text(h.id), .text(h.name), .text(h.backend), .int(Int64(h.capacityCells)), .int(Int64(h.portBase)), .int(Int64(h.portStride)), .int(now)])
    }
    static func host(_ r: SQLRow) -> CellHost {
        CellHost(id: r.string("id"), name: r.string("name"), backend: r.string("backend"), capacityCells: Int(r.int("capacity_cells") ?? 0),
             portBase: Int(r.int("port_base") ?? 0), portStride: Int(r.int("port_stride") ?? 0))
    }

    // MARK: Tenants
    public func insertTenant(_ t: Tenant, on x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO tenants (id, slug, name, plan_id, status, status_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [.text(t.id), .text(t.slug), .text(t.name), .text(t.planID), .text(t.status.rawValue), .optional(t.statusReason), .int(t.createdAt), .int(t.createdAt)])
    }
    public func tenant(_ id: String, on x: (any SQLExecutor)? = nil) async throws -> Tenant? {
        try await (x ?? db).query("SELECT * FROM tenants WHERE id = ?", [.text(id)]).first.map(Self.tenant)
    }
    public func tenant(slug: String) async throws -> Tenant? {
        try await db.query("SELECT * FROM tenants WHERE slug = ?", [.text(slug)]).first.map(Self.tenant)
    }
    public func setTenantPlan(_ id: String, plan: String, now: Int64, on x: (any SQLExecutor)? = nil) async throws {
        try await (x ?? db).execute("UPDATE tenants SET plan_id = ?, updated_at = ? WHERE id = ?", [.text(plan), .int(now), .text(id)])
    }
    public func domainCount(tenant: String, on x: any SQLExecutor) async throws -> Int64 {
        try await x.query("SELECT COUNT(*) AS n FROM domains WHERE tenant_id = ?", [.text(tenant)]).first?.int("n") ?? 0
    }
    public func setTenantStatus(_ id: String, _ s: TenantStatus, reason: String?, now: Int64, on x: (any SQLExecutor)? = nil) async throws {
        try await (x ?? db).execute("UPDATE tenants SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
                                    [.text(s.rawValue), .optional(reason), .int(now), .text(id)])
    }
    /// Tenants whose slug, name, owner e-mail or a mailbox address contains `q`.
    public func searchTenants(_ q: String, status: TenantStatus?, limit: Int, offset: Int) async throws -> [Tenant] {
        var sql = "SELECT * FROM tenants t WHERE 1 = 1"
        var binds: [SQLValue] = []
        if !q.isEmpty {
            let like = "%" + q.lowercased().replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
            // One pass over each table (a UNION of ids), not two correlated
            // subqueries per tenant.
            sql += """
                 AND t.id IN (SELECT id FROM tenants WHERE LOWER(slug) LIKE ? ESCAPE '\\' OR LOWER(name) LIKE ? ESCAPE '\\' OR id = ?
                  UNION SELECT tenant_id FROM users WHERE email LIKE ? ESCAPE '\\' AND tenant_id IS NOT NULL
                  UNION SELECT tenant_id FROM mailboxes WHERE address LIKE ? ESCAPE '\\')
                """
            binds += [.text(like), .text(like), .text(q), .text(like), .text(like)]
        }
        if let status { sql += " AND t.status = ?"; binds.append(.text(status.rawValue)) }
        sql += " ORDER BY t.created_at DESC, t.id LIMIT ? OFFSET ?"
        binds += [.int(Int64(limit)), .int(Int64(offset))]
        return try await db.query(sql, binds).map(Self.tenant)
    }
    public func tenantCounts() async throws -> [String: Int] {
        var out: [String: Int] = [:]
        for r in try await db.query("SELECT status, COUNT(*) AS n FROM tenants GROUP BY status", []) { out[r.string("status")] = Int(r.int("n") ?? 0) }
        return out
    }
    static func tenant(_ r: SQLRow) -> Tenant {
        Tenant(id: r.string("id"), slug: r.string("slug"), name: r.string("name"), planID: r.string("plan_id"),
               status: TenantStatus(rawValue: r.string("status")) ?? .pending, statusReason: r.text("status_reason"), createdAt: r.int("created_at") ?? 0)
    }

    // MARK: Users
    public func insertUser(_ u: PanelUser, now: Int64, on x: (any SQLExecutor)? = nil) async throws {
        try await (x ?? db).execute("""
            INSERT INTO users (id, tenant_id, email, password_hash, role, email_verified_at, totp_secret, totp_enabled, totp_last_step, disabled, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(u.id), .optional(u.tenantID), .text(u.email), .text(u.passwordHash), .text(u.role.rawValue),
                  u.emailVerified ? .int(now) : .null, .optional(u.totpSecret), .bool(u.totpEnabled), .int(u.totpLastStep), .bool(u.disabled), .int(now)])
    }
    public func user(id: String, on x: (any SQLExecutor)? = nil) async throws -> PanelUser? {
        try await (x ?? db).query("SELECT * FROM users WHERE id = ?", [.text(id)]).first.map(Self.user)
    }
    public func user(email: String) async throws -> PanelUser? {
        try await db.query("SELECT * FROM users WHERE email = ?", [.text(email.lowercased())]).first.map(Self.user)
    }
    public func owners(tenant: String) async throws -> [PanelUser] {
        try await db.query("SELECT * FROM users WHERE tenant_id = ? ORDER BY created_at", [.text(tenant)]).map(Self.user)
    }
    public func staffCount() async throws -> Int64 {
        try await db.scalar("SELECT COUNT(*) AS n FROM users WHERE tenant_id IS NULL")
    }
    public func updateUser(_ id: String, set column: String, _ value: SQLValue, on x: (any SQLExecutor)? = nil) async throws {
        precondition(["password_hash", "email_verified_at", "totp_secret", "totp_enabled", "totp_last_step", "disabled", "last_login_at"].contains(column))
        try await (x ?? db).execute("UPDATE users SET \(column) = ? WHERE id = ?", [value, .text(id)])
    }
    /// Records a TOTP time step as used, once: false when it was already.
    public func consumeTOTPStep(_ id: String, step: Int64) async throws -> Bool {
        try await !db.query("UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ? RETURNING id",
                            [.int(step), .text(id), .int(step)]).isEmpty
    }
    static func user(_ r: SQLRow) -> PanelUser {
        PanelUser(id: r.string("id"), tenantID: r.text("tenant_id"), email: r.string("email"), passwordHash: r.string("password_hash"),
                  role: Role(rawValue: r.string("role")) ?? .owner, emailVerified: r.int("email_verified_at") != nil,
                  totpSecret: r.text("totp_secret"), totpEnabled: r.bool("totp_enabled"), totpLastStep: r.int("totp_last_step") ?? 0,
                  disabled: r.bool("disabled"))
    }

    // MARK: E-mail verification
    public func insertVerification(tokenHash: String, user: String, expires: Int64, on x: (any SQLExecutor)? = nil) async throws {
        try await (x ?? db).execute("INSERT INTO email_verifications (token_hash, user_id, expires_at) VALUES (?, ?, ?)",
                                    [.text(tokenHash), .text(user), .int(expires)])
    }
    /// Marks a token used and returns its user, if it was valid and unused.
    public func consumeVerification(tokenHash: String, now: Int64, on x: any SQLExecutor) async throws -> String? {
        try await x.query("UPDATE email_verifications SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING user_id",
                          [.int(now), .text(tokenHash), .int(now)]).first?.text("user_id")
    }

    // MARK: Sessions and API tokens
    public func insertSession(idHash: String, user: String, csrfSecret: String, pendingSecondFactor: Bool, now: Int64, expires: Int64, ip: String?) async throws {
        try await db.execute("INSERT INTO sessions (id_hash, user_id, csrf_secret, second_factor_pending, created_at, expires_at, ip) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [.text(idHash), .text(user), .text(csrfSecret), .bool(pendingSecondFactor), .int(now), .int(expires), .optional(ip)])
    }
    public func session(idHash: String, now: Int64) async throws -> (user: String, csrfSecret: String, pending: Bool)? {
        guard let r = try await db.first("SELECT * FROM sessions WHERE id_hash = ? AND expires_at > ?", .text(idHash), .int(now)) else { return nil }
        return (r.string("user_id"), r.string("csrf_secret"), r.bool("second_factor_pending"))
    }
    public func completeSecondFactor(idHash: String) async throws {
        try await db.execute("UPDATE sessions SET second_factor_pending = 0 WHERE id_hash = ?", [.text(idHash)])
    }
    public func deleteSession(idHash: String) async throws {
        try await db.execute("DELETE FROM sessions WHERE id_hash = ?", [.text(idHash)])
    }
    public func deleteSessions(user: String, except idHash: String? = nil) async throws {
        try await db.execute("DELETE FROM sessions WHERE user_id = ? AND id_hash <> ?", [.text(user), .text(idHash ?? "")])
    }
    public func deleteExpiredSessions(now: Int64) async throws {
        try await db.execute("DELETE FROM sessions WHERE expires_at <= ?", [.int(now)])
    }
    public func insertAPIToken(id: String, hash: String, user: String, name: String, now: Int64, expires: Int64?) async throws {
        try await db.execute("INSERT INTO api_tokens (id, token_hash, user_id, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                             [.text(id), .text(hash), .text(user), .text(name), .int(now), .optional(expires)])
    }
    /// The user a live token belongs to, and when it was last used.
    public func apiTokenUser(hash: String, now: Int64) async throws -> (user: String, lastUsedAt: Int64?)? {
        guard let row = try await db.first("SELECT user_id, last_used_at FROM api_tokens WHERE token_hash = ? AND (expires_at IS NULL OR expires_at > ?)",
                                           .text(hash), .int(now)),
              let user = row.text("user_id") else { return nil }
        return (user, row.int("last_used_at"))
    }
    public func touchAPIToken(hash: String, now: Int64) async throws {
        try await db.execute("UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?", [.int(now), .text(hash)])
    }
    public func apiTokens(user: String, now: Int64) async throws -> [APIToken] {
        try await db.query("SELECT id, name, created_at, expires_at, last_used_at FROM api_tokens WHERE user_id = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at, id",
                           [.text(user), .int(now)]).map { row in
            APIToken(id: row.text("id") ?? "", name: row.text("name") ?? "", createdAt: row.int("created_at") ?? 0,
                     expiresAt: row.int("expires_at"), lastUsedAt: row.int("last_used_at"))
        }
    }
    public func deleteAPITokens(user: String) async throws {
        try await db.execute("DELETE FROM api_tokens WHERE user_id = ?", [.text(user)])
    }
    /// Deletes one of the user's tokens; false when they have none with that id.
    public func deleteAPIToken(id: String, user: String) async throws -> Bool {
        try await !db.query("DELETE FROM api_tokens WHERE id = ? AND user_id = ? RETURNING id", [.text(id), .text(user)]).isEmpty
    }

    // MARK: Cells
    public func insertCell(_ c: Cell, now: Int64, on x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO cells (id, tenant_id, host_id, slot, desired_state, observed_phase, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                            [.text(c.id), .text(c.tenantID), .text(c.hostID), .int(Int64(c.slot)), .text(c.desiredState), .int(now)])
    }
    public func cell(tenant: String, on x: (any SQLExecutor)? = nil) async throws -> Cell? {
        try await (x ?? db).query("SELECT * FROM cells WHERE tenant_id = ?", [.text(tenant)]).first.map(Self.cell)
    }
    public func cells(host: String? = nil) async throws -> [Cell] {
        if let host { return try await db.query("SELECT * FROM cells WHERE host_id = ? ORDER BY slot", [.text(host)]).map(Self.cell) }
        return try await db.query("SELECT * FROM cells ORDER BY host_id, slot", []).map(Self.cell)
    }
    /// The lowest free slot on a host.
    public func freeSlot(host: String, on x: any SQLExecutor) async throws -> Int {
        let used = Set(try await x.query("SELECT slot FROM cells WHERE host_id = ?", [.text(host)]).compactMap { $0.int("slot") })
        var s: Int64 = 0
        while used.contains(s) { s += 1 }
        return Int(s)
    }
    public func setCellDesired(tenant: String, _ state: String, on x: (any SQLExecutor)? = nil) async throws {
        try await (x ?? db).execute("UPDATE cells SET desired_state = ? WHERE tenant_id = ?", [.text(state), .text(tenant)])
    }
    public func recordObservation(cell: String, phase: String, healthy: Bool, restarts: Int, lastExit: String?, detail: String?, now: Int64) async throws {
        try await db.execute("UPDATE cells SET observed_phase = ?, healthy = ?, restarts = ?, last_exit = ?, detail = ?, observed_at = ? WHERE id = ?",
                             [.text(phase), .bool(healthy), .int(Int64(restarts)), .optional(lastExit), .optional(detail), .int(now), .text(cell)])
    }
    public func deleteCell(_ id: String) async throws {
        try await db.execute("DELETE FROM cells WHERE id = ?", [.text(id)])
    }
    public func cellCounts() async throws -> [String: Int] {
        var out: [String: Int] = [:]
        for r in try await db.query("SELECT observed_phase, COUNT(*) AS n FROM cells GROUP BY observed_phase", []) { out[r.string("observed_phase")] = Int(r.int("n") ?? 0) }
        return out
    }
    public func cellsPerHost() async throws -> [String: Int] {
        var out: [String: Int] = [:]
        for r in try await db.query("SELECT host_id, COUNT(*) AS n FROM cells GROUP BY host_id", []) { out[r.string("host_id")] = Int(r.int("n") ?? 0) }
        return out
    }
    static func cell(_ r: SQLRow) -> Cell {
        Cell(id: r.string("id"), tenantID: r.string("tenant_id"), hostID: r.string("host_id"), slot: Int(r.int("slot") ?? 0),
             desiredState: r.string("desired_state"), observedPhase: r.string("observed_phase"), healthy: r.bool("healthy"),
             restarts: Int(r.int("restarts") ?? 0), lastExit: r.text("last_exit"), detail: r.text("detail"), observedAt: r.int("observed_at"))
    }

    // MARK: Domains, mailboxes, aliases
    public func insertDomain(_ d: Domain, now: Int64, on x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO domains (name, tenant_id, kind, verified_at, created_at) VALUES (?, ?, ?, ?, ?)",
                            [.text(d.name), .text(d.tenantID), .text(d.kind), .int(now), .int(now)])
    }
    public func domains(tenant: String) async throws -> [Domain] {
        try await db.query("SELECT * FROM domains WHERE tenant_id = ? ORDER BY created_at, name", [.text(tenant)]).map {
            Domain(name: $0.string("name"), tenantID: $0.string("tenant_id"), kind: $0.string("kind"))
        }
    }
    public func insertMailbox(_ m: Mailbox, now: Int64, on x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO mailboxes (address, tenant_id, display_name, password_hash, quota_bytes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [.text(m.address), .text(m.tenantID), .text(m.displayName), .text(m.passwordHash), .optional(m.quotaBytes), .int(now), .int(now)])
    }
    public func mailboxes(tenant: String) async throws -> [Mailbox] {
        try await db.query("SELECT * FROM mailboxes WHERE tenant_id = ? ORDER BY address", [.text(tenant)]).map(Self.mailbox)
    }
    public func mailbox(_ address: String) async throws -> Mailbox? {
        try await db.query("SELECT * FROM mailboxes WHERE address = ?", [.text(address)]).first.map(Self.mailbox)
    }
    public func setMailboxPassword(_ address: String, hash: String, now: Int64) async throws {
        try await db.execute("UPDATE mailboxes SET password_hash = ?, updated_at = ? WHERE address = ?", [.text(hash), .int(now), .text(address)])
    }
    public func deleteMailbox(_ address: String) async throws {
        try await db.execute("DELETE FROM mailboxes WHERE address = ?", [.text(address)])
    }
    public func mailboxCount(tenant: String, on x: any SQLExecutor) async throws -> Int64 {
        try await x.query("SELECT COUNT(*) AS n FROM mailboxes WHERE tenant_id = ?", [.text(tenant)]).first?.int("n") ?? 0
    }
    static func mailbox(_ r: SQLRow) -> Mailbox {
        Mailbox(address: r.string("address"), tenantID: r.string("tenant_id"), displayName: r.string("display_name"),
                passwordHash: r.string("password_hash"), quotaBytes: r.int("quota_bytes"))
    }
    /// Serialises changes to one tenant's addresses: on PostgreSQL a row
    /// lock (READ COMMITTED would let two requests both pass the checks);
    /// SQLite's one writer already does it.
    public func lockTenant(_ id: String, on x: any SQLExecutor) async throws {
        if db.dialect == .postgres { _ = try await x.query("SELECT id FROM tenants WHERE id = ? FOR UPDATE", [.text(id)]) }
    }

    /// Whether an address is taken by a mailbox or an alias, anywhere.
    public func addressTaken(_ address: String, on x: any SQLExecutor) async throws -> Bool {
        try await !x.query("SELECT address FROM mailboxes WHERE address = ? UNION SELECT address FROM aliases WHERE address = ?",
                           [.text(address), .text(address)]).isEmpty
    }
    public func insertAlias(_ a: Alias, now: Int64, on x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO aliases (address, tenant_id, targets, created_at) VALUES (?, ?, ?, ?)",
                            [.text(a.address), .text(a.tenantID), .text(a.targets.joined(separator: ",")), .int(now)])
    }
    public func aliases(tenant: String) async throws -> [Alias] {
        try await db.query("SELECT * FROM aliases WHERE tenant_id = ? ORDER BY address", [.text(tenant)]).map {
            Alias(address: $0.string("address"), tenantID: $0.string("tenant_id"), targets: $0.string("targets").split(separator: ",").map(String.init))
        }
    }
    public func deleteAlias(_ address: String) async throws {
        try await db.execute("DELETE FROM aliases WHERE address = ?", [.text(address)])
    }

    // MARK: Audit log
    public func audit(_ e: AuditEntry, on x: (any SQLExecutor)? = nil) async throws {
        try await (x ?? db).execute("INSERT INTO audit_log (id, at, actor_id, actor_email, actor_role, tenant_id, action, target, detail, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                    [.text(e.id), .int(e.at), .optional(e.actorID), .optional(e.actorEmail), .optional(e.actorRole), .optional(e.tenantID),
                                     .text(e.action), .optional(e.target), .optional(e.detail), .optional(e.ip)])
    }
    public func auditLog(tenant: String?, action: String?, limit: Int, offset: Int) async throws -> [AuditEntry] {
        var sql = "SELECT * FROM audit_log WHERE 1 = 1"
        var binds: [SQLValue] = []
        if let tenant { sql += " AND tenant_id = ?"; binds.append(.text(tenant)) }
        if let action, !action.isEmpty { sql += " AND action = ?"; binds.append(.text(action)) }
        sql += " ORDER BY at DESC, id DESC LIMIT ? OFFSET ?"
        binds += [.int(Int64(limit)), .int(Int64(offset))]
        return try await db.query(sql, binds).map {
            AuditEntry(id: $0.string("id"), at: $0.int("at") ?? 0, actorID: $0.text("actor_id"), actorEmail: $0.text("actor_email"),
                       actorRole: $0.text("actor_role"), tenantID: $0.text("tenant_id"), action: $0.string("action"),
                       target: $0.text("target"), detail: $0.text("detail"), ip: $0.text("ip"))
        }
    }
}
