import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import PanelSecurity

/// The owner's (and staff member's) own account: password, TOTP; and for
/// owners the export and closure of the whole account.
struct AccountRoutes {
    let service: ControlService
    let views: Views
    let customer: CustomerRoutes

    func register(_ r: Router<PanelContext>) {
        r.get("/account") { req, ctx in try await signedIn(ctx) { try await accountPage(ctx, notice: customer.notice(req)) } }
        r.post("/account/password") { req, ctx in
            try await signedInForm(req, ctx) { form in
                do {
                    try await service.changeOwnPassword(current: form["current"], new: form["password"], session: ctx.session, caller: ctx.caller)
                    return Reply.redirect("/account?done=password-changed")
                } catch let e as ServiceError { return try await accountPage(ctx, error: e, form: form) }
            }
        }
        r.post("/account/totp/begin") { req, ctx in
            try await signedInForm(req, ctx) { form in
                do {
                    let (secret, url) = try await service.beginTOTP(caller: ctx.caller)
                    return views.page("totp-setup", totpSetup(secret: secret, url: url), ctx: ctx)
                } catch let e as ServiceError { return try await accountPage(ctx, error: e, form: form) }
            }
        }
        r.post("/account/totp/enable") { req, ctx in
            try await signedInForm(req, ctx) { form in
                do {
                    try await service.enableTOTP(code: form["code"], caller: ctx.caller)
                    return Reply.redirect("/account?done=totp-enabled")
                } catch let e as ServiceError {
                    let pending = service.pendingTOTP(caller: ctx.caller)
                    return views.form("totp-setup", totpSetup(secret: pending?.secret ?? "", url: pending?.url), error: e, form: form, ctx: ctx)
                }
            }
        }
        r.post("/account/totp/disable") { req, ctx in
            try await signedInForm(req, ctx) { form in
                do {
                    try await service.disableTOTP(password: form["password"], caller: ctx.caller)
                    return Reply.redirect("/account?done=totp-disabled")
                } catch let e as ServiceError { return try await accountPage(ctx, error: e, form: form) }
            }
        }
        // API tokens: made with the password again and shown once; revoked at once.
        r.post("/account/tokens") { req, ctx in
            try await signedInForm(req, ctx) { form in
                do {
                    let token = try await service.createAPIToken(name: form["name"], password: form["tokenPassword"], caller: ctx.caller)
                    return try await accountPage(ctx, newToken: token)
                } catch let e as ServiceError { return try await accountPage(ctx, error: e, form: form) }
            }
        }
        r.post("/account/tokens/:id/revoke") { req, ctx in
            try await signedInForm(req, ctx) { _ in
                try await service.revokeAPIToken(id: ctx.pathParameter("id"), caller: ctx.caller)
                return Reply.redirect("/account?done=token-revoked")
            }
        }
        r.get("/panel/close") { _, ctx in try await customer.owner(ctx) { try await closePage(ctx) } }
        // A POST with the CSRF token: making an export costs the cell real work.
        r.post("/panel/export") { req, ctx in
            try await customer.ownerForm(req, ctx) { _ in
                try await download(try await service.export(tenant: nil, caller: ctx.caller))
            }
        }
        r.post("/panel/close") { req, ctx in
            try await customer.ownerForm(req, ctx) { form in
                do {
                    try await service.closeAccount(password: form["password"], confirmSlug: form["confirm"], caller: ctx.caller)
                    var resp = Reply.redirect("/login?done=closed")
                    resp.setCookie(Cookies.clearSession())
                    return resp
                } catch let e as ServiceError { return try await closePage(ctx, error: e, form: form) }
            }
        }
    }

    /// The set-up page's values: the key (whole and in groups of four), the
    /// otpauth link, and the link as a QR code drawn in SVG, so that a phone
    /// camera can take it with JavaScript off.
    func totpSetup(secret: String, url: String?) -> [String: Any] {
        var c: [String: Any] = ["secret": secret, "grouped": grouped(secret)]
        if let url {
            c["url"] = url
            c["qr"] = try? QRCode(encoding: url, level: .medium)
                .svg(pixelsPerModule: 4, label: "QR code of the authenticator link", id: "totp-qr")
        }
        return c
    }

    func grouped(_ secret: String) -> String {
        stride(from: 0, to: secret.count, by: 4).map { i in
            String(secret.dropFirst(i).prefix(4))
        }.joined(separator: " ")
    }

    func signedIn(_ ctx: PanelContext, _ body: () async throws -> Response) async throws -> Response {
        guard ctx.user != nil else { return Reply.redirect("/login") }
        do { return try await body() } catch let e as ServiceError {
            return views.page("message", ["title": "Not possible", "message": e.message], status: HTTPResponse.Status(code: e.httpStatus), ctx: ctx)
        }
    }

    func signedInForm(_ req: Request, _ ctx: PanelContext, _ body: (Form) async throws -> Response) async throws -> Response {
        try await signedIn(ctx) {
            let form = try await Form.read(req)
            guard CSRF.valid(form, request: req, ctx: ctx) else { return customer.csrfFailure(ctx) }
            return try await body(form)
        }
    }

    func accountPage(_ ctx: PanelContext, notice: String? = nil, error: ServiceError? = nil, form: Form = Form(""),
                     newToken: String? = nil) async throws -> Response {
        guard let u = ctx.user else { return Reply.redirect("/login") }
        var c: [String: Any] = ["account": ["email": u.email, "totp": u.totpEnabled, "owner": u.role == .owner]]
        let tokens = try await service.apiTokens(caller: ctx.caller)
        c["hasTokens"] = !tokens.isEmpty
        c["tokens"] = tokens.map { t -> [String: Any] in
            var row: [String: Any] = ["id": t.id, "name": t.name, "created": timeText(t.createdAt)]
            if let e = t.expiresAt { row["expires"] = timeText(e) }
            row["used"] = t.lastUsedAt.map(timeText) ?? "never"
            return row
        }
        if let newToken { c["newToken"] = newToken }
        if let notice { c["done"] = notice }
        if !form["password"].isEmpty && error?.fields["password"] != nil { c["meter"] = customer.meter(form["password"], user: u.email) }
        return views.form("account", c, error: error, form: form, ctx: ctx)
    }

    func closePage(_ ctx: PanelContext, error: ServiceError? = nil, form: Form = Form("")) async throws -> Response {
        let t = try await service.tenantFor(ctx.caller, nil, write: false)
        return views.form("close", ["slug": t.slug], error: error, form: form, ctx: ctx)
    }

    /// Streams an export and removes it afterwards (exports are made per request).
    func download(_ file: ExportFile) async throws -> Response {
        let handle = FileHandle(fileDescriptor: file.fd, closeOnDealloc: false)
        let body = ResponseBody { writer in
            defer { file.finish() }
            while let chunk = try handle.read(upToCount: 256 * 1024), !chunk.isEmpty {
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/x-tar", .contentLength: String(file.size),
                                               .contentDisposition: "attachment; filename=\"\(file.filename)\""], body: body)
    }
}
