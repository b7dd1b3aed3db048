import Foundation
import Logging
import MailCore
import NIOConcurrencyHelpers
import PanelSecurity
import Provisioning

/// Who is asking: the logged-in panel user (or API token owner) and the
/// client address, for role checks and the audit log.
public struct Caller: Sendable {
    public var user: PanelUser?
    public var ip: String?
    public init(user: PanelUser?, ip: String?) { self.user = user; self.ip = ip }
    public static func system(_ what: String = "system") -> Caller { Caller(user: nil, ip: what) }
}

/// The one service layer the customer panel, the staff panel, the REST API
/// and the CLI share. Every method checks the caller's role, validates its
/// input, writes the control database, pushes the change to the tenant's
/// cell and records staff actions in the audit log.
public final class ControlService: Sendable {
    public let store: ControlStore
    public let config: ControlConfiguration
    public let provisioner: (any Provisioner)?
    let clock: @Sendable () -> Date
    let logger: Logger
    let mailer: Mailer
    let throttle: NIOLockedValueBox<LoginThrottle>
    /// Recent sign-up times per client address (config.signupsPerHour).
    let signups = NIOLockedValueBox<[String: [Date]]>([:])
    let policy: PasswordPolicy
    /// Seals TOTP keys in the database (the key file is STATE/keys/secrets.key).
    let secrets: SecretBox
    /// Tenants whose cell missed a change (it was down): the reconciler
    /// pushes their whole configuration again.
    let dirty = NIOLockedValueBox<Set<String>>([])
    let kdf = KDFGate()
    let cellLocks = NIOLockedValueBox<[String: AsyncLock]>([:])
    /// Tenants with an export being made (one at a time each).
    let exporting = NIOLockedValueBox<Set<String>>([])
    /// Called after a change that the reconciler should act on at once.
    let kick = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)

    public init(store: ControlStore, config: ControlConfiguration, provisioner: (any Provisioner)?, mailer: Mailer, secrets: SecretBox,
                clock: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "postcell.control")) {
        self.store = store; self.config = config; self.provisioner = provisioner; self.mailer = mailer; self.secrets = secrets
        self.clock = clock; self.logger = logger
        self.throttle = NIOLockedValueBox(LoginThrottle())
        self.policy = PasswordPolicy()
    }

    public func onKick(_ f: @escaping @Sendable () -> Void) { kick.withLockedValue { $0 = f } }
    var now: Int64 { Int64(clock().timeIntervalSince1970) }

    // MARK: Start-up

    /// Loads the plan catalogue into the database and makes sure the local
    /// host exists.
    public func bootstrap() async throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: config.plansFile))
        struct Catalogue: Decodable {
            struct P: Decodable { var id: String; var name: String; var monthlyPrice: String; var mailboxes: Int; var storageBytes: Int64; var messagesPerDay: Int; var domains: Int }
            var currency: String; var plans: [P]
        }
        let c = try JSONDecoder().decode(Catalogue.self, from: data)
        for p in c.plans {
            try await store.upsertPlan(Plan(id: p.id, name: p.name, currency: c.currency, monthlyPrice: p.monthlyPrice, mailboxes: p.mailboxes,
                                            storageBytes: p.storageBytes, messagesPerDay: p.messagesPerDay, domains: p.domains))
        }
        try await store.deactivatePlans(except: c.plans.map(\.id))
        // TOTP keys stored in the clear (before they were sealed) are sealed now.
        for row in try await store.db.query("SELECT id, totp_secret FROM users WHERE totp_secret IS NOT NULL AND totp_secret NOT LIKE 'sb1:%'", []) {
            guard let id = row.text("id"), let plain = row.text("totp_secret") else { continue }
            try await store.db.execute("UPDATE users SET totp_secret = ? WHERE id = ? AND totp_secret = ?",
                                       [.text(secrets.seal(plain, context: Self.totpContext(id))), .text(id), .text(plain)])
        }
        if try await !store.hosts().contains(where: { $0.id == "local" }) {
            try await store.insertHost(CellHost(id: "local", name: ProcessInfo.processInfo.hostName, backend: provisioner?.backendName ?? "local",
                                            capacityCells: config.hostCapacity, portBase: config.portBase, portStride: config.portStride), now: now)
        }
    }

    // MARK: Role checks

    func requireUser(_ c: Caller) throws -> PanelUser {
        guard let u = c.user, !u.disabled else { throw ServiceError(.unauthenticated, "Please log in.") }
        return u
    }
    func requireStaff(_ c: Caller, _ roles: Set<Role> = [.admin, .support, .billing]) throws -> PanelUser {
        let u = try requireUser(c)
        guard roles.contains(u.role) else { throw ServiceError(.forbidden, "Your role does not allow this.") }
        return u
    }
    /// The tenant a caller may act on: an owner their own; staff any (read),
    /// admins any (write).
    func tenantFor(_ c: Caller, _ tenantID: String?, write: Bool) async throws -> Tenant {
        let u = try requireUser(c)
        let id: String
        if u.role == .owner {
            guard let own = u.tenantID, tenantID == nil || tenantID == own else { throw ServiceError(.notFound, "No such account.") }
            id = own
        } else {
            guard let tenantID else { throw ServiceError(.notFound, "No such account.") }
            if write && u.role != .admin { throw ServiceError(.forbidden, "Your role does not allow this.") }
            id = tenantID
        }
        guard let t = try await store.tenant(id) else { throw ServiceError(.notFound, "No such account.") }
        if write && u.role == .owner {
            if t.status == .suspended { throw ServiceError(.forbidden, "This account is suspended. Please contact support.") }
            if t.status == .closed { throw ServiceError(.forbidden, "This account is closed.") }
        }
        return t
    }

    /// Counts an attempt before its (slow) check, so parallel guesses cannot
    /// all pass the limit; refuses when the account or address is over it.
    func reserveAttempt(account: String, address ip: String, at t: Date, refusal: (Int) -> String) throws {
        let wait = throttle.withLockedValue { th -> Int? in
            if case .refuse(let wait) = th.check(account: account, address: ip, now: t) { return wait }
            th.recordFailure(account: account, address: ip, now: t)
            return nil
        }
        if let wait { throw ServiceError(.rateLimited, refusal(wait), retryAfter: wait) }
    }

    /// What a succeeded attempt does to the account's count.
    enum AccountCount {
        /// Cleared: the account has proved itself in full.
        case clear
        /// Left as it is: a second factor is still due (this attempt stays
        /// counted until it is given).
        case keep
        /// Only this attempt is taken back: a signed-in user with a second
        /// factor gave the password again. Earlier failures, such as wrong
        /// codes from someone else, still count.
        case takeBack
    }

    /// Counts a sign-up from the caller's address, or refuses it when the
    /// address made `signupsPerHour` within the hour. Callers without an
    /// address (the operator's CLI) are not counted.
    func reserveSignup(_ caller: Caller) throws -> (key: String, at: Date)? {
        guard config.signupsPerHour > 0, caller.ip != nil else { return nil }
        let key = ControlService.throttleAddress(caller.ip), t = clock(), limit = config.signupsPerHour
        let wait = signups.withLockedValue { m -> Int? in
            if m.count > 10_000 { m = m.filter { $0.value.contains { t.timeIntervalSince($0) < 3600 } } }
            let recent = (m[key] ?? []).filter { t.timeIntervalSince($0) < 3600 }
            if recent.count >= limit {
                m[key] = recent
                return max(1, Int(recent[recent.count - limit].addingTimeInterval(3600).timeIntervalSince(t).rounded(.up)))
            }
            m[key] = recent + [t]
            return nil
        }
        if let wait { throw ServiceError(.rateLimited, "Too many sign-ups from your network. Please try again later.", retryAfter: wait) }
        return (key, t)
    }

    /// A counted sign-up that did not happen after all (the name was taken).
    func releaseSignup(_ reservation: (key: String, at: Date)?) {
        guard let reservation else { return }
        signups.withLockedValue { m in
            if let i = m[reservation.key]?.lastIndex(of: reservation.at) { m[reservation.key]?.remove(at: i) }
        }
    }

    /// The reserved attempt succeeded: taken back from the address, and
    /// from the account as `account` says.
    func attemptSucceeded(account: String, address ip: String, at t: Date, _ count: AccountCount) {
        throttle.withLockedValue { th in
            th.cancelFailure(account: count == .takeBack ? account : nil, address: ip, at: t)
            if count == .clear { th.recordSuccess(account: account, address: ip, now: t) }
        }
    }

    /// The throttle's key for a client address: IPv6 by /64 (one customer
    /// line usually holds a whole /64).
    static func throttleAddress(_ ip: String?) -> String {
        guard let ip, ip.contains(":") else { return ip ?? "?" }
        // IPv4 clients of a dual-stack listener arrive as ::ffff:a.b.c.d:
        // each is its own address, not one shared /64.
        let lower = ip.lowercased()
        for prefix in ["::ffff:", "0:0:0:0:0:ffff:"] where lower.hasPrefix(prefix) {
            let v4 = String(lower.dropFirst(prefix.count))
            if v4.split(separator: ".").count == 4 { return v4 }
        }
        var groups = ip.components(separatedBy: "::")[0].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if ip.components(separatedBy: "::").count > 1 {
            let tail = ip.components(separatedBy: "::")[1].split(separator: ":").map(String.init)
            groups += Array(repeating: "0", count: max(0, 8 - groups.count - tail.count)) + tail
        }
        return groups.prefix(4).joined(separator: ":") + "::/64"
    }

    func audit(_ c: Caller, _ action: String, tenant: String? = nil, target: String? = nil, detail: String? = nil, on x: (any SQLExecutor)? = nil) async throws {
        try await store.audit(AuditEntry(id: Identifier.timeOrdered(clock()), at: now, actorID: c.user?.id, actorEmail: c.user?.email,
                                         actorRole: c.user?.role.rawValue ?? "system", tenantID: tenant, action: action, target: target,
                                         detail: detail, ip: c.ip), on: x)
    }

    // MARK: Passwords

    /// The policy verdict for a proposed password (also the strength meter).
    public func checkPassword(_ password: String, user: String?) -> PasswordVerdict {
        policy.evaluate(password, user: user, oldPassword: nil)
    }

    func hashPassword(_ password: String) async throws -> String {
        try await kdf.run { try PasswordHash.make(password: password).description }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        try await kdf.run {
            guard let h = try? PasswordHash(parsing: hash) else { return false }
            return h.verify(password)
        }
    }

    /// One lock per tenant, so a full push (sync) and a single change never
    /// interleave on one cell.
    func tenantLock(_ tenant: String) -> AsyncLock {
        cellLocks.withLockedValue { m in
            if let l = m[tenant] { return l }
            let l = AsyncLock()
            m[tenant] = l
            return l
        }
    }

    /// A hash to verify against when the account does not exist, so a
    /// wrong e-mail address costs as long as a wrong password.
    static let decoyHash = (try? PasswordHash.make(password: "decoy-\(UInt64.random(in: 0...UInt64.max))").description) ?? ""
}
