import Foundation
import Hummingbird
import NIOCore
import PanelSecurity

/// The customer panel: signup, login, mailboxes, aliases, account, closure.
/// Plain HTML forms (POST, then a redirect); works without JavaScript.
struct CustomerRoutes {
    let service: ControlService
    let views: Views

    func register(_ r: Router<PanelContext>) {
        r.get("/") { _, ctx in
            guard let u = ctx.user else { return Reply.redirect(ctx.session?.secondFactorPending == true ? "/login/totp" : "/login") }
            return Reply.redirect(u.role.isStaff ? "/staff" : "/panel")
        }
        r.get("/signup") { req, ctx in try await anonymous(req, ctx) { csrf in views.page("signup", ["csrf": csrf, "plans": try await plansContext(selected: "")], ctx: ctx) } }
        r.post("/signup") { req, ctx in
            let form = try await Form.read(req)
            guard CSRF.valid(form, request: req, ctx: ctx) else { return csrfFailure(ctx) }
            do {
                _ = try await service.signup(SignupRequest(email: form["email"], password: form["password"], name: form["name"], slug: form["slug"], plan: form["plan"]), caller: ctx.caller)
                return views.page("signup-sent", ["email": form["email"], "domain": form["slug"].lowercased() + "." + service.config.providerDomain], ctx: ctx)
            } catch let e as ServiceError {
                return views.form("signup", ["csrf": form["csrf"], "plans": try await plansContext(selected: form["plan"]), "meter": meter(form["password"], user: form["email"]) as Any], error: e, form: form, ctx: ctx)
            }
        }
        r.get("/verify") { req, ctx in
            do {
                let t = try await service.verifyEmail(token: req.queryForm["token"], caller: ctx.caller)
                return views.page("verified", ["domain": t.slug + "." + service.config.providerDomain], ctx: ctx)
            } catch let e as ServiceError {
                let title = e.kind == .notFound ? "Link not valid" : "Please try again later"
                return views.page("message", ["title": title, "message": e.message], status: HTTPResponse.Status(code: e.httpStatus), ctx: ctx)
            }
        }
        r.get("/login") { req, ctx in try await anonymous(req, ctx) { csrf in views.page("login", ["csrf": csrf, "done": notice(req)], ctx: ctx) } }
        r.post("/login") { req, ctx in
            let form = try await Form.read(req)
            guard CSRF.valid(form, request: req, ctx: ctx) else { return csrfFailure(ctx) }
            do {
                let s = try await service.login(email: form["email"], password: form["password"], caller: ctx.caller)
                if let old = ctx.session { try? await service.logout(old) }
                var resp = Reply.redirect(s.secondFactorPending ? "/login/totp" : (s.user.role.isStaff ? "/staff" : "/panel"))
                resp.setCookie(Cookies.session(s.id, maxAge: Int(service.config.sessionSeconds)))
                return resp
            } catch let e as ServiceError {
                var resp = views.form("login", ["csrf": form["csrf"]], error: e, form: form, ctx: ctx)
                if let after = e.retryAfter { resp.headers[.retryAfter] = String(after) }
                return resp
            }
        }
        r.get("/forgot") { req, ctx in try await anonymous(req, ctx) { csrf in views.page("forgot", ["csrf": csrf], ctx: ctx) } }
        r.post("/forgot") { req, ctx in
            let form = try await Form.read(req)
            guard CSRF.valid(form, request: req, ctx: ctx) else { return csrfFailure(ctx) }
            do {
                try await service.requestPasswordReset(email: form["email"], caller: ctx.caller)
                return views.page("forgot", ["sent": true], ctx: ctx)
            } catch let e as ServiceError { return views.form("forgot", ["csrf": form["csrf"]], error: e, form: form, ctx: ctx) }
        }
        r.get("/reset") { req, ctx in
            let token = req.queryForm["token"]
            guard try await service.resetTokenValid(token) else {
                return views.page("message", ["title": "Link not valid", "message": "This link is not valid any more. Ask for a new one."], status: .notFound, ctx: ctx)
            }
            return try await anonymous(req, ctx) { csrf in views.page("reset", ["csrf": csrf, "token": token], ctx: ctx) }
        }
        r.post("/reset") { req, ctx in
            let form = try await Form.read(req)
            guard CSRF.valid(form, request: req, ctx: ctx) else { return csrfFailure(ctx) }
            do {
                try await service.resetPassword(token: form["token"], password: form["password"], caller: ctx.caller)
                return Reply.redirect("/login?done=password-reset")
            } catch let e as ServiceError {
                if e.kind == .notFound { return views.page("message", ["title": "Link not valid", "message": e.message], status: .notFound, ctx: ctx) }
                return views.form("reset", ["csrf": form["csrf"], "token": form["token"], "meter": meter(form["password"], user: "") as Any], error: e, form: form, ctx: ctx)
            }
        }
        r.get("/login/totp") { _, ctx in
            guard ctx.session?.secondFactorPending == true else { return Reply.redirect("/") }
            return views.page("login-totp", ["csrf": CSRF.token(for: ctx.session!)], ctx: ctx)
        }
        r.post("/login/totp") { req, ctx in
            let form = try await Form.read(req)
            guard let s = ctx.session, s.secondFactorPending else { return Reply.redirect("/login") }
            guard CSRF.valid(form, request: req, ctx: ctx) else { return csrfFailure(ctx) }
            do {
                try await service.completeSecondFactor(s, code: form["code"], caller: Caller(user: s.user, ip: ctx.remoteIP))
                return Reply.redirect(s.user.role.isStaff ? "/staff" : "/panel")
            } catch let e as ServiceError {
                return views.form("login-totp", ["csrf": CSRF.token(for: s)], error: e, form: form, ctx: ctx)
            }
        }
        r.post("/logout") { req, ctx in
            let form = try await Form.read(req)
            if let s = ctx.session, CSRF.valid(form, request: req, ctx: ctx) { try await service.logout(s) }
            var resp = Reply.redirect("/login")
            resp.setCookie(Cookies.clearSession())
            return resp
        }

        // MARK: The owner's panel
        r.get("/panel") { req, ctx in try await owner(ctx) { try await dashboard(ctx, notice: notice(req)) } }
        r.post("/panel/mailboxes") { req, ctx in
            try await ownerForm(req, ctx) { form in
                do {
                    _ = try await service.createMailbox(tenant: nil, local: form["local"], domain: form["domain"], displayName: form["displayName"], password: form["password"], caller: ctx.caller)
                    return Reply.redirect("/panel?done=mailbox-created")
                } catch let e as ServiceError { return try await dashboard(ctx, error: e, form: form, formName: "mailbox") }
            }
        }
        r.get("/panel/plan") { _, ctx in try await owner(ctx) { try await planPage(ctx) } }
        r.post("/panel/plan") { req, ctx in
            try await ownerForm(req, ctx) { form in
                do {
                    try await service.changePlan(tenant: nil, plan: form["plan"], caller: ctx.caller)
                    return Reply.redirect("/panel?done=plan-changed")
                } catch let e as ServiceError { return try await planPage(ctx, error: e, form: form) }
            }
        }
        r.get("/panel/mailboxes/:address") { req, ctx in
            try await owner(ctx) { try await mailboxPage(ctx, address: ctx.pathParameter("address"), notice: notice(req)) }
        }
        r.post("/panel/mailboxes/:address/password") { req, ctx in
            try await ownerForm(req, ctx) { form in
                let address = ctx.pathParameter("address")
                do {
                    try await service.setMailboxPassword(tenant: nil, address: address, password: form["password"], caller: ctx.caller)
                    return Reply.redirect("/panel/mailboxes/\(address)?done=password-changed")
                } catch let e as ServiceError { return try await mailboxPage(ctx, address: address, error: e, form: form) }
            }
        }
        r.post("/panel/mailboxes/:address/delete") { req, ctx in
            try await ownerForm(req, ctx) { form in
                let address = ctx.pathParameter("address")
                do {
                    try await service.deleteMailbox(tenant: nil, address: address, caller: ctx.caller)
                    return Reply.redirect("/panel?done=mailbox-deleted")
                } catch let e as ServiceError { return try await mailboxPage(ctx, address: address, error: e, form: form) }
            }
        }
        r.post("/panel/aliases") { req, ctx in
            try await ownerForm(req, ctx) { form in
                do {
                    _ = try await service.createAlias(tenant: nil, local: form["local"], domain: form["domain"], targets: form.all["targets"] ?? [], caller: ctx.caller)
                    return Reply.redirect("/panel?done=alias-created")
                } catch let e as ServiceError { return try await dashboard(ctx, error: e, form: form, formName: "alias") }
            }
        }
        r.post("/panel/aliases/:address/delete") { req, ctx in
            try await ownerForm(req, ctx) { form in
                do {
                    try await service.deleteAlias(tenant: nil, address: ctx.pathParameter("address"), caller: ctx.caller)
                    return Reply.redirect("/panel?done=alias-deleted")
                } catch let e as ServiceError { return try await dashboard(ctx, error: e, form: form, formName: "aliasDelete") }
            }
        }
        AccountRoutes(service: service, views: views, customer: self).register(r)
    }

