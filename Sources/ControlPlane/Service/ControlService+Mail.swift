import Foundation
import MailCore
import Provisioning

/// How a family member sets up a mail client for one mailbox.
public struct ClientSetup: Sendable, Codable {
    public var address: String
    public var username: String
    public var server: String
    public var imapPort: Int, imapsPort: Int
    public var pop3Port: Int, pop3sPort: Int
    public var submissionPort: Int, submissionsPort: Int
}

/// A cell's state for its owner and for staff.
public struct CellStatus: Sendable, Codable {
    public var id: String
    public var desired: String
    public var phase: String
    public var healthy: Bool
    public var restarts: Int
    public var lastExit: String?
    public var detail: String?
    public var usedBytes: Int64?
    public var quotaBytes: Int64
    public var mailboxUsage: [String: Int64]
}

extension ControlService {
    // MARK: Mailboxes

    public func mailboxes(tenant: String?, caller: Caller) async throws -> [Mailbox] {
        let t = try await tenantFor(caller, tenant, write: false)
        return try await store.mailboxes(tenant: t.id)
    }

    public func domains(tenant: String?, caller: Caller) async throws -> [Domain] {
        let t = try await tenantFor(caller, tenant, write: false)
        return try await store.domains(tenant: t.id)
    }

    /// Resolves `local` (and an optional domain) to a full address in one
    /// of the tenant's domains.
    func resolveAddress(local: String, domain: String?, tenant: Tenant, field: String) async throws -> String {
        let lp: String
        switch Validation.localPart(local) { case .ok(let s): lp = s; case .bad(let m): throw ServiceError.invalid([field: m]) }
        let domains = try await store.domains(tenant: tenant.id)
        guard let d = domain.map({ $0.lowercased() }).flatMap({ d in domains.first { $0.name == d } }) ?? (domain == nil || domain == "" ? domains.first : nil) else {
            throw ServiceError.invalid(["domain": "Choose one of your domains."])
        }
        return lp + "@" + d.name
    }

    public func createMailbox(tenant tid: String?, local: String, domain: String?, displayName: String, password: String, caller: Caller) async throws -> Mailbox {
        let t = try await tenantFor(caller, tid, write: true)
        var fields: [String: String] = [:]
        var resolved = ""
        do { resolved = try await resolveAddress(local: local, domain: domain, tenant: t, field: "local") } catch let e as ServiceError { fields.merge(e.fields) { a, _ in a } }
        let address = resolved
        var name = ""
        switch Validation.displayName(displayName) { case .ok(let s): name = s; case .bad(let m): fields["displayName"] = m }
        let verdict = checkPassword(password, user: address.isEmpty ? local : address)
        if !verdict.accepted { fields["password"] = verdict.messages.first ?? "Choose a stronger password." }
        guard fields.isEmpty else { throw ServiceError.invalid(fields) }
        let mailbox = Mailbox(address: address, tenantID: t.id, displayName: name, passwordHash: try await hashPassword(password), quotaBytes: nil)
        try await store.db.transaction { [store, now] tx in
            try await store.lockTenant(t.id, on: tx)
            // The plan as of now, under the tenant's lock (a plan change may have just happened).
            guard let current = try await store.tenant(t.id, on: tx), let plan = try await store.plan(current.planID, on: tx) else {
                throw ServiceError(.unavailable, "The plan is missing.")
            }
            if try await store.addressTaken(address, on: tx) { throw ServiceError.invalid(["local": "This address is taken already."]) }
            if try await store.mailboxCount(tenant: t.id, on: tx) >= Int64(plan.mailboxes) {
                throw ServiceError(.conflict, "Your plan allows \(plan.mailboxes) mailboxes. Choose a larger plan to add more.")
            }
            try await store.insertMailbox(mailbox, now: now, on: tx)
        }
        try await audit(caller, "mailbox.create", tenant: t.id, target: address)
        await push(t.id) { admin in _ = try await admin.putUser(address, EngineAdmin.PutUser(passwordHash: mailbox.passwordHash, quotaBytes: nil, addresses: [])) }
        return mailbox
    }

    public func setMailboxPassword(tenant tid: String?, address: String, password: String, caller: Caller) async throws {
        let t = try await tenantFor(caller, tid, write: true)
        guard let m = try await store.mailbox(address.lowercased()), m.tenantID == t.id else { throw ServiceError(.notFound, "No such mailbox.") }
        let verdict = checkPassword(password, user: m.address)
        guard verdict.accepted else { throw ServiceError.invalid(["password": verdict.messages.first ?? "Choose a stronger password."]) }
        if try await verify(password, hash: m.passwordHash) { throw ServiceError.invalid(["password": "Choose a password different from the current one."]) }
        let hash = try await hashPassword(password)
        try await store.setMailboxPassword(m.address, hash: hash, now: now)
        try await audit(caller, "mailbox.password", tenant: t.id, target: m.address)
        await push(t.id) { admin in try await admin.setPassword(m.address, passwordHash: hash) }
    }

