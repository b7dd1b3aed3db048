import Foundation
import MailCore
import PanelSecurity

public struct SignupRequest: Sendable, Codable {
    public var email: String
    public var password: String
    public var name: String
    public var slug: String
    public var plan: String
    public init(email: String, password: String, name: String, slug: String, plan: String) {
        self.email = email; self.password = password; self.name = name; self.slug = slug; self.plan = plan
    }
}

/// A new session: the id goes into the cookie (only its hash is stored).
public struct NewSession: Sendable {
    public var id: String
    public var user: PanelUser
    public var secondFactorPending: Bool
}

/// A session looked up from its cookie.
public struct SessionInfo: Sendable {
    public var idHash: String
    public var user: PanelUser
    public var csrfSecret: String
    public var secondFactorPending: Bool
}

extension ControlService {
    // MARK: Signup and verification

    /// Creates a pending tenant and its owner and mails a verification link.
    /// Returns the tenant id and (for tests and the API) nothing secret.
    @discardableResult
    public func signup(_ r: SignupRequest, caller: Caller) async throws -> Tenant {
        try await signup(r, caller: caller, verified: false)
    }

    /// An operator's sign-up for someone whose address is known (the demo
    /// owner of `postcell up`): no verification mail, active at once.
    @discardableResult
    public func signupVerified(_ r: SignupRequest, caller: Caller) async throws -> Tenant {
        _ = try await signup(r, caller: caller, verified: true)
        return try await activateVerified(email: r.email.trimmingCharacters(in: .whitespaces).lowercased(), caller: caller)
    }

    func signup(_ r: SignupRequest, caller: Caller, verified: Bool) async throws -> Tenant {
        var fields: [String: String] = [:]
        var email = "", slug = ""
        switch Validation.email(r.email) { case .ok(let e): email = e.lowercased(); case .bad(let m): fields["email"] = m }
        switch Validation.slug(r.slug) { case .ok(let s): slug = s; case .bad(let m): fields["slug"] = m }
        let name = r.name.trimmingCharacters(in: .whitespacesAndNewlines)
        if name.isEmpty { fields["name"] = "Enter a name for the account." }
        else if case .bad(let m) = Validation.displayName(name) { fields["name"] = m }
        let plan = try await store.activePlan(r.plan)
        if plan == nil { fields["plan"] = "Choose one of the plans." }
        let verdict = checkPassword(r.password, user: email)
        if !verdict.accepted { fields["password"] = verdict.messages.first ?? "Choose a stronger password." }
        if fields.isEmpty {
            if try await store.user(email: email) != nil { fields["email"] = "An account with this address exists already. Log in instead." }
            if try await store.tenant(slug: slug) != nil { fields["slug"] = "This name is taken." }
        }
        guard fields.isEmpty, let plan else { throw ServiceError.invalid(fields) }

        // Counted before the (slow) password hash, given back if the sign-up fails.
        let reservation = verified ? nil : try reserveSignup(caller)
        let tenant = Tenant(id: Identifier.make("t-"), slug: slug, name: name, planID: plan.id, status: .pending, statusReason: nil, createdAt: now)
        let token = SessionToken.generate().value
        do {
            let owner = PanelUser(id: Identifier.make("u-"), tenantID: tenant.id, email: email, passwordHash: try await hashPassword(r.password),
                                  role: .owner, emailVerified: false, totpSecret: nil, totpEnabled: false, totpLastStep: 0, disabled: false)
            try await store.db.transaction { [store, now] tx in
                try await store.insertTenant(tenant, on: tx)
                try await store.insertUser(owner, now: now, on: tx)
                try await store.insertVerification(tokenHash: SessionToken.storageHash(of: token), user: owner.id, expires: now + 48 * 3600, on: tx)
            }
        } catch let e as SQLError where e.isConstraintViolation {
            releaseSignup(reservation)
            throw ServiceError.invalid(["slug": "This name or address is taken."])
        } catch {
            releaseSignup(reservation)
            throw error
        }
        try await audit(caller, "tenant.signup", tenant: tenant.id, target: email, detail: "plan=\(plan.id)")
        if verified { return tenant }
        try await mailer.send(to: email, template: "email/verify", context: [
            "name": name, "link": config.panelURL + "/verify?token=" + token, "domain": slug + "." + config.providerDomain,
        ])
        return tenant
    }

    /// Verifies the owner's address: the tenant becomes active with its
    /// free subdomain, and its cell is created.
    public func verifyEmail(token: String, caller: Caller) async throws -> Tenant {
        let hash = SessionToken.storageHash(of: token)
        let tenant: Tenant = try await store.db.transaction { [store, now] tx in
            guard let userID = try await store.consumeVerification(tokenHash: hash, now: now, on: tx) else {
                throw ServiceError(.notFound, "This link is not valid any more. Log in to get a new one.")
            }
            return try await self.activate(userID: userID, on: tx)
        }
        try await audit(caller, "tenant.verified", tenant: tenant.id)
        kick.withLockedValue { $0 }?()
        return tenant
    }

