import Foundation

extension ControlService {
    /// Benchmark data: N active tenants with two mailboxes each, on a host
    /// of their own whose cells never run (no processes).
    public func seed(tenants: Int, passwordHash hash: String) async throws -> Int {
        let now = Int64(Date().timeIntervalSince1970)
        if try await !store.hosts().contains(where: { $0.id == "seed" }) {
            try await store.insertHost(CellHost(id: "seed", name: "seeded (no processes)", backend: "none", capacityCells: 1_000_000, portBase: 0, portStride: 0), now: now)
        }
        var made = 0
        let base = Int(try await store.db.scalar("SELECT COUNT(*) AS n FROM tenants"))
        for i in 0..<tenants {
            let slug = String(format: "seed%06d", base + i)
            try await store.db.transaction { tx in
                let t = Tenant(id: Identifier.make("t-"), slug: slug, name: "Seeded family \(base + i)", planID: "family", status: .active, statusReason: nil, createdAt: now - Int64(i))
                try await store.insertTenant(t, on: tx)
                try await store.insertUser(PanelUser(id: Identifier.make("u-"), tenantID: t.id, email: "owner@\(slug).example", passwordHash: hash, role: .owner,
                                                     emailVerified: true, totpSecret: nil, totpEnabled: false, totpLastStep: 0, disabled: false), now: now, on: tx)
                let domain = slug + "." + config.providerDomain
                try await store.insertDomain(Domain(name: domain, tenantID: t.id, kind: "subdomain"), now: now, on: tx)
                for m in ["anna", "ben"] {
                    try await store.insertMailbox(Mailbox(address: "\(m)@\(domain)", tenantID: t.id, displayName: m, passwordHash: hash, quotaBytes: nil), now: now, on: tx)
                }
                try await tx.execute("INSERT INTO cells (id, tenant_id, host_id, slot, desired_state, observed_phase, created_at) VALUES (?, ?, ?, ?, 'stopped', 'stopped', ?)",
                                     [.text("c-" + slug), .text(t.id), .text("seed"), .int(Int64(base + i)), .int(now)])
            }
            made += 1
        }
        return made
    }
}
