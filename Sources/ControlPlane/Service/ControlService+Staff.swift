import Foundation
import Provisioning

public struct FleetOverview: Sendable, Codable {
    public struct HostLoad: Sendable, Codable { public var host: CellHost; public var cells: Int }
    public var cellsByPhase: [String: Int]
    public var tenantsByStatus: [String: Int]
    public var hosts: [HostLoad]
}

/// What support sees of one tenant: everything but secrets.
public struct TenantDetail: Sendable {
    public var tenant: Tenant
    public var plan: Plan?
    public var owners: [PanelUser]
    public var cell: Cell?
    public var domains: [Domain]
    public var mailboxes: [Mailbox]
    public var aliases: [Alias]
    public var audit: [AuditEntry]
}

extension ControlService {
    public func fleet(caller: Caller) async throws -> FleetOverview {
        _ = try requireStaff(caller)
        let perHost = try await store.cellsPerHost()
        return FleetOverview(cellsByPhase: try await store.cellCounts(), tenantsByStatus: try await store.tenantCounts(),
                             hosts: try await store.hosts().map { .init(host: $0, cells: perHost[$0.id] ?? 0) })
    }

    public func searchTenants(_ q: String, status: String?, page: Int, caller: Caller) async throws -> [Tenant] {
        _ = try requireStaff(caller)
        let s = status.flatMap { $0.isEmpty ? nil : TenantStatus(rawValue: $0) }
        if let status, !status.isEmpty, s == nil { throw ServiceError.invalid(["status": "Unknown status."]) }
        return try await store.searchTenants(String(q.trimmingCharacters(in: .whitespaces).prefix(100)), status: s,
                                             limit: 50, offset: max(0, min(page, 10_000)) * 50)
    }

    public func tenantDetail(_ id: String, caller: Caller) async throws -> TenantDetail {
        _ = try requireStaff(caller)
        guard let t = try await store.tenant(id) else { throw ServiceError(.notFound, "No such tenant.") }
        // Looking into a customer's account is recorded like any staff action.
        try await audit(caller, "tenant.view", tenant: id, target: t.slug)
        return TenantDetail(tenant: t, plan: try await store.plan(t.planID), owners: try await store.owners(tenant: id),
                            cell: try await store.cell(tenant: id), domains: try await store.domains(tenant: id),
                            mailboxes: try await store.mailboxes(tenant: id), aliases: try await store.aliases(tenant: id),
                            audit: try await store.auditLog(tenant: id, action: nil, limit: 50, offset: 0))
    }

    public func suspend(_ id: String, reason: String, caller: Caller) async throws {
        _ = try requireStaff(caller, [.admin])
        guard let t = try await store.tenant(id) else { throw ServiceError(.notFound, "No such tenant.") }
        guard t.status == .active else { throw ServiceError(.conflict, "Only an active tenant can be suspended (this one is \(t.status.rawValue)).") }
        let why = String(reason.trimmingCharacters(in: .whitespacesAndNewlines).prefix(500))
        guard !why.isEmpty else { throw ServiceError.invalid(["reason": "Say why, for the audit log and the customer."]) }
        try await store.setTenantStatus(id, .suspended, reason: why, now: now)
        try await audit(caller, "tenant.suspend", tenant: id, target: t.slug, detail: why)
        await push(id) { admin in try await admin.setSuspended(true) }
    }

    public func resume(_ id: String, caller: Caller) async throws {
        _ = try requireStaff(caller, [.admin])
        guard let t = try await store.tenant(id) else { throw ServiceError(.notFound, "No such tenant.") }
        guard t.status == .suspended else { throw ServiceError(.conflict, "This tenant is not suspended.") }
        try await store.setTenantStatus(id, .active, reason: nil, now: now)
        try await audit(caller, "tenant.resume", tenant: id, target: t.slug)
        await push(id) { admin in try await admin.setSuspended(false) }
    }