    /// Activates an owner whose address is known to be theirs (the
    /// verification link, or an operator's `postcell tenant add`).
    public func activateVerified(email: String, caller: Caller) async throws -> Tenant {
        guard let u = try await store.user(email: email) else { throw ServiceError(.notFound, "No such user.") }
        let t = try await store.db.transaction { tx in try await self.activate(userID: u.id, on: tx) }
        try await audit(caller, "tenant.verified", tenant: t.id, detail: "by operator")
        kick.withLockedValue { $0 }?()
        return t
    }

    /// The owner's address is confirmed: the tenant becomes active with its
    /// free subdomain, and its cell is created on the host with room.
    func activate(userID: String, on tx: any SQLExecutor) async throws -> Tenant {
        guard let user = try await store.user(id: userID, on: tx), let tid = user.tenantID, var t = try await store.tenant(tid, on: tx) else {
            throw ServiceError(.notFound, "This link is not valid any more. Log in to get a new one.")
        }
        try await store.updateUser(user.id, set: "email_verified_at", .int(now), on: tx)
        guard t.status == .pending else { return t }
        try await store.setTenantStatus(t.id, .active, reason: nil, now: now, on: tx)
        t.status = .active
        try await store.insertDomain(Domain(name: t.slug + "." + config.providerDomain, tenantID: t.id, kind: "subdomain"), now: now, on: tx)
        guard let host = try await store.hosts().first(where: { $0.id == "local" }) else { throw ServiceError(.unavailable, "No host to run the account on.") }
        let slot = try await store.freeSlot(host: host.id, on: tx)
        guard slot < host.capacityCells else { throw ServiceError(.unavailable, "The service is full at the moment. Please try again later.") }
        try await store.insertCell(Cell(id: "c-" + t.slug, tenantID: t.id, hostID: host.id, slot: slot, desiredState: "running",
                                        observedPhase: "pending", healthy: false, restarts: 0), now: now, on: tx)
        return t
    }

    func sendVerification(to user: PanelUser) async throws {
        guard let tid = user.tenantID, let t = try await store.tenant(tid) else { return }
        // One link per 10 minutes: logging in again must not mail-bomb the address.
        let latest = try await store.db.query("SELECT MAX(expires_at) AS e FROM email_verifications WHERE user_id = ?", [.text(user.id)]).first?.int("e") ?? 0
        guard latest <= now + 48 * 3600 - 600 else { return }
        let token = SessionToken.generate().value
        try await store.insertVerification(tokenHash: SessionToken.storageHash(of: token), user: user.id, expires: now + 48 * 3600)
        try await mailer.send(to: user.email, template: "email/verify", context: [
            "name": t.name, "link": config.panelURL + "/verify?token=" + token, "domain": t.slug + "." + config.providerDomain,
        ])
    }

    // MARK: Login, sessions, second factor

    public func login(email rawEmail: String, password: String, caller: Caller) async throws -> NewSession {
        let email = rawEmail.trimmingCharacters(in: .whitespaces).lowercased()
        let ip = ControlService.throttleAddress(caller.ip)
        let t = clock()
        try reserveAttempt(account: email, address: ip, at: t) { "Too many failed logins. Try again in \($0 / 60 + 1) minutes." }
        let user = try await store.user(email: email)
        let ok = try await verify(password, hash: user?.passwordHash ?? ControlService.decoyHash)
        guard ok, let user, !user.disabled else {
            throw ServiceError(.unauthenticated, "The e-mail address or the password is wrong.")
        }
        // A right password takes its attempt back from the address; with
        // TOTP on, the account's count stays until the second factor.
        attemptSucceeded(account: email, address: ip, at: t, user.totpEnabled ? .keep : .clear)
        guard user.emailVerified else {
            // The right password proves the sign-up was theirs: a fresh link.
            try await sendVerification(to: user)
            throw ServiceError(.forbidden, "Please confirm your e-mail address first: we have sent you a link (a new one at most every 10 minutes).")
        }
        if let tid = user.tenantID, let tenant = try await store.tenant(tid), tenant.status == .closed {
            throw ServiceError(.forbidden, "This account is closed.")
        }
        let id = SessionToken.generate().value
        try await store.insertSession(idHash: SessionToken.storageHash(of: id), user: user.id, csrfSecret: SessionToken.generate().value,
                                      pendingSecondFactor: user.totpEnabled, now: now, expires: now + config.sessionSeconds, ip: caller.ip)
        try await store.updateUser(user.id, set: "last_login_at", .int(now))
        if user.role.isStaff { try await audit(Caller(user: user, ip: caller.ip), "staff.login") }
        return NewSession(id: id, user: user, secondFactorPending: user.totpEnabled)
    }

