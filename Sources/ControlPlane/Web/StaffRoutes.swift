import Foundation
import Hummingbird

/// The staff panel: fleet overview, tenant search, the read-only support
/// view of a tenant, suspend/resume/delete (admins), the audit log.
struct StaffRoutes {
    let service: ControlService
    let views: Views
    let customer: CustomerRoutes

    func register(_ r: Router<PanelContext>) {
        r.get("/staff") { req, ctx in
            try await staff(ctx) {
                let f = try await service.fleet(caller: ctx.caller)
                return views.page("staff-fleet", [
                    "phases": f.cellsByPhase.sorted { $0.key < $1.key }.map { ["phase": $0.key, "count": $0.value] },
                    "statuses": f.tenantsByStatus.sorted { $0.key < $1.key }.map { ["status": $0.key, "count": $0.value] },
                    "hosts": f.hosts.map { h in ["name": h.host.name, "backend": h.host.backend, "cells": h.cells, "capacity": h.host.capacityCells,
                                                 "percent": h.host.capacityCells == 0 ? 0 : h.cells * 100 / h.host.capacityCells] },
                ], ctx: ctx)
            }
        }
        r.get("/staff/tenants") { req, ctx in
            try await staff(ctx) {
                let q = req.queryForm
                let page = min(max(0, Int(q["page"]) ?? 0), 10_000)
                let list = try await service.searchTenants(q["q"], status: q["status"], page: page, caller: ctx.caller)
                return views.page("staff-tenants", [
                    "q": q["q"], "status": q["status"], "tenants": list.map(tenantRow),
                    "nextURL": "/staff/tenants?" + query(["q": q["q"], "status": q["status"], "page": String(page + 1)]), "hasNext": list.count == 50,
                    "statuses": TenantStatus.allCases.map { ["value": $0.rawValue, "selected": $0.rawValue == q["status"]] },
                ], ctx: ctx)
            }
        }
        r.get("/staff/tenants/:id") { req, ctx in
            try await staff(ctx) { try await tenantPage(ctx, id: ctx.pathParameter("id"), notice: customer.notice(req)) }
        }
        for action in ["suspend", "resume", "delete", "plan", "totp-off"] {
            r.post("/staff/tenants/:id/\(action)") { req, ctx in
                try await staff(ctx) {
                    let form = try await Form.read(req)
                    guard CSRF.valid(form, request: req, ctx: ctx) else { return customer.csrfFailure(ctx) }
                    let id = ctx.pathParameter("id")
                    do {
                        switch action {
                        case "suspend": try await service.suspend(id, reason: form["reason"], caller: ctx.caller)
                        case "resume": try await service.resume(id, caller: ctx.caller)
                        case "plan":
                            try await service.changePlan(tenant: id, plan: form["plan"], caller: ctx.caller)
                            return Reply.redirect("/staff/tenants/\(id)?done=plan-changed")
                        case "totp-off":
                            do {
                                try await service.turnOffSecondFactor(tenant: id, owner: form["owner"], reason: form["totpReason"], caller: ctx.caller)
                            } catch let e as ServiceError where e.fields["reason"] != nil {
                                // The page has two reason fields; this error belongs beside the second one.
                                throw ServiceError.invalid(["totpReason": e.fields["reason"] ?? ""])
                            }
                            return Reply.redirect("/staff/tenants/\(id)?done=owner-totp-off")
                        default: try await service.deleteTenant(id, reason: form["reason"], caller: ctx.caller)
                        }
                        return Reply.redirect("/staff/tenants/\(id)")
                    } catch let e as ServiceError { return try await tenantPage(ctx, id: id, error: e, form: form) }
                }
            }
        }
        r.get("/staff/audit") { req, ctx in
            try await staff(ctx) {
                let q = req.queryForm
                let page = min(max(0, Int(q["page"]) ?? 0), 10_000)
                let entries = try await service.auditLog(tenant: q["tenant"].isEmpty ? nil : q["tenant"], action: q["action"], page: page, caller: ctx.caller)
                return views.page("staff-audit", ["entries": entries.map(auditRow), "tenant": q["tenant"], "action": q["action"],
                                                  "hasNext": entries.count == 100,
                                                  "nextURL": "/staff/audit?" + query(["tenant": q["tenant"], "action": q["action"], "page": String(page + 1)])], ctx: ctx)
            }
        }
    }