    /// Staff deletes a tenant: its cell and data go, the record stays as
    /// closed for the audit trail.
    public func deleteTenant(_ id: String, reason: String, caller: Caller) async throws {
        _ = try requireStaff(caller, [.admin])
        guard let t = try await store.tenant(id) else { throw ServiceError(.notFound, "No such tenant.") }
        // A closed tenant whose cell is still there (its removal failed) may be deleted again.
        if t.status == .closed, try await store.cell(tenant: id) == nil { throw ServiceError(.conflict, "This tenant is closed already.") }
        try await close(t, reason: t.status == .closed ? (t.statusReason ?? "closed") : "deleted by staff: " + String(reason.prefix(300)))
        try await audit(caller, "tenant.delete", tenant: id, target: t.slug, detail: String(reason.prefix(300)))
    }

    /// Admin: turns off an owner's second factor (a lost phone, or the key
    /// file lost with the state). The owner's sessions and API tokens end,
    /// so whoever asked must log in again with the password.
    public func turnOffSecondFactor(tenant id: String, owner email: String, reason: String, caller: Caller) async throws {
        _ = try requireStaff(caller, [.admin])
        guard let t = try await store.tenant(id) else { throw ServiceError(.notFound, "No such tenant.") }
        guard let u = try await store.owners(tenant: id).first(where: { $0.email == email.lowercased() }) else {
            throw ServiceError(.notFound, "No such owner.")
        }
        let why = String(reason.trimmingCharacters(in: .whitespacesAndNewlines).prefix(500))
        guard !why.isEmpty else { throw ServiceError.invalid(["reason": "Say how the owner was identified, for the audit log."]) }
        guard u.totpEnabled || u.totpSecret != nil else { throw ServiceError(.conflict, "Two-factor authentication is off already.") }
        try await store.db.transaction { tx in
            try await tx.execute("UPDATE users SET totp_enabled = 0, totp_secret = NULL WHERE id = ?", [.text(u.id)])
            try await tx.execute("DELETE FROM sessions WHERE user_id = ?", [.text(u.id)])
            try await tx.execute("DELETE FROM api_tokens WHERE user_id = ?", [.text(u.id)])
            try await self.audit(caller, "owner.totp.off", tenant: id, target: t.slug + " " + u.email, detail: why, on: tx)
        }
        // The owner hears of it: if they did not ask, someone fooled the provider.
        try await mailer.send(to: u.email, template: "email/totp-off", context: ["name": t.name, "panel": config.panelURL + "/login"])
    }

    public func auditLog(tenant: String?, action: String?, page: Int, caller: Caller) async throws -> [AuditEntry] {
        _ = try requireStaff(caller, [.admin, .support])
        return try await store.auditLog(tenant: tenant, action: action, limit: 100, offset: max(0, min(page, 10_000)) * 100)
    }

    // MARK: Export and closure

    /// A full export of the tenant's mail: a tar of Maildir trees, made by
    /// the cell. The cell's reply names the file; the cell is not trusted, so
    /// the name must be a plain `exports/NAME.tar`, and the file is opened
    /// without following links, must be a regular file of the cell's owner,
    /// and is removed through the same directory handle afterwards.
    public func export(tenant tid: String?, caller: Caller) async throws -> ExportFile {
        let t = try await tenantFor(caller, tid, write: false)
        if caller.user?.role != .owner { throw ServiceError(.forbidden, "Only the account's owner can download its mail.") }
        guard let p = provisioner, let cell = try await store.cell(tenant: t.id) else { throw ServiceError(.unavailable, "The account has no mail store yet.") }
        let inFlight = exporting.withLockedValue { $0.insert(t.id).inserted }
        guard inFlight else { throw ServiceError(.conflict, "An export of this account is being made; try again when it is done.") }
        defer { exporting.withLockedValue { _ = $0.remove(t.id) } }
        var admin = p.admin(cell.id)
        admin.timeout = .seconds(900)
        let result: EngineAdmin.ExportResult
        do { result = try await admin.export() } catch {
            throw ServiceError(.unavailable, "The mail store is not answering; try again in a minute.")
        }
        let file = try ExportFile.open(dataDirectory: p.dataDirectory(cell.id), reply: result.path,
                                       filename: "postcell-\(t.slug)-export.tar", now: clock())
        try await audit(caller, "tenant.export", tenant: t.id, detail: "\(file.size) bytes")
        return file
    }