    public func session(id: String) async throws -> SessionInfo? {
        let h = SessionToken.storageHash(of: id)
        guard let s = try await store.session(idHash: h, now: now), let user = try await store.user(id: s.user), !user.disabled else { return nil }
        return SessionInfo(idHash: h, user: user, csrfSecret: s.csrfSecret, secondFactorPending: s.pending)
    }

    /// The second step of a login with TOTP on: a code not used before.
    public func completeSecondFactor(_ s: SessionInfo, code: String, caller: Caller) async throws {
        let ip = ControlService.throttleAddress(caller.ip)
        let t = clock()
        try reserveAttempt(account: s.user.email, address: ip, at: t) { _ in "Too many failed attempts. Try again later." }
        guard s.user.totpEnabled, let key = totpKey(s.user),
              let step = TOTP(secret: key.bytes).match(code.filter(\.isNumber), at: t, window: 1),
              try await store.consumeTOTPStep(s.user.id, step: step) else {
            throw ServiceError.invalid(["code": "That code is not right. Use the current code from your app."])
        }
        attemptSucceeded(account: s.user.email, address: ip, at: t, .clear)
        try await store.completeSecondFactor(idHash: s.idHash)
    }

    public func logout(_ s: SessionInfo) async throws { try await store.deleteSession(idHash: s.idHash) }

    /// API tokens: `Authorization: Bearer TOKEN`. Made with the account's
    /// password (and current TOTP code when on).
    public func createAPIToken(email: String, password: String, code: String?, name: String, caller: Caller) async throws -> String {
        let s = try await login(email: email, password: password, caller: caller)
        let info = try await session(id: s.id)
        do {
            if s.secondFactorPending, let info { try await completeSecondFactor(info, code: code ?? "", caller: caller) }
        } catch {
            if let info { try? await logout(info) }
            throw error
        }
        if let info { try await logout(info) }
        return try await issueAPIToken(s.user, name: name, caller: Caller(user: s.user, ip: caller.ip))
    }

    /// A token made from the panel by a signed-in user, who gives their
    /// password again.
    public func createAPIToken(name: String, password: String, caller: Caller) async throws -> String {
        let u = try requireUser(caller)
        try await reauthenticate(u, password, caller: caller, field: "tokenPassword")
        return try await issueAPIToken(u, name: name, caller: caller)
    }

    /// Tokens last 90 days and end with a password change; the token itself
    /// is shown once and kept only as a hash.
    func issueAPIToken(_ u: PanelUser, name: String, caller: Caller) async throws -> String {
        let token = "pc_" + SessionToken.generate().value
        let id = Identifier.make("tok-")
        let label = String(name.trimmingCharacters(in: .whitespacesAndNewlines).prefix(80))
        try await store.insertAPIToken(id: id, hash: SessionToken.storageHash(of: token), user: u.id, name: label.isEmpty ? "api" : label,
                                       now: now, expires: now + 90 * 86400)
        try await audit(caller, "token.create", tenant: u.tenantID, target: id + " " + label)
        return token
    }

    public func user(apiToken: String) async throws -> PanelUser? {
        let hash = SessionToken.storageHash(of: apiToken), t = now
        guard let found = try await store.apiTokenUser(hash: hash, now: t) else { return nil }
        // The last use is kept to the minute: one write a minute per busy token.
        // A failed note of the last use does not fail the request.
        if (found.lastUsedAt ?? 0) < t - 60 { try? await store.touchAPIToken(hash: hash, now: t) }
        return try await store.user(id: found.user).flatMap { $0.disabled ? nil : $0 }
    }

    /// The caller's own live API tokens (ids, names and dates; never the tokens).
    public func apiTokens(caller: Caller) async throws -> [APIToken] {
        let u = try requireUser(caller)
        return try await store.apiTokens(user: u.id, now: now)
    }

    /// Revokes one of the caller's own tokens at once; not-found for an id
    /// that is not theirs.
    public func revokeAPIToken(id: String, caller: Caller) async throws {
        let u = try requireUser(caller)
        guard id.count <= 64, try await store.deleteAPIToken(id: id, user: u.id) else { throw ServiceError(.notFound, "No such token.") }
        try await audit(caller, "token.revoke", tenant: u.tenantID, target: id)
    }

    // MARK: The owner's own account