    // MARK: Helpers

    func notice(_ req: Request) -> String? {
        let texts = [
            "mailbox-created": "The mailbox is ready.", "mailbox-deleted": "The mailbox was deleted.",
            "alias-created": "The alias is ready.", "alias-deleted": "The alias was deleted.",
            "password-changed": "The password was changed.", "totp-enabled": "Two-factor authentication is on.",
            "totp-disabled": "Two-factor authentication is off.", "token-revoked": "The token was revoked.", "plan-changed": "The plan was changed.", "owner-totp-off": "Two-factor authentication is off for that owner; their sessions and tokens have ended.", "password-reset": "Your password is set. Log in with it now.", "closed": "Your account is closed. Thank you for using Postcell.",
        ]
        return texts[req.queryForm["done"]]
    }

    /// A page for logged-out visitors, with the double-submit CSRF cookie.
    func anonymous(_ req: Request, _ ctx: PanelContext, _ body: (String) async throws -> Response) async throws -> Response {
        // A session half-way through its login (second factor pending) signs
        // the forms with its own token, as CSRF.valid expects.
        if let s = ctx.session { return try await body(CSRF.token(for: s)) }
        if let existing = req.cookies[Cookies.csrf]?.value, existing.count >= 20 { return try await body(existing) }
        let token = SessionToken.generate().value
        var resp = try await body(token)
        resp.setCookie(Cookies.csrfCookie(token))
        return resp
    }