    public func deleteMailbox(tenant tid: String?, address: String, caller: Caller) async throws {
        let t = try await tenantFor(caller, tid, write: true)
        guard let m = try await store.mailbox(address.lowercased()), m.tenantID == t.id else { throw ServiceError(.notFound, "No such mailbox.") }
        let aliases = try await store.aliases(tenant: t.id).filter { $0.targets.contains(m.address) }
        if let a = aliases.first { throw ServiceError(.conflict, "The alias \(a.address) still sends mail to this mailbox. Change or delete it first.") }
        try await store.deleteMailbox(m.address)
        try await audit(caller, "mailbox.delete", tenant: t.id, target: m.address)
        await push(t.id) { admin in try await admin.deleteUser(m.address, purge: true) }
    }

    public func clientSetup(tenant tid: String?, address: String, caller: Caller) async throws -> ClientSetup {
        let t = try await tenantFor(caller, tid, write: false)
        guard let m = try await store.mailbox(address.lowercased()), m.tenantID == t.id,
              let cell = try await store.cell(tenant: t.id), let host = try await store.hosts().first(where: { $0.id == cell.hostID }) else {
            throw ServiceError(.notFound, "No such mailbox.")
        }
        func p(_ n: String) -> Int { CellPorts.port(n, slot: cell.slot, host: host) }
        return ClientSetup(address: m.address, username: m.address, server: config.mailHost, imapPort: p("imap"), imapsPort: p("imaps"),
                           pop3Port: p("pop3"), pop3sPort: p("pop3s"), submissionPort: p("submission"), submissionsPort: p("submissions"))
    }

    // MARK: Aliases

    public func aliases(tenant: String?, caller: Caller) async throws -> [Alias] {
        let t = try await tenantFor(caller, tenant, write: false)
        return try await store.aliases(tenant: t.id)
    }

