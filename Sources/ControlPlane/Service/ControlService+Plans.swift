import Foundation

extension ControlService {
    /// Moves a tenant to another plan on offer: the owner their own (while
    /// active), staff admins and billing any tenant's. A smaller plan must
    /// hold what the tenant has: mailboxes, domains and the mail stored (asked
    /// of the running cell; with the cell not answering, a plan with less
    /// storage is refused for now). The cell's quota follows at once, or at
    /// the reconciler's next round.
    @discardableResult
    public func changePlan(tenant tid: String?, plan planID: String, caller: Caller) async throws -> Tenant {
        let u = try requireUser(caller)
        let t: Tenant
        if u.role == .owner {
            t = try await tenantFor(caller, tid, write: true)
        } else {
            _ = try requireStaff(caller, [.admin, .billing])
            guard let tid, let found = try await store.tenant(tid) else { throw ServiceError(.notFound, "No such account.") }
            t = found
        }
        guard t.status == .active || t.status == .suspended else {
            throw ServiceError(.conflict, "The plan of a \(t.status.rawValue) account cannot be changed.")
        }
        guard let plan = try await store.activePlan(planID) else { throw ServiceError.invalid(["plan": "Choose one of the plans on offer."]) }
        guard plan.id != t.planID else { return t }
        let old = try await store.plan(t.planID)

        // Storage first (outside the transaction: it asks the cell).
        if plan.storageBytes < (old?.storageBytes ?? .max) {
            guard let used = try await storedBytes(tenant: t.id) else {
                throw ServiceError(.conflict, "The mail server must be running to check the storage in use. Try again in a minute.")
            }
            if used > plan.storageBytes {
                throw ServiceError.invalid(["plan": "\(plan.name) holds \(humanBytes(plan.storageBytes)); this account stores \(humanBytes(used))."])
            }
        }
        let updated = try await store.db.transaction { [store, now] tx -> Tenant in
            try await store.lockTenant(t.id, on: tx)
            guard var current = try await store.tenant(t.id, on: tx) else { throw ServiceError(.notFound, "No such account.") }
            guard current.status == .active || current.status == .suspended else {
                throw ServiceError(.conflict, "The plan of a \(current.status.rawValue) account cannot be changed.")
            }
            if current.planID == plan.id { return current }
            let mailboxes = try await store.mailboxCount(tenant: t.id, on: tx)
            if mailboxes > Int64(plan.mailboxes) {
                throw ServiceError.invalid(["plan": "\(plan.name) allows \(plan.mailboxes) mailboxes; this account has \(mailboxes). Delete some first."])
            }
            let domains = try await store.domainCount(tenant: t.id, on: tx)
            if domains > Int64(plan.domains) {
                throw ServiceError.invalid(["plan": "\(plan.name) allows \(plan.domains) domains; this account has \(domains)."])
            }
            try await store.setTenantPlan(t.id, plan: plan.id, now: now, on: tx)
            try await self.audit(caller, "tenant.plan", tenant: t.id, target: t.slug, detail: "\(current.planID) → \(plan.id)", on: tx)
            current.planID = plan.id
            return current
        }
        // The quota of the plan in force when the push runs (under the
        // tenant's lock), so overlapping changes leave the cell on the last one.
        let store = self.store
        await push(t.id) { admin in
            guard let now = try await store.tenant(t.id), let p = try await store.plan(now.planID) else { return }
            try await admin.setCellQuota(bytes: p.storageBytes)
        }
        return updated
    }

    /// The bytes a tenant's cell stores; nil when the cell does not answer.
    /// Without a provisioner (a control plane that runs no cells) nothing is stored.
    func storedBytes(tenant: String) async throws -> Int64? {
        guard let p = provisioner else { return 0 }
        guard let c = try await store.cell(tenant: tenant) else { return nil }
        return try? await p.admin(c.id).usage().cellBytes
    }
}