    public func changeOwnPassword(current: String, new: String, session: SessionInfo?, caller: Caller) async throws {
        let u = try requireUser(caller)
        try await reauthenticate(u, current, caller: caller, field: "current")
        let verdict = policy.evaluate(new, user: u.email, oldPassword: current)
        guard verdict.accepted else { throw ServiceError.invalid(["password": verdict.messages.first ?? "Choose a stronger password."]) }
        try await store.updateUser(u.id, set: "password_hash", .text(try await hashPassword(new)))
        try await store.deleteSessions(user: u.id, except: session?.idHash)
        try await store.deleteAPITokens(user: u.id)
        try await audit(caller, "account.password", tenant: u.tenantID, target: u.email)
    }

    /// Starts TOTP enrolment: a new secret, shown once, not yet required.
    public func beginTOTP(caller: Caller) async throws -> (secret: String, url: String) {
        let u = try requireUser(caller)
        if u.totpEnabled { throw ServiceError(.conflict, "Two-factor authentication is on already.") }
        let secret = TOTP.generateSecret()
        let text = Base32.encode(secret, padding: false)
        try await store.updateUser(u.id, set: "totp_secret", .text(secrets.seal(text, context: Self.totpContext(u.id))))
        return (text, totpLink(secret, account: u.email))
    }

    /// A user's TOTP key, opened from its sealed form; nil when there is
    /// none or it does not open (the key file was replaced).
    func totpKey(_ u: PanelUser) -> (text: String, bytes: [UInt8])? {
        guard let stored = u.totpSecret else { return nil }
        guard let text = secrets.open(stored, context: Self.totpContext(u.id)), let bytes = Base32.decode(text) else {
            // Not the user's mistake: the key file does not match the database.
            logger.error("a TOTP key does not open with STATE/keys/secrets.key (was the key file replaced?); user \(u.id)")
            return nil
        }
        return (text, bytes)
    }

    static func totpContext(_ userID: String) -> String { "totp:" + userID }

    /// The key and link of a set-up begun but not finished (to show them
    /// again after a wrong code); nil when there is none.
    public func pendingTOTP(caller: Caller) -> (secret: String, url: String)? {
        guard let u = caller.user, !u.totpEnabled, let key = totpKey(u) else { return nil }
        return (key.text, totpLink(key.bytes, account: u.email))
    }

    /// The authenticator app lists the entry under the provider's domain (the
    /// name the family knows), then the account.
    func totpLink(_ secret: [UInt8], account: String) -> String {
        TOTP(secret: secret).otpauthURL(issuer: config.providerDomain, account: account)
    }

    /// Turns TOTP on once the user shows a code from the new secret.
    public func enableTOTP(code: String, caller: Caller) async throws {
        let u = try requireUser(caller)
        guard let key = totpKey(u) else { throw ServiceError(.conflict, "Start the set-up again.") }
        guard let step = TOTP(secret: key.bytes).match(code.filter(\.isNumber), at: clock(), window: 1),
              try await store.consumeTOTPStep(u.id, step: step) else {
            throw ServiceError.invalid(["code": "That code is not right. Check the time on your phone and try the current code."])
        }
        try await store.updateUser(u.id, set: "totp_enabled", .bool(true))
        try await audit(caller, "account.totp.enable", tenant: u.tenantID, target: u.email)
    }

    public func disableTOTP(password: String, caller: Caller) async throws {
        let u = try requireUser(caller)
        try await reauthenticate(u, password, caller: caller, field: "password")
        try await store.updateUser(u.id, set: "totp_enabled", .bool(false))
        try await store.updateUser(u.id, set: "totp_secret", .null)
        try await audit(caller, "account.totp.disable", tenant: u.tenantID, target: u.email)
    }

    /// Creates a staff user (CLI and `postcell up`'s demo).
    public func createStaff(email rawEmail: String, password: String, role: Role, caller: Caller) async throws -> PanelUser {
        guard role.isStaff else { throw ServiceError.invalid(["role": "Staff roles are admin, support and billing."]) }
        guard case .ok(let email) = Validation.email(rawEmail) else { throw ServiceError.invalid(["email": "That is not an e-mail address."]) }
        let u = PanelUser(id: Identifier.make("u-"), tenantID: nil, email: email.lowercased(), passwordHash: try await hashPassword(password), role: role,
                          emailVerified: true, totpSecret: nil, totpEnabled: false, totpLastStep: 0, disabled: false)
        do { try await store.insertUser(u, now: now) } catch let e as SQLError where e.isConstraintViolation {
            throw ServiceError(.conflict, "A user with this address exists already.")
        }
        try await audit(caller, "staff.create", target: u.email, detail: "role=\(role.rawValue)")
        return u
    }
}