    public func createAlias(tenant tid: String?, local: String, domain: String?, targets rawTargets: [String], caller: Caller) async throws -> Alias {
        let t = try await tenantFor(caller, tid, write: true)
        var fields: [String: String] = [:]
        var resolved = ""
        do { resolved = try await resolveAddress(local: local, domain: domain, tenant: t, field: "local") } catch let e as ServiceError { fields.merge(e.fields) { a, _ in a } }
        let address = resolved
        let own = Set(try await store.mailboxes(tenant: t.id).map(\.address))
        let targets = rawTargets.flatMap { $0.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" || $0 == "\r" }) }.map { $0.lowercased() }.filter { !$0.isEmpty }
        if targets.isEmpty { fields["targets"] = "Choose at least one mailbox." }
        else if targets.count > 50 { fields["targets"] = "At most 50 targets." }
        else if let bad = targets.first(where: { !own.contains($0) }) {
            fields["targets"] = "\(bad.prefix(100)) is not one of your mailboxes."
        }
        guard fields.isEmpty else { throw ServiceError.invalid(fields) }
        let alias = Alias(address: address, tenantID: t.id, targets: Array(Set(targets)).sorted())
        try await store.db.transaction { [store, now] tx in
            try await store.lockTenant(t.id, on: tx)
            if try await store.addressTaken(address, on: tx) { throw ServiceError.invalid(["local": "This address is taken already."]) }
            try await store.insertAlias(alias, now: now, on: tx)
        }
        try await audit(caller, "alias.create", tenant: t.id, target: address, detail: alias.targets.joined(separator: ","))
        await push(t.id) { admin in _ = try await admin.putAlias(address, targets: alias.targets) }
        return alias
    }

    public func deleteAlias(tenant tid: String?, address: String, caller: Caller) async throws {
        let t = try await tenantFor(caller, tid, write: true)
        guard try await store.aliases(tenant: t.id).contains(where: { $0.address == address.lowercased() }) else { throw ServiceError(.notFound, "No such alias.") }
        try await store.deleteAlias(address.lowercased())
        try await audit(caller, "alias.delete", tenant: t.id, target: address.lowercased())
        await push(t.id) { admin in try await admin.deleteAlias(address.lowercased()) }
    }

    // MARK: Cell status

    public func cellStatus(tenant tid: String?, caller: Caller) async throws -> CellStatus? {
        let t = try await tenantFor(caller, tid, write: false)
        guard let c = try await store.cell(tenant: t.id), let plan = try await store.plan(t.planID) else { return nil }
        var status = CellStatus(id: c.id, desired: c.desiredState, phase: c.observedPhase, healthy: c.healthy, restarts: c.restarts,
                                lastExit: c.lastExit, detail: c.detail, usedBytes: nil, quotaBytes: plan.storageBytes, mailboxUsage: [:])
        if c.healthy, let p = provisioner, let usage = try? await p.admin(c.id).usage() {
            status.usedBytes = usage.cellBytes
            for u in usage.users { status.mailboxUsage[u.address] = u.usedBytes }
        }
        return status
    }

    // MARK: Pushing changes to the cell

    /// Applies one change to the tenant's running cell. When the cell does
    /// not answer, the tenant is marked for a full push by the reconciler
    /// (and the next start writes the whole configuration anyway).
    func push(_ tenant: String, _ change: @Sendable (EngineAdminClient) async throws -> Void) async {
        guard let p = provisioner, let cell = try? await store.cell(tenant: tenant) else { return }
        let lock = tenantLock(tenant)
        await lock.lock()
        defer { lock.unlock() }
        // A cell that is still starting (just after sign-up) gets up to 3 s
        // to open its admin socket, so a new mailbox works when the page
        // returns instead of at the next reconciler round.
        var attempt = 0
        while !cell.healthy, cell.desiredState == "running", attempt < 60 {
            if (try? await p.admin(cell.id).health()) != nil { break }
            attempt += 1
            try? await Task.sleep(for: .milliseconds(50))
        }
        do { try await change(p.admin(cell.id)) } catch {
            // A cell not yet healthy (starting) is expected to miss it.
            logger.log(level: cell.healthy ? .notice : .debug, "cell \(cell.id) missed a change; it will be pushed again: \(error)")
            dirty.withLockedValue { _ = $0.insert(tenant) }
            kick.withLockedValue { $0 }?()
        }
    }

    /// The whole cell.json of a tenant's cell, from the database.
    public func renderConfiguration(tenant tid: String) async throws -> String? {
        guard let t = try await store.tenant(tid), let plan = try await store.plan(t.planID) else { return nil }
        return CellConfigRenderer.render(tenant: t, plan: plan, domains: try await store.domains(tenant: t.id),
                                         mailboxes: try await store.mailboxes(tenant: t.id), aliases: try await store.aliases(tenant: t.id),
                                         mailHost: config.mailHost)
    }

    /// Brings a running cell's users, aliases, domains, quota and suspension
    /// in line with the database (idempotent; used for dirty tenants and
    /// after a cell starts).
    public func sync(tenant tid: String) async throws {
        guard let p = provisioner else { return }
        let lock = tenantLock(tid)
        await lock.lock()
        defer { lock.unlock() }
        guard let t = try await store.tenant(tid), let cell = try await store.cell(tenant: tid),
              let plan = try await store.plan(t.planID) else { return }
        let admin = p.admin(cell.id)
        let domains = try await store.domains(tenant: tid).map(\.name)
        let mailboxes = try await store.mailboxes(tenant: tid)
        let aliases = try await store.aliases(tenant: tid)
        for d in domains { _ = try await admin.putDomain(d) }
        for m in mailboxes { _ = try await admin.putUser(m.address, EngineAdmin.PutUser(passwordHash: m.passwordHash, quotaBytes: m.quotaBytes, addresses: [])) }
        for a in aliases { _ = try await admin.putAlias(a.address, targets: a.targets) }
        let wantedUsers = Set(mailboxes.map(\.address)), wantedAliases = Set(aliases.map(\.address))
        for a in try await admin.aliases().keys where !wantedAliases.contains(a) { try await admin.deleteAlias(a) }
        // The database is the truth: a mailbox deleted there (while the cell was
        // down) loses its mail here too, so a later mailbox of that name starts empty.
        for u in try await admin.users() where !wantedUsers.contains(u.address) { try await admin.deleteUser(u.address, purge: true) }
        for d in try await admin.domains() where !domains.contains(d) { try await admin.deleteDomain(d) }
        try await admin.setCellQuota(bytes: plan.storageBytes)
        try await admin.setSuspended(t.status == .suspended)
        dirty.withLockedValue { _ = $0.remove(tid) }
    }

    public func takeDirtyTenants() -> Set<String> { dirty.withLockedValue { $0 } }
}