    func csrfFailure(_ ctx: PanelContext) -> Response {
        views.page("message", ["title": "Please try again", "message": "The form expired or came from another site. Go back, reload the page and send it again."], status: .forbidden, ctx: ctx)
    }

    func owner(_ ctx: PanelContext, _ body: () async throws -> Response) async throws -> Response {
        guard let u = ctx.user else { return Reply.redirect(ctx.session?.secondFactorPending == true ? "/login/totp" : "/login") }
        guard u.role == .owner else { return Reply.redirect("/staff") }
        do { return try await body() } catch let e as ServiceError {
            return views.page("message", ["title": "Not possible", "message": e.message], status: HTTPResponse.Status(code: e.httpStatus), ctx: ctx)
        } catch let e as SQLError {
            service.logger.error("database: \(e)")
            return views.page("message", ["title": "Please try again", "message": "That did not work this time; nothing was changed. Please try again."], status: .serviceUnavailable, ctx: ctx)
        }
    }

    func ownerForm(_ req: Request, _ ctx: PanelContext, _ body: (Form) async throws -> Response) async throws -> Response {
        try await owner(ctx) {
            let form = try await Form.read(req)
            guard CSRF.valid(form, request: req, ctx: ctx) else { return csrfFailure(ctx) }
            return try await body(form)
        }
    }

