import Foundation
import Hummingbird
import Logging
import NIOCore

/// The REST API (`/api/v1`, described by `/openapi.json`). JSON in and out;
/// authenticated with `Authorization: Bearer TOKEN` (POST /api/v1/tokens).
/// It calls the same service methods as the panels.
struct APIRoutes {
    let service: ControlService
    let openAPI: ByteBuffer

    struct SignupBody: Decodable { var email: String?; var password: String?; var name: String?; var slug: String?; var plan: String? }
    struct TokenBody: Decodable { var email: String?; var password: String?; var code: String?; var name: String? }
    struct PasswordCheckBody: Decodable { var password: String?; var user: String? }
    struct MailboxBody: Decodable { var local: String?; var domain: String?; var displayName: String?; var password: String? }
    struct PasswordBody: Decodable { var password: String? }
    struct AliasBody: Decodable { var local: String?; var domain: String?; var targets: [String]? }
    struct ReasonBody: Decodable { var reason: String? }
    struct PlanBody: Decodable { var plan: String? }
    struct TOTPOffBody: Decodable { var owner: String?; var reason: String? }

    struct TenantOut: Encodable { var id, slug, name, plan, status: String; var statusReason: String?; var createdAt: Int64 }
    struct MailboxOut: Encodable { var address, displayName: String; var quotaBytes: Int64? }
    struct MeOut: Encodable { var email, role: String; var tenant: TenantOut?; var totp: Bool }
    struct VerdictOut: Encodable { var accepted: Bool; var score: Int; var strength: String; var messages: [String] }
    struct TenantDetailOut: Encodable {
        var tenant: TenantOut; var owners: [String]; var cell: Cell?; var domains: [String]; var mailboxes: [MailboxOut]; var aliases: [Alias]
    }

    static func tenantOut(_ t: Tenant) -> TenantOut {
        TenantOut(id: t.id, slug: t.slug, name: t.name, plan: t.planID, status: t.status.rawValue, statusReason: t.statusReason, createdAt: t.createdAt)
    }
    static func mailboxOut(_ m: Mailbox) -> MailboxOut { MailboxOut(address: m.address, displayName: m.displayName, quotaBytes: m.quotaBytes) }