    func staff(_ ctx: PanelContext, _ body: () async throws -> Response) async throws -> Response {
        guard let u = ctx.user else { return Reply.redirect("/login") }
        guard u.role.isStaff else {
            return views.page("message", ["title": "Not allowed", "message": "This page is for the provider's staff."], status: .forbidden, ctx: ctx)
        }
        do { return try await body() } catch let e as ServiceError {
            return views.page("message", ["title": "Not possible", "message": e.message], status: HTTPResponse.Status(code: e.httpStatus), ctx: ctx)
        } catch let e as SQLError {
            service.logger.error("database: \(e)")
            return views.page("message", ["title": "Please try again", "message": "The database did not answer; nothing was changed."], status: .serviceUnavailable, ctx: ctx)
        }
    }

    /// A query string, each value percent-encoded.
    func query(_ items: [String: String]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~@")
        return items.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
    }

    func tenantRow(_ t: Tenant) -> [String: Any] {
        ["id": t.id, "slug": t.slug, "name": t.name, "plan": t.planID, "status": t.status.rawValue, "created": timeText(t.createdAt)]
    }

    func auditRow(_ e: AuditEntry) -> [String: Any] {
        ["at": timeText(e.at), "actor": e.actorEmail ?? "system", "role": e.actorRole ?? "", "action": e.action,
         "tenant": e.tenantID ?? "", "target": e.target ?? "", "detail": e.detail ?? "", "ip": e.ip ?? ""]
    }

    func tenantPage(_ ctx: PanelContext, id: String, notice: String? = nil, error: ServiceError? = nil, form: Form = Form("")) async throws -> Response {
        let d = try await service.tenantDetail(id, caller: ctx.caller)
        var c: [String: Any] = [
            // Mustache shows empty strings' sections: absent values are left out.
            "tenant": tenantRow(d.tenant).merging(["reason": d.tenant.statusReason as Any?, "active": d.tenant.status == .active,
                                                    "suspended": d.tenant.status == .suspended, "closed": d.tenant.status == .closed].compactMapValues { $0 }) { a, _ in a },
            "plan": d.plan.map { ["name": $0.name, "mailboxes": $0.mailboxes, "storage": humanBytes($0.storageBytes)] } ?? [:],
            "owners": d.owners.map { ["email": $0.email, "verified": $0.emailVerified, "totp": $0.totpEnabled, "disabled": $0.disabled] },
            "cell": d.cell.map { (["id": $0.id, "desired": $0.desiredState, "phase": $0.observedPhase, "healthy": $0.healthy, "restarts": $0.restarts,
                                   "lastExit": $0.lastExit, "detail": $0.detail.flatMap { $0.isEmpty ? nil : $0 }, "slot": $0.slot] as [String: Any?]).compactMapValues { $0 } } ?? [:],
            "domains": d.domains.map { ["name": $0.name, "kind": $0.kind] },
            "mailboxes": d.mailboxes.map { ["address": $0.address, "name": $0.displayName] },
            "aliases": d.aliases.map { ["address": $0.address, "targets": $0.targets.joined(separator: ", ")] },
            "audit": d.audit.map(auditRow),
            "canAct": ctx.user?.role == .admin,
            "hasTOTPOwners": d.owners.contains { $0.totpEnabled },
            "canChangePlan": (ctx.user?.role == .admin || ctx.user?.role == .billing) && (d.tenant.status == .active || d.tenant.status == .suspended),
            "plans": try await service.store.plans().map { p in ["id": p.id, "name": p.name, "selected": p.id == d.tenant.planID] },
            "deletable": d.tenant.status != .closed || d.cell != nil,
        ]
        if let notice { c["done"] = notice }
        return views.form("staff-tenant", c, error: error, form: form, ctx: ctx)
    }
}