    /// The owner closes the account: password and the account name typed
    /// again. The cell and its data are removed.
    public func closeAccount(password: String, confirmSlug: String, caller: Caller) async throws {
        let u = try requireUser(caller)
        guard u.role == .owner else { throw ServiceError(.forbidden, "Only the owner can close an account.") }
        // Not while suspended: the data may be evidence.
        let t = try await tenantFor(caller, nil, write: true)
        if confirmSlug.trimmingCharacters(in: .whitespaces).lowercased() != t.slug { throw ServiceError.invalid(["confirm": "Type \(t.slug) to confirm."]) }
        try await reauthenticate(u, password, caller: caller, field: "password")
        try await close(t, reason: "closed by owner")
        try await audit(caller, "tenant.close", tenant: t.id, target: t.slug)
    }

    func close(_ t: Tenant, reason: String) async throws {
        try await store.setTenantStatus(t.id, .closed, reason: reason, now: now)
        for o in try await store.owners(tenant: t.id) {
            try await store.updateUser(o.id, set: "disabled", .bool(true))
            try await store.deleteSessions(user: o.id)
        }
        if let cell = try await store.cell(tenant: t.id) {
            try await store.setCellDesired(tenant: t.id, "deleted")
            if let p = provisioner {
                do { try await p.remove(id: cell.id, deleteData: true) } catch {
                    logger.error("removing cell \(cell.id) failed: \(error)")
                    throw ServiceError(.unavailable, "The account is closed, but its mail store could not be removed yet; staff can delete it again from the tenant page.")
                }
            }
            try await store.deleteCell(cell.id)
        }
        try await store.db.execute("DELETE FROM mailboxes WHERE tenant_id = ?", [.text(t.id)])
        try await store.db.execute("DELETE FROM aliases WHERE tenant_id = ?", [.text(t.id)])
        try await store.db.execute("DELETE FROM domains WHERE tenant_id = ?", [.text(t.id)])
    }

    // MARK: Reconciler glue

    /// At start-up nothing is known about what running cells missed while
    /// the control plane was away: every cell is brought up to date.
    public func markAllDirty() async throws {
        let tenants = try await store.cells().map(\.tenantID)
        dirty.withLockedValue { $0.formUnion(tenants) }
    }

    /// What the provisioner should run: every cell of this host.
    public func desiredCells() async throws -> [CellSpec] {
        guard let host = try await store.hosts().first(where: { $0.id == "local" }) else { return [] }
        var specs: [CellSpec] = []
        for c in try await store.cells(host: host.id) {
            guard let cfg = try await renderConfiguration(tenant: c.tenantID) else { continue }
            specs.append(CellSpec(id: c.id, desired: c.desiredState == "running" ? .running : .stopped, configuration: cfg,
                                  listeners: CellConfigRenderer.listeners(slot: c.slot, host: host, bindHost: config.mailHost),
                                  limits: ResourceLimits(memoryBytes: config.cellMemoryBytes, pids: config.cellPids)))
        }
        return specs
    }

    /// Records what the provisioner saw; pushes the whole configuration to
    /// healthy cells that missed a change or have just (re)started.
    public func report(_ observations: [CellObservation]) async {
        let cells = (try? await store.cells(host: "local")) ?? []
        let byID = Dictionary(uniqueKeysWithValues: cells.map { ($0.id, $0) })
        var needSync = takeDirtyTenants()
        for o in observations {
            guard let c = byID[o.id] else { continue }
            // A cell that just (re)started read the file written when it was
            // last applied, which may predate the latest change: push again.
            if o.healthy && (!c.healthy || o.restarts != c.restarts) { needSync.insert(c.tenantID) }
            if c.observedPhase != o.phase.rawValue || c.healthy != o.healthy || c.restarts != o.restarts || c.lastExit != o.lastExit || c.detail != o.detail {
                try? await store.recordObservation(cell: c.id, phase: o.phase.rawValue, healthy: o.healthy, restarts: o.restarts,
                                                   lastExit: o.lastExit, detail: o.detail, now: now)
            }
        }
        let healthy = Set(observations.filter(\.healthy).map(\.id))
        for tid in needSync {
            guard let c = cells.first(where: { $0.tenantID == tid }), healthy.contains(c.id) else { continue }
            do { try await sync(tenant: tid) } catch {
                logger.notice("sync of \(c.id) failed: \(error)")
                dirty.withLockedValue { _ = $0.insert(tid) }
            }
        }
    }
}