    func register(_ r: Router<PanelContext>) {
        r.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: openAPI))
        }
        let api = r.group("/api/v1")
        api.get("/plans") { _, _ in try await call { Reply.json(try await service.store.plans()) } }
        api.post("/signup") { req, ctx in
            try await call {
                let b = try await decode(SignupBody.self, req)
                let t = try await service.signup(SignupRequest(email: b.email ?? "", password: b.password ?? "", name: b.name ?? "", slug: b.slug ?? "", plan: b.plan ?? ""), caller: ctx.apiCaller)
                return Reply.json(APIRoutes.tenantOut(t), status: .created)
            }
        }
        api.post("/password-check") { req, _ in
            try await call {
                let b = try await decode(PasswordCheckBody.self, req)
                let v = service.checkPassword(b.password ?? "", user: b.user)
                return Reply.json(VerdictOut(accepted: v.accepted, score: v.score, strength: v.strength.name, messages: v.messages))
            }
        }
        api.post("/tokens") { req, ctx in
            try await call {
                let b = try await decode(TokenBody.self, req)
                let token = try await service.createAPIToken(email: b.email ?? "", password: b.password ?? "", code: b.code, name: b.name ?? "api", caller: ctx.apiCaller)
                return Reply.json(["token": token], status: .created)
            }
        }
        api.get("/tokens") { _, ctx in try await call { Reply.json(try await service.apiTokens(caller: ctx.apiCaller)) } }
        api.delete("/tokens/:id") { _, ctx in
            try await call {
                try await service.revokeAPIToken(id: ctx.pathParameter("id"), caller: ctx.apiCaller)
                return Response(status: .noContent)
            }
        }
        api.get("/me") { _, ctx in
            try await call {
                let u = try service.requireUser(ctx.apiCaller)
                let t = try await u.tenantID.asyncMap { try await service.store.tenant($0) } ?? nil
                return Reply.json(MeOut(email: u.email, role: u.role.rawValue, tenant: t.map(APIRoutes.tenantOut), totp: u.totpEnabled))
            }
        }
        api.put("/plan") { req, ctx in
            try await call {
                let b = try await decode(PlanBody.self, req)
                return Reply.json(APIRoutes.tenantOut(try await service.changePlan(tenant: nil, plan: b.plan ?? "", caller: ctx.apiCaller)))
            }
        }
        api.get("/cell") { _, ctx in
            try await call {
                guard let s = try await service.cellStatus(tenant: nil, caller: ctx.apiCaller) else { throw ServiceError(.notFound, "No cell yet.") }
                return Reply.json(s)
            }
        }
        api.get("/mailboxes") { _, ctx in try await call { Reply.json(try await service.mailboxes(tenant: nil, caller: ctx.apiCaller).map(APIRoutes.mailboxOut)) } }
        api.post("/mailboxes") { req, ctx in
            try await call {
                let b = try await decode(MailboxBody.self, req)
                let m = try await service.createMailbox(tenant: nil, local: b.local ?? "", domain: b.domain, displayName: b.displayName ?? "", password: b.password ?? "", caller: ctx.apiCaller)
                return Reply.json(APIRoutes.mailboxOut(m), status: .created)
            }
        }
        api.get("/mailboxes/:address/setup") { _, ctx in
            try await call { Reply.json(try await service.clientSetup(tenant: nil, address: ctx.pathParameter("address"), caller: ctx.apiCaller)) }
        }
        api.put("/mailboxes/:address/password") { req, ctx in
            try await call {
                let b = try await decode(PasswordBody.self, req)
                try await service.setMailboxPassword(tenant: nil, address: ctx.pathParameter("address"), password: b.password ?? "", caller: ctx.apiCaller)
                return Response(status: .noContent)
            }
        }
        api.delete("/mailboxes/:address") { _, ctx in
            try await call {
                try await service.deleteMailbox(tenant: nil, address: ctx.pathParameter("address"), caller: ctx.apiCaller)
                return Response(status: .noContent)
            }
        }
        api.get("/aliases") { _, ctx in try await call { Reply.json(try await service.aliases(tenant: nil, caller: ctx.apiCaller)) } }
        api.post("/aliases") { req, ctx in
            try await call {
                let b = try await decode(AliasBody.self, req)
                return Reply.json(try await service.createAlias(tenant: nil, local: b.local ?? "", domain: b.domain, targets: b.targets ?? [], caller: ctx.apiCaller), status: .created)
            }
        }
        api.delete("/aliases/:address") { _, ctx in
            try await call {
                try await service.deleteAlias(tenant: nil, address: ctx.pathParameter("address"), caller: ctx.apiCaller)
                return Response(status: .noContent)
            }
        }

        // Staff
        api.get("/staff/fleet") { _, ctx in try await call { Reply.json(try await service.fleet(caller: ctx.apiCaller)) } }
        api.get("/staff/tenants") { req, ctx in
            try await call {
                let q = req.queryForm
                let page = min(max(0, Int(q["page"]) ?? 0), 10_000)
                return Reply.json(try await service.searchTenants(q["q"], status: q["status"], page: page, caller: ctx.apiCaller).map(APIRoutes.tenantOut))
            }
        }
        api.get("/staff/tenants/:id") { _, ctx in
            try await call {
                let d = try await service.tenantDetail(ctx.pathParameter("id"), caller: ctx.apiCaller)
                return Reply.json(TenantDetailOut(tenant: APIRoutes.tenantOut(d.tenant), owners: d.owners.map(\.email), cell: d.cell,
                                                  domains: d.domains.map(\.name), mailboxes: d.mailboxes.map(APIRoutes.mailboxOut), aliases: d.aliases))
            }
        }
        api.post("/staff/tenants/:id/suspend") { req, ctx in
            try await call {
                let b = try await decode(ReasonBody.self, req)
                try await service.suspend(ctx.pathParameter("id"), reason: b.reason ?? "", caller: ctx.apiCaller)
                return Response(status: .noContent)
            }
        }
        api.post("/staff/tenants/:id/resume") { _, ctx in
            try await call {
                try await service.resume(ctx.pathParameter("id"), caller: ctx.apiCaller)
                return Response(status: .noContent)
            }
        }
        api.post("/staff/tenants/:id/delete") { req, ctx in
            try await call {
                let b = try await decode(ReasonBody.self, req)
                try await service.deleteTenant(ctx.pathParameter("id"), reason: b.reason ?? "", caller: ctx.apiCaller)
                return Response(status: .noContent)
            }
        }
        api.post("/staff/tenants/:id/plan") { req, ctx in
            try await call {
                let b = try await decode(PlanBody.self, req)
                return Reply.json(APIRoutes.tenantOut(try await service.changePlan(tenant: ctx.pathParameter("id"), plan: b.plan ?? "", caller: ctx.apiCaller)))
            }
        }
        api.post("/staff/tenants/:id/totp-off") { req, ctx in
            try await call {
                let b = try await decode(TOTPOffBody.self, req)
                try await service.turnOffSecondFactor(tenant: ctx.pathParameter("id"), owner: b.owner ?? "", reason: b.reason ?? "", caller: ctx.apiCaller)
                return Response(status: .noContent)
            }
        }
        api.get("/staff/audit") { req, ctx in
            try await call {
                let q = req.queryForm
                return Reply.json(try await service.auditLog(tenant: q["tenant"].isEmpty ? nil : q["tenant"], action: q["action"], page: Int(q["page"]) ?? 0, caller: ctx.apiCaller))
            }
        }
    }

    /// Service errors become their status with a JSON body; anything else
    /// is a server error, logged without the request's content.
    func call(_ body: () async throws -> Response) async throws -> Response {
        do { return try await body() } catch let e as ServiceError {
            return Reply.error(e)
        } catch let e as APIInputError {
            return Reply.error(ServiceError(.invalid, e.message))
        } catch let e as SQLError {
            service.logger.error("database: \(e)")
            return Reply.error(ServiceError(.unavailable, "The database did not answer; try again."))
        }
    }

    struct APIInputError: Error { var message: String }

    func decode<T: Decodable>(_ type: T.Type, _ req: Request) async throws -> T {
        guard let type = req.headers[.contentType], type.lowercased().hasPrefix("application/json") else {
            throw APIInputError(message: "Send a JSON object with Content-Type: application/json.")
        }
        let buffer = try await req.body.collect(upTo: 64 * 1024)
        guard buffer.readableBytes > 0 else { throw APIInputError(message: "Send a JSON object.") }
        do { return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView)) } catch {
            throw APIInputError(message: "The body is not the JSON object this call takes.")
        }
    }
}

extension Optional {
    func asyncMap<T>(_ f: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self { case .some(let w): return try await f(w); case .none: return nil }
    }
}
