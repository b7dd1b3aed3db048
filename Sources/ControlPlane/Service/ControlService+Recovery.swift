import Foundation
import MailCore
import PanelSecurity

extension ControlService {
    // MARK: Forgotten passwords

    /// Mails a reset link to a verified user, at most one per 10 minutes.
    /// The reply is the same whether or not the address has an account.
    public func requestPasswordReset(email raw: String, caller: Caller) async throws {
        guard case .ok(let email) = Validation.email(raw) else { throw ServiceError.invalid(["email": "That is not an e-mail address."]) }
        guard let u = try await store.user(email: email.lowercased()), u.emailVerified, !u.disabled else { return }
        let latest = try await store.db.query("SELECT MAX(created_at) AS c FROM password_resets WHERE user_id = ?", [.text(u.id)]).first?.int("c") ?? 0
        guard latest <= now - 600 else { return }
        let token = SessionToken.generate().value
        try await store.db.execute("INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                                   [.text(SessionToken.storageHash(of: token)), .text(u.id), .int(now), .int(now + 3600)])
        try await audit(Caller(user: u, ip: caller.ip), "account.reset.request", tenant: u.tenantID, target: u.email)
        try await mailer.send(to: u.email, template: "email/reset", context: ["link": config.panelURL + "/reset?token=" + token])
    }

    /// Whether a reset link is still good (for showing the form).
    public func resetTokenValid(_ token: String) async throws -> Bool {
        try await store.db.first("SELECT user_id FROM password_resets WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                                 .text(SessionToken.storageHash(of: token)), .int(now)) != nil
    }

    /// Sets a new password from a reset link (once, within an hour); every
    /// session and API token of the user ends; TOTP stays as it was.
    public func resetPassword(token: String, password: String, caller: Caller) async throws {
        let hash = SessionToken.storageHash(of: token)
        guard let row = try await store.db.first("SELECT user_id FROM password_resets WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?", .text(hash), .int(now)),
              let u = try await store.user(id: row.string("user_id")), !u.disabled else {
            throw ServiceError(.notFound, "This link is not valid any more. Ask for a new one.")
        }
        let verdict = checkPassword(password, user: u.email)
        guard verdict.accepted else { throw ServiceError.invalid(["password": verdict.messages.first ?? "Choose a stronger password."]) }
        let newHash = try await hashPassword(password)
        let used = try await store.db.query("UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL RETURNING user_id", [.int(now), .text(hash)])
        guard !used.isEmpty else { throw ServiceError(.notFound, "This link is not valid any more. Ask for a new one.") }
        try await store.updateUser(u.id, set: "password_hash", .text(newHash))
        try await store.deleteSessions(user: u.id)
        try await store.deleteAPITokens(user: u.id)
        try await audit(Caller(user: u, ip: caller.ip), "account.reset", tenant: u.tenantID, target: u.email)
    }

    /// Checks the password of someone already logged in (before closing the
    /// account, turning TOTP off, changing the password), under the same
    /// throttle as logins.
    func reauthenticate(_ u: PanelUser, _ password: String, caller: Caller, field: String) async throws {
        let ip = ControlService.throttleAddress(caller.ip)
        let t = clock()
        try reserveAttempt(account: u.email, address: ip, at: t) { _ in "Too many wrong passwords. Try again later." }
        guard try await verify(password, hash: u.passwordHash) else {
            throw ServiceError.invalid([field: field == "current" ? "This is not your current password." : "This is not your password."])
        }
        attemptSucceeded(account: u.email, address: ip, at: t, u.totpEnabled ? .takeBack : .clear)
    }

    // MARK: Clean-up

    /// Removes what has expired: sessions, used or old links, tokens, and
    /// sign-ups never confirmed within 7 days (their address and name are
    /// free again). Run every few minutes by the app.
    public func cleanUp() async throws {
        try await store.deleteExpiredSessions(now: now)
        try await store.db.execute("DELETE FROM email_verifications WHERE expires_at <= ? OR used_at IS NOT NULL", [.int(now)])
        try await store.db.execute("DELETE FROM password_resets WHERE expires_at <= ? OR used_at IS NOT NULL", [.int(now)])
        try await store.db.execute("DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at <= ?", [.int(now)])
        let stale = try await store.db.query("SELECT id, slug FROM tenants WHERE status = 'pending' AND created_at <= ?", [.int(now - 7 * 86400)])
        for r in stale {
            try await store.db.execute("DELETE FROM tenants WHERE id = ? AND status = 'pending'", [.text(r.string("id"))])
            try await audit(.system("clean-up"), "tenant.expire", tenant: r.string("id"), target: r.string("slug"), detail: "never confirmed")
        }
    }
}