    func plansContext(selected: String) async throws -> [[String: Any]] {
        try await service.store.plans().map { p in
            ["id": p.id, "name": p.name, "price": p.monthlyPrice, "currency": p.currency, "mailboxes": p.mailboxes,
             "storage": humanBytes(p.storageBytes), "perDay": p.messagesPerDay, "checked": p.id == selected || (selected.isEmpty && p.id == "family")]
        }
    }

    func meter(_ password: String, user: String) -> [String: Any]? {
        guard !password.isEmpty else { return nil }
        let v = service.checkPassword(password, user: user)
        return ["score": v.score, "level": v.strength.name, "label": v.strength.label]
    }

    func dashboard(_ ctx: PanelContext, notice: String? = nil, error: ServiceError? = nil, form: Form = Form(""), formName: String = "") async throws -> Response {
        let caller = ctx.caller
        let tenant = try await service.tenantFor(caller, nil, write: false)
        let plan = try await service.store.plan(tenant.planID)
        let status = try await service.cellStatus(tenant: nil, caller: caller)
        let mailboxes = try await service.mailboxes(tenant: nil, caller: caller)
        let aliases = try await service.aliases(tenant: nil, caller: caller)
        let domains = try await service.domains(tenant: nil, caller: caller)
        var c: [String: Any] = [
            "tenant": (["name": tenant.name, "slug": tenant.slug, "status": tenant.status.rawValue, "suspended": tenant.status == .suspended,
                        "reason": tenant.statusReason] as [String: Any?]).compactMapValues { $0 },
            "plan": plan.map { ["name": $0.name, "mailboxes": $0.mailboxes, "storage": humanBytes($0.storageBytes)] } ?? [:],
            "cell": status.map { s in ["phase": s.phase, "healthy": s.healthy, "restarts": s.restarts, "used": s.usedBytes.map(humanBytes) ?? "—",
                                       "quota": humanBytes(s.quotaBytes), "detail": s.detail as Any?].compactMapValues { $0 } as [String: Any] } ?? [:],
            "mailboxes": mailboxes.map { m in ["address": m.address, "name": m.displayName, "used": status?.mailboxUsage[m.address].map(humanBytes) ?? "—",
                                               "checked": formName == "alias" && (form.all["targets"] ?? []).contains(m.address)] },
            "aliases": aliases.map { ["address": $0.address, "targets": $0.targets.joined(separator: ", ")] },
            "domains": domains.map { ["name": $0.name, "first": $0.name == domains.first?.name] },
            "mailboxCount": mailboxes.count, "canAdd": mailboxes.count < (plan?.mailboxes ?? 0), "hasMailboxes": !mailboxes.isEmpty,
        ]
        if let notice { c["done"] = notice }
        c[formName + "Form"] = true
        if formName == "mailbox" { c["meter"] = meter(form["password"], user: form["local"]) }
        return views.form("dashboard", c, error: error, form: form, ctx: ctx)
    }

    func planPage(_ ctx: PanelContext, error: ServiceError? = nil, form: Form = Form("")) async throws -> Response {
        let t = try await service.tenantFor(ctx.caller, nil, write: false)
        let current = try await service.store.plan(t.planID)
        return views.form("plan", ["current": current?.name ?? t.planID, "plans": try await plansContext(selected: form["plan"].isEmpty ? t.planID : form["plan"])],
                          error: error, form: form, ctx: ctx)
    }

    func mailboxPage(_ ctx: PanelContext, address: String, notice: String? = nil, error: ServiceError? = nil, form: Form = Form("")) async throws -> Response {
        let setup = try await service.clientSetup(tenant: nil, address: address, caller: ctx.caller)
        var c: [String: Any] = ["setup": ["address": setup.address, "username": setup.username, "server": setup.server,
                                          "imap": setup.imapPort, "imaps": setup.imapsPort, "pop3": setup.pop3Port, "pop3s": setup.pop3sPort,
                                          "submission": setup.submissionPort, "submissions": setup.submissionsPort]]
        if let notice { c["done"] = notice }
        if !form["password"].isEmpty { c["meter"] = meter(form["password"], user: address) }
        return views.form("mailbox", c, error: error, form: form, ctx: ctx)
    }
}
