import Foundation
import Testing
import PanelSecurity
@testable import ControlPlane

/// The service layer over each database (SQLite; PostgreSQL when the test
/// script provides one): the same suite, the same results.
@Suite struct ControlServiceTests {
    @Test(arguments: TestDatabases.all)
    func migrationsAreRecordedAndRunOnce(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let versions = try await env.db.query("SELECT version FROM schema_migrations ORDER BY version", []).compactMap { $0.int("version") }
        #expect(versions == Migrations.all.map { Int64($0.version) })
        #expect(try await Migrations.run(on: env.db).isEmpty)
        #expect(try await env.service.store.plans().map(\.id) == ["family-mini", "family", "club"])
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func signupReportsEveryBadFieldAtOnce(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let e = await #expect(throws: ServiceError.self) {
            try await env.service.signup(SignupRequest(email: "not an address", password: "password1", name: "", slug: "postmaster", plan: "gold"), caller: .system())
        }
        #expect(e?.kind == .invalid)
        #expect(Set(e?.fields.keys.map { $0 } ?? []) == ["email", "password", "name", "slug", "plan"])
        #expect(try await env.service.store.searchTenants("", status: nil, limit: 10, offset: 0).isEmpty)
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func signupVerifyLoginAndTheLinkWorksOnce(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        let t = try await s.signup(SignupRequest(email: "Anna@Example.org", password: TestEnvironment.strong, name: "Anna's family", slug: "Anna-Home", plan: "family"), caller: .system())
        #expect(t.status == .pending && t.slug == "anna-home")
        // Not verified: login is refused with a clear reason.
        let early = await #expect(throws: ServiceError.self) { try await s.login(email: "anna@example.org", password: TestEnvironment.strong, caller: .system()) }
        #expect(early?.kind == .forbidden)
        // ... and sends a fresh link, at most one per 10 minutes.
        #expect(env.sent.withLockedValue { $0.filter { $0.to == "anna@example.org" }.count } == 1)
        env.advance(11 * 60)
        _ = await #expect(throws: ServiceError.self) { try await s.login(email: "anna@example.org", password: TestEnvironment.strong, caller: .system()) }
        #expect(env.sent.withLockedValue { $0.filter { $0.to == "anna@example.org" }.count } == 2)
        let wrongPassword = await #expect(throws: ServiceError.self) { try await s.login(email: "anna@example.org", password: "not-the-password-9", caller: .system()) }
        #expect(wrongPassword?.kind == .unauthenticated)
        #expect(env.sent.withLockedValue { $0.count } == 2)
        let token = try #require(env.verificationToken(to: "anna@example.org"))
        let active = try await s.verifyEmail(token: token, caller: .system())
        #expect(active.status == .active)
        #expect(try await s.store.domains(tenant: t.id).map(\.name) == ["anna-home.postcell.test"])
        let cell = try #require(try await s.store.cell(tenant: t.id))
        #expect(cell.desiredState == "running")
        let again = await #expect(throws: ServiceError.self) { try await s.verifyEmail(token: token, caller: .system()) }
        #expect(again?.kind == .notFound)
        // Duplicate signup with the same address or name.
        let dup = await #expect(throws: ServiceError.self) {
            try await s.signup(SignupRequest(email: "anna@example.org", password: TestEnvironment.strong, name: "x", slug: "anna-home", plan: "family"), caller: .system())
        }
        #expect(dup?.fields["email"] != nil && dup?.fields["slug"] != nil)
        let session = try await s.login(email: "ANNA@example.org", password: TestEnvironment.strong, caller: .system())
        #expect(try await s.session(id: session.id)?.user.email == "anna@example.org")
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func signupsPerAddressAreLimited(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        func signup(_ slug: String, from ip: String?) async throws {
            _ = try await s.signup(SignupRequest(email: "owner@\(slug).example", password: TestEnvironment.strong, name: "N", slug: slug, plan: "family"),
                                   caller: Caller(user: nil, ip: ip))
        }
        // One /64: five sign-ups an hour, whichever addresses in it they come from.
        for i in 0..<5 { try await signup("net\(i)", from: "2001:db8:7:7::\(i + 1)") }
        let refused = await #expect(throws: ServiceError.self) { try await signup("net5", from: "2001:db8:7:7:ffff::9") }
        #expect(refused?.kind == .rateLimited && (refused?.retryAfter ?? 0) > 0 && (refused?.retryAfter ?? 0) <= 3600)
        #expect(try await s.store.tenant(slug: "net5") == nil)
        #expect(env.sent.withLockedValue { $0.filter { $0.to == "owner@net5.example" }.isEmpty })
        // Another network, and the operator (no address), are not held back.
        try await signup("other0", from: "2001:db8:7:8::1")
        try await signup("operator0", from: nil)
        // Refused input is not counted.
        for i in 0..<6 {
            _ = await #expect(throws: ServiceError.self) {
                _ = try await s.signup(SignupRequest(email: "x@y.example", password: "weak", name: "N", slug: "bad\(i)", plan: "family"),
                                       caller: Caller(user: nil, ip: "192.0.2.50"))
            }
        }
        try await signup("v4net", from: "192.0.2.50")
        // An hour on, the network may sign up again.
        env.advance(3601)
        try await signup("net5", from: "2001:db8:7:7::1")
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func loginIsRateLimited(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        _ = try await env.owner(slug: "brute")
        let from = Caller(user: nil, ip: "203.0.113.9")
        for _ in 0..<5 {
            let e = await #expect(throws: ServiceError.self) { try await env.service.login(email: "owner@brute.example", password: "wrong-password-123", caller: from) }
            #expect(e?.kind == .unauthenticated)
        }
        let locked = await #expect(throws: ServiceError.self) { try await env.service.login(email: "owner@brute.example", password: TestEnvironment.strong, caller: from) }
        #expect(locked?.kind == .rateLimited && (locked?.retryAfter ?? 0) > 0)
        env.advance(16 * 60)
        _ = try await env.service.login(email: "owner@brute.example", password: TestEnvironment.strong, caller: from)
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func mailboxesAndAliasesRefuseBadInput(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        let owner = try await env.owner(slug: "smith")
        let anna = try await s.createMailbox(tenant: nil, local: "Anna", domain: nil, displayName: "Anna Smith", password: TestEnvironment.strong, caller: owner)
        #expect(anna.address == "anna@smith.postcell.test")
        func fieldError(_ body: () async throws -> Void) async -> [String: String] {
            do { try await body(); return [:] } catch let e as ServiceError { return e.fields.isEmpty ? ["_": e.message] : e.fields } catch { return ["?": "\(error)"] }
        }
        #expect(await fieldError { _ = try await s.createMailbox(tenant: nil, local: "postmaster", domain: nil, displayName: "", password: TestEnvironment.strong, caller: owner) }["local"] != nil)
        #expect(await fieldError { _ = try await s.createMailbox(tenant: nil, local: "abuse", domain: nil, displayName: "", password: TestEnvironment.strong, caller: owner) }["local"] != nil)
        #expect(await fieldError { _ = try await s.createMailbox(tenant: nil, local: "anna", domain: nil, displayName: "", password: TestEnvironment.strong, caller: owner) }["local"] != nil)
        #expect(await fieldError { _ = try await s.createMailbox(tenant: nil, local: "x'; DROP TABLE tenants;--", domain: nil, displayName: "", password: TestEnvironment.strong, caller: owner) }["local"] != nil)
        #expect(await fieldError { _ = try await s.createMailbox(tenant: nil, local: "ben", domain: nil, displayName: "<script>alert(1)</script>", password: TestEnvironment.strong, caller: owner) }["displayName"] != nil)
        #expect(await fieldError { _ = try await s.createMailbox(tenant: nil, local: "ben", domain: "other.example", displayName: "", password: TestEnvironment.strong, caller: owner) }["domain"] != nil)
        #expect(await fieldError { _ = try await s.createMailbox(tenant: nil, local: "ben", domain: nil, displayName: "", password: "smith12345", caller: owner) }["password"] != nil)
        #expect(await fieldError { _ = try await s.createAlias(tenant: nil, local: "family", domain: nil, targets: ["someone@elsewhere.example"], caller: owner) }["targets"] != nil)
        #expect(await fieldError { _ = try await s.createAlias(tenant: nil, local: "anna", domain: nil, targets: [anna.address], caller: owner) }["local"] != nil)
        let alias = try await s.createAlias(tenant: nil, local: "family", domain: nil, targets: [anna.address, anna.address], caller: owner)
        #expect(alias.targets == [anna.address])
        // The alias keeps the mailbox from being deleted.
        let blocked = await #expect(throws: ServiceError.self) { try await s.deleteMailbox(tenant: nil, address: anna.address, caller: owner) }
        #expect(blocked?.kind == .conflict)
        // The plan's limit (family-mini: 5 mailboxes).
        for name in ["b1", "b2", "b3", "b4"] { _ = try await s.createMailbox(tenant: nil, local: name, domain: nil, displayName: "", password: TestEnvironment.strong, caller: owner) }
        let full = await #expect(throws: ServiceError.self) { _ = try await s.createMailbox(tenant: nil, local: "b5", domain: nil, displayName: "", password: TestEnvironment.strong, caller: owner) }
        #expect(full?.kind == .conflict)
        // Search with SQL and LIKE metacharacters finds nothing and fails nothing.
        let staff = try await env.staff(.support, email: "help@postcell.test")
        #expect(try await s.searchTenants("%' OR '1'='1", status: nil, page: 0, caller: staff).isEmpty)
        #expect(try await s.searchTenants("_", status: nil, page: 0, caller: staff).isEmpty)
        #expect(try await s.searchTenants("smith", status: nil, page: 0, caller: staff).count == 1)
        #expect(try await s.searchTenants("anna@smith", status: "active", page: 0, caller: staff).count == 1)
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func rolesAreCheckedAndStaffActionsAudited(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        let a = try await env.owner(slug: "alpha")
        let b = try await env.owner(slug: "bravo")
        let support = try await env.staff(.support, email: "support@postcell.test")
        let billing = try await env.staff(.billing, email: "billing@postcell.test")
        let admin = try await env.staff(.admin, email: "root@postcell.test")
        let bravoID = try #require(b.user?.tenantID)
        // An owner cannot reach another tenant, nor staff pages.
        #expect(await kind(of: { _ = try await s.mailboxes(tenant: bravoID, caller: a) }) == .notFound)
        #expect(await kind(of: { _ = try await s.fleet(caller: a) }) == .forbidden)
        #expect(await kind(of: { _ = try await s.fleet(caller: Caller(user: nil, ip: nil)) }) == .unauthenticated)
        // Support reads but cannot act; billing cannot read the audit log.
        _ = try await s.tenantDetail(bravoID, caller: support)
        #expect(await kind(of: { try await s.suspend(bravoID, reason: "spam", caller: support) }) == .forbidden)
        #expect(await kind(of: { _ = try await s.createMailbox(tenant: bravoID, local: "x", domain: nil, displayName: "", password: TestEnvironment.strong, caller: support) }) == .forbidden)
        #expect(await kind(of: { _ = try await s.auditLog(tenant: nil, action: nil, page: 0, caller: billing) }) == .forbidden)
        // Admin suspends: audited; the owner can no longer change anything.
        #expect(await kind(of: { try await s.suspend(bravoID, reason: "  ", caller: admin) }) == .invalid)
        try await s.suspend(bravoID, reason: "outbound spam", caller: admin)
        #expect(await kind(of: { _ = try await s.createMailbox(tenant: nil, local: "x1", domain: nil, displayName: "", password: TestEnvironment.strong, caller: b) }) == .forbidden)
        #expect(await kind(of: { try await s.suspend(bravoID, reason: "again", caller: admin) }) == .conflict)
        try await s.resume(bravoID, caller: admin)
        let log = try await s.auditLog(tenant: bravoID, action: nil, page: 0, caller: support)
        #expect(log.map(\.action).prefix(2) == ["tenant.resume", "tenant.suspend"])
        #expect(log.first { $0.action == "tenant.suspend" }?.actorEmail == "root@postcell.test")
        #expect(log.first { $0.action == "tenant.suspend" }?.detail == "outbound spam")
        // Deleting closes the tenant; its owner can no longer log in.
        try await s.deleteTenant(bravoID, reason: "requested", caller: admin)
        #expect(try await s.store.tenant(bravoID)?.status == .closed)
        #expect(try await s.store.cell(tenant: bravoID) == nil)
        #expect(await kind(of: { _ = try await s.login(email: "owner@bravo.example", password: TestEnvironment.strong, caller: .system()) }) == .unauthenticated)
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func totpEnrolmentAndSecondFactor(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        var owner = try await env.owner(slug: "totp")
        let (secretText, url) = try await s.beginTOTP(caller: owner)
        #expect(url.hasPrefix("otpauth://totp/"))
        owner.user = try await s.store.user(id: owner.user!.id)
        // The database holds the key sealed, never as the app shows it.
        let stored = try #require(owner.user?.totpSecret)
        #expect(stored.hasPrefix("sb1:") && !stored.contains(secretText))
        let totp = TOTP(secret: try #require(Base32.decode(secretText)))
        #expect(await kind(of: { try await s.enableTOTP(code: "000000", caller: owner) }) == .invalid || totp.code(at: env.time.withLockedValue { $0 }) == "000000")
        try await s.enableTOTP(code: totp.code(at: env.time.withLockedValue { $0 }), caller: owner)
        env.advance(31)
        let login = try await s.login(email: "owner@totp.example", password: TestEnvironment.strong, caller: .system())
        #expect(login.secondFactorPending)
        let info = try #require(try await s.session(id: login.id))
        #expect(await kind(of: { try await s.completeSecondFactor(info, code: "12345", caller: .system()) }) == .invalid)
        let code = totp.code(at: env.time.withLockedValue { $0 })
        try await s.completeSecondFactor(info, code: code, caller: .system())
        #expect(try await s.session(id: login.id)?.secondFactorPending == false)
        // The same code cannot be used twice.
        let info2 = try await env.passwordSession("owner@totp.example")
        #expect(await kind(of: { try await s.completeSecondFactor(info2, code: code, caller: .system()) }) == .invalid)
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func totpKeysStoredInTheClearAreSealedAtStart(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        let (owner, totp) = try await env.ownerWithTOTP(slug: "legacy")
        let id = try #require(owner.user?.id)
        let sealed = try #require(try await s.store.user(id: id)?.totpSecret)
        // As a database from before sealing would hold it.
        let plain = try #require(s.secrets.open(sealed, context: ControlService.totpContext(id)))
        try await env.db.execute("UPDATE users SET totp_secret = ? WHERE id = ?", [.text(plain), .text(id)])
        try await s.bootstrap()
        let now = try #require(try await s.store.user(id: id)?.totpSecret)
        #expect(now.hasPrefix("sb1:") && now != sealed && !now.contains(plain))
        env.advance(31)
        let info = try await env.passwordSession("owner@legacy.example")
        try await s.completeSecondFactor(info, code: totp.code(at: env.time.withLockedValue { $0 }), caller: .system())
        // A sealed key copied onto another user does not open there.
        let other = try await env.owner(slug: "copycat")
        try await env.db.execute("UPDATE users SET totp_secret = ?, totp_enabled = 1 WHERE id = ?", [.text(now), .text(other.user!.id)])
        env.advance(31)
        let info2 = try await env.passwordSession("owner@copycat.example")
        #expect(await kind(of: { try await s.completeSecondFactor(info2, code: totp.code(at: env.time.withLockedValue { $0 }), caller: .system()) }) == .invalid)
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func anAdminTurnsOffALostSecondFactor(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        let (owner, _) = try await env.ownerWithTOTP(slug: "lostphone")
        let tid = try #require(owner.user?.tenantID)
        let token = try await s.createAPIToken(name: "t", password: TestEnvironment.strong, caller: owner)
        let session = try await s.login(email: "owner@lostphone.example", password: TestEnvironment.strong, caller: .system())
        let admin = try await env.staff(.admin, email: "root@postcell.test")
        let support = try await env.staff(.support, email: "help@postcell.test")
        #expect(await kind(of: { try await s.turnOffSecondFactor(tenant: tid, owner: "owner@lostphone.example", reason: "called", caller: support) }) == .forbidden)
        #expect(await kind(of: { try await s.turnOffSecondFactor(tenant: tid, owner: "owner@lostphone.example", reason: "  ", caller: admin) }) == .invalid)
        #expect(await kind(of: { try await s.turnOffSecondFactor(tenant: tid, owner: "someone@else.example", reason: "called", caller: admin) }) == .notFound)
        let other = try await env.owner(slug: "elsewhere")
        #expect(await kind(of: { try await s.turnOffSecondFactor(tenant: try #require(other.user?.tenantID), owner: "owner@lostphone.example", reason: "called", caller: admin) }) == .notFound)
        try await s.turnOffSecondFactor(tenant: tid, owner: "Owner@LostPhone.example", reason: "called from the number on file, knew the invoice", caller: admin)
        let u = try #require(try await s.store.user(email: "owner@lostphone.example"))
        #expect(!u.totpEnabled && u.totpSecret == nil)
        #expect(try await s.user(apiToken: token) == nil)
        #expect(try await s.session(id: session.id) == nil)
        #expect(try await s.login(email: "owner@lostphone.example", password: TestEnvironment.strong, caller: .system()).secondFactorPending == false)
        #expect(await kind(of: { try await s.turnOffSecondFactor(tenant: tid, owner: "owner@lostphone.example", reason: "again", caller: admin) }) == .conflict)
        // The owner is told.
        #expect(env.sent.withLockedValue { $0.filter { $0.to == "owner@lostphone.example" && $0.subject.contains("Two-factor authentication was turned off") }.count } == 1)
        let log = try await s.auditLog(tenant: tid, action: "owner.totp.off", page: 0, caller: support)
        #expect(log.count == 1 && log[0].detail == "called from the number on file, knew the invoice" && log[0].actorEmail == "root@postcell.test")
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func secondFactorGuessesAreLimitedAcrossLogins(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        let (owner, totp) = try await env.ownerWithTOTP(slug: "guess")
        env.advance(31)
        // Each try: the right password, then a wrong code. The password
        // alone does not clear the count.
        let from = Caller(user: nil, ip: "2001:db8:1:2:aaaa::1")
        var refused = false
        for i in 0..<8 {
            do {
                let l = try await s.login(email: "owner@guess.example", password: TestEnvironment.strong, caller: Caller(user: nil, ip: "2001:db8:1:2:bbbb::\(i)"))
                let info = try #require(try await s.session(id: l.id))
                let wrong = "000000" == totp.code(at: env.time.withLockedValue { $0 }) ? "111111" : "000000"
                let k = await kind(of: { try await s.completeSecondFactor(info, code: wrong, caller: from) })
                #expect(k == .invalid || k == .rateLimited)
                if k == .rateLimited { refused = true; #expect(i < 5); break }
            } catch let e as ServiceError where e.kind == .rateLimited { refused = true; #expect(i < 5); break }
        }
        #expect(refused)
        // Now even the right code is refused until the window has passed.
        let l = try? await s.login(email: "owner@guess.example", password: TestEnvironment.strong, caller: .system())
        #expect(l == nil)
        #expect(ControlService.throttleAddress("2001:db8:1:2:bbbb::7") == "2001:db8:1:2::/64")
        #expect(ControlService.throttleAddress("2001:db8::1") == "2001:db8:0:0::/64")
        #expect(ControlService.throttleAddress("192.0.2.1") == "192.0.2.1")
        #expect(ControlService.throttleAddress("::ffff:192.0.2.1") == "192.0.2.1")
        #expect(ControlService.throttleAddress("::FFFF:198.51.100.7") == "198.51.100.7")
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func rightPasswordsGivenAgainWithTOTPOnDoNotLockTheAccount(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        let (owner, _) = try await env.ownerWithTOTP(slug: "busy")
        // More re-authentications than the account's limit, each right.
        for i in 0..<8 {
            env.advance(1)
            _ = try await s.createAPIToken(name: "t\(i)", password: TestEnvironment.strong, caller: owner)
        }
        #expect(try await s.apiTokens(caller: owner).count == 8)
        // Wrong passwords still count, and a right one does not wipe them.
        for _ in 0..<4 {
            env.advance(1)
            #expect(await kind(of: { _ = try await s.createAPIToken(name: "x", password: "wrong-password-42", caller: owner) }) == .invalid)
        }
        env.advance(1)
        _ = try await s.createAPIToken(name: "right", password: TestEnvironment.strong, caller: owner)
        env.advance(1)
        #expect(await kind(of: { _ = try await s.createAPIToken(name: "x", password: "wrong-password-42", caller: owner) }) == .invalid)
        env.advance(1)
        #expect(await kind(of: { _ = try await s.createAPIToken(name: "y", password: TestEnvironment.strong, caller: owner) }) == .rateLimited)
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func aSuspendedAccountCannotBeClosed(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let owner = try await env.owner(slug: "held")
        let admin = try await env.staff(.admin, email: "boss@postcell.test")
        try await env.service.suspend(try #require(owner.user?.tenantID), reason: "abuse report", caller: admin)
        #expect(await kind(of: { try await env.service.closeAccount(password: TestEnvironment.strong, confirmSlug: "held", caller: owner) }) == .forbidden)
        #expect(try await env.service.store.tenant(owner.user!.tenantID!)?.status == .suspended)
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func forgottenPasswordAndCleanUp(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        _ = try await env.owner(slug: "forgetful")
        let before = try await s.login(email: "owner@forgetful.example", password: TestEnvironment.strong, caller: .system())
        // Unknown addresses get the same (silent) answer and no mail.
        try await s.requestPasswordReset(email: "nobody@nowhere.example", caller: .system())
        try await s.requestPasswordReset(email: "owner@forgetful.example", caller: .system())
        try await s.requestPasswordReset(email: "owner@forgetful.example", caller: .system())
        let resets = env.sent.withLockedValue { $0.filter { $0.subject.contains("Reset") } }
        #expect(resets.count == 1 && resets[0].to == "owner@forgetful.example")
        let body = resets[0].body
        let token = String(body[body.range(of: "token=")!.upperBound...].prefix { !$0.isWhitespace })
        #expect(try await s.resetTokenValid(token))
        #expect(await kind(of: { try await s.resetPassword(token: token, password: "forgetful123", caller: .system()) }) == .invalid)
        try await s.resetPassword(token: token, password: "Granite-lantern-0815", caller: .system())
        // Used once; old sessions and the old password are gone.
        #expect(await kind(of: { try await s.resetPassword(token: token, password: "Another-lantern-0816", caller: .system()) }) == .notFound)
        #expect(try await s.session(id: before.id) == nil)
        #expect(await kind(of: { _ = try await s.login(email: "owner@forgetful.example", password: TestEnvironment.strong, caller: .system()) }) == .unauthenticated)
        _ = try await s.login(email: "owner@forgetful.example", password: "Granite-lantern-0815", caller: .system())
        // A sign-up never confirmed goes after 7 days, freeing its name.
        try await s.signup(SignupRequest(email: "late@example.org", password: TestEnvironment.strong, name: "Late", slug: "latecomer", plan: "family"), caller: .system())
        env.advance(8 * 86400)
        try await s.cleanUp()
        #expect(try await s.store.tenant(slug: "latecomer") == nil)
        #expect(try await s.store.user(email: "late@example.org") == nil)
        #expect(try await s.store.tenant(slug: "forgetful") != nil)
        #expect(try await s.session(id: before.id) == nil)
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func apiTokensAreListedUsedAndRevokedByTheirOwnerOnly(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        let owner = try await env.owner(slug: "tokens")
        let other = try await env.owner(slug: "others")
        let anon = Caller(user: nil, ip: "192.0.2.1")
        let backup = try await s.createAPIToken(email: "owner@tokens.example", password: TestEnvironment.strong, code: nil, name: "  backup script ", caller: anon)
        env.advance(5)
        let phone = try await s.createAPIToken(name: "", password: TestEnvironment.strong, caller: owner)
        #expect(await kind(of: { _ = try await s.createAPIToken(name: "x", password: "not-the-password", caller: owner) }) == .invalid)
        var list = try await s.apiTokens(caller: owner)
        #expect(list.map(\.name) == ["backup script", "api"])
        #expect(list.allSatisfy { $0.id.hasPrefix("tok-") && $0.lastUsedAt == nil && $0.expiresAt == $0.createdAt + 90 * 86400 })
        // Neither the token nor its hash is part of what is listed.
        let listed = String(decoding: try JSONEncoder().encode(list), as: UTF8.self)
        #expect(!listed.contains(backup) && !listed.contains(SessionToken.storageHash(of: backup)))
        #expect(try await s.apiTokens(caller: other).isEmpty)

        // Use is recorded, to the minute.
        #expect(try await s.user(apiToken: backup)?.email == "owner@tokens.example")
        let used = try #require(try await s.apiTokens(caller: owner).first { $0.name == "backup script" }?.lastUsedAt)
        env.advance(30)
        _ = try await s.user(apiToken: backup)
        #expect(try await s.apiTokens(caller: owner).first { $0.name == "backup script" }?.lastUsedAt == used)
        env.advance(31)
        _ = try await s.user(apiToken: backup)
        #expect(try await s.apiTokens(caller: owner).first { $0.name == "backup script" }?.lastUsedAt == used + 61)

        // Another tenant cannot revoke it, nor learn whether it exists.
        list = try await s.apiTokens(caller: owner)
        let backupID = try #require(list.first { $0.name == "backup script" }?.id)
        #expect(await kind(of: { try await s.revokeAPIToken(id: backupID, caller: other) }) == .notFound)
        #expect(await kind(of: { try await s.revokeAPIToken(id: "tok-nonexistent", caller: owner) }) == .notFound)
        #expect(await kind(of: { _ = try await s.apiTokens(caller: anon) }) == .unauthenticated)
        try await s.revokeAPIToken(id: backupID, caller: owner)
        #expect(try await s.user(apiToken: backup) == nil)
        #expect(try await s.user(apiToken: phone)?.email == "owner@tokens.example")
        #expect(try await s.apiTokens(caller: owner).map(\.name) == ["api"])
        let log = try await s.auditLog(tenant: owner.user?.tenantID, action: nil, page: 0, caller: try await env.staff(.support, email: "help@postcell.test"))
        #expect(log.filter { $0.action == "token.create" }.count == 2)
        #expect(log.first { $0.action == "token.revoke" }?.target == backupID)

        // Expired tokens are not listed and do not authenticate.
        env.advance(91 * 86400)
        #expect(try await s.user(apiToken: phone) == nil)
        #expect(try await s.apiTokens(caller: owner).isEmpty)
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func plansChangeWhenTheNewPlanHoldsTheAccount(_ database: String) async throws {
        let env = try await TestEnvironment(database)
        let s = env.service
        let owner = try await env.owner(slug: "grow")
        let tid = try #require(owner.user?.tenantID)
        for i in 1...5 { _ = try await s.createMailbox(tenant: nil, local: "m\(i)", domain: nil, displayName: "", password: TestEnvironment.strong, caller: owner) }
        #expect(await kind(of: { _ = try await s.createMailbox(tenant: nil, local: "m6", domain: nil, displayName: "", password: TestEnvironment.strong, caller: owner) }) == .conflict)
        // Up: room at once.
        #expect(try await s.changePlan(tenant: nil, plan: "family", caller: owner).planID == "family")
        _ = try await s.createMailbox(tenant: nil, local: "m6", domain: nil, displayName: "", password: TestEnvironment.strong, caller: owner)
        // Down: refused while six mailboxes do not fit in five, then allowed.
        var e = await #expect(throws: ServiceError.self) { try await s.changePlan(tenant: nil, plan: "family-mini", caller: owner) }
        #expect(e?.kind == .invalid && e?.fields["plan"]?.contains("5 mailboxes") == true)
        #expect(try await s.store.tenant(tid)?.planID == "family")
        try await s.deleteMailbox(tenant: nil, address: "m6@grow.postcell.test", caller: owner)
        try await s.changePlan(tenant: nil, plan: "family-mini", caller: owner)
        #expect(try await s.store.tenant(tid)?.planID == "family-mini")
        // Unknown or retired plans; the same plan changes nothing.
        e = await #expect(throws: ServiceError.self) { try await s.changePlan(tenant: nil, plan: "gold", caller: owner) }
        #expect(e?.fields["plan"] != nil)
        try await s.changePlan(tenant: nil, plan: "family-mini", caller: owner)
        // An owner cannot name another tenant; staff roles: billing and admin may, support may not.
        let other = try await env.owner(slug: "other")
        #expect(await kind(of: { try await s.changePlan(tenant: tid, plan: "club", caller: other) }) == .notFound)
        let support = try await env.staff(.support, email: "help@postcell.test")
        let billing = try await env.staff(.billing, email: "money@postcell.test")
        let admin = try await env.staff(.admin, email: "root@postcell.test")
        #expect(await kind(of: { try await s.changePlan(tenant: tid, plan: "club", caller: support) }) == .forbidden)
        #expect(try await s.changePlan(tenant: tid, plan: "club", caller: billing).planID == "club")
        // Suspended: the owner cannot, an admin can.
        try await s.suspend(tid, reason: "unpaid", caller: admin)
        #expect(await kind(of: { try await s.changePlan(tenant: nil, plan: "family", caller: owner) }) == .forbidden)
        #expect(try await s.changePlan(tenant: tid, plan: "family", caller: admin).planID == "family")
        let log = try await s.auditLog(tenant: tid, action: "tenant.plan", page: 0, caller: support)
        #expect(log.map(\.detail) == ["club → family", "family-mini → club", "family → family-mini", "family-mini → family"])
        #expect(log.first?.actorEmail == "root@postcell.test")
        // Closed: no plan at all.
        try await s.deleteTenant(tid, reason: "gone", caller: admin)
        #expect(await kind(of: { try await s.changePlan(tenant: tid, plan: "club", caller: admin) }) == .conflict)
        await env.close()
    }

    @Test(arguments: TestDatabases.all)
    func migration4GivesExistingTokensIDs(_ database: String) async throws {
        let directory = NSTemporaryDirectory() + "cp-migrate-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let db = try await TestEnvironment.emptyDatabase(database, directory: directory)
        #expect(try await Migrations.run(on: db, upTo: 3) == [1, 2, 3])
        try await db.execute("INSERT INTO users (id, email, password_hash, role, created_at) VALUES ('u-1', 'a@b.example', 'x', 'admin', 1)", [])
        let hash = SessionToken.storageHash(of: "pc_old")
        try await db.execute("INSERT INTO api_tokens (token_hash, user_id, name, created_at, expires_at) VALUES (?, 'u-1', 'old', 1, 99)", [.text(hash)])
        #expect(try await Migrations.run(on: db).contains(4))
        let tokens = try await ControlStore(db: db).apiTokens(user: "u-1", now: 2)
        #expect(tokens == [APIToken(id: "tok-" + hash.prefix(16), name: "old", createdAt: 1, expiresAt: 99, lastUsedAt: nil)])
        await db.close()
    }

    func kind(of body: () async throws -> Void) async -> ServiceError.Kind? {
        do { try await body(); return nil } catch let e as ServiceError { return e.kind } catch { return nil }
    }
}
