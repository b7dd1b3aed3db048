import Foundation
import Mustache
import NIOConcurrencyHelpers
import PanelSecurity
@testable import ControlPlane

/// The databases the shared suite runs on: SQLite always; PostgreSQL when
/// `POSTCELL_TEST_POSTGRES_URL` names a server (scripts/test.sh starts one).
enum TestDatabases {
    static var all: [String] {
        var kinds = ["sqlite"]
        if ProcessInfo.processInfo.environment["POSTCELL_TEST_POSTGRES_URL"] != nil { kinds.append("postgres") }
        return kinds
    }
}

/// A fresh control plane (no provisioner) on a fresh database, with a
/// settable clock and the mail it sent.
final class TestEnvironment: Sendable {
    let service: ControlService
    let db: any SQLDatabase
    let sent = NIOLockedValueBox<[(to: String, subject: String, body: String)]>([])
    let time = NIOLockedValueBox<Date>(Date(timeIntervalSince1970: 1_790_000_000))
    let directory: String

    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    init(_ kind: String) async throws {
        directory = NSTemporaryDirectory() + "cp-test-" + UUID().uuidString
        db = try await TestEnvironment.emptyDatabase(kind, directory: directory)
        try await Migrations.run(on: db)
        var config = ControlConfiguration(stateDirectory: directory)
        config.plansFile = TestEnvironment.repo + "/Billing/plans.json"
        config.templatesDirectory = TestEnvironment.repo + "/templates"
        let library = try await MustacheLibrary(directory: config.templatesDirectory)
        let sent = self.sent, time = self.time
        let mailer = try Mailer(outbox: directory + "/outbox", from: "noreply@postcell.test", library: library,
                                clock: { time.withLockedValue { $0 } }, onSend: { to, subject, body in sent.withLockedValue { $0.append((to, subject, body)) } })
        service = ControlService(store: ControlStore(db: db), config: config, provisioner: nil, mailer: mailer,
                                 secrets: try SecretBox.loadOrCreate(path: directory + "/keys/secrets.key"),
                                 clock: { time.withLockedValue { $0 } })
        try await service.bootstrap()
    }

    /// A new, empty database of the kind (no migrations run).
    static func emptyDatabase(_ kind: String, directory: String) async throws -> any SQLDatabase {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if kind == "postgres", let url = ProcessInfo.processInfo.environment["POSTCELL_TEST_POSTGRES_URL"] {
            let admin = try await PostgresDatabase.connect(url: url)
            let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
            try await admin.execute("CREATE DATABASE \(name)", [])
            await admin.close()
            var u = URLComponents(string: url)!
            u.path = "/" + name
            return try await PostgresDatabase.connect(url: u.string!)
        }
        return try SQLiteDatabase(path: directory + "/control.db")
    }

    func advance(_ seconds: TimeInterval) { time.withLockedValue { $0 += seconds } }

    func close() async {
        await db.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The verification token from the last mail to `to`.
    func verificationToken(to: String) -> String? {
        let body = sent.withLockedValue { $0.last { $0.to == to }?.body } ?? ""
        guard let r = body.range(of: "token=") else { return nil }
        return String(body[r.upperBound...].prefix { !$0.isWhitespace })
    }

    static let strong = "Velvet-otter-quarry-7193"

    /// Signs up, verifies and logs in an owner; returns the owner caller.
    func owner(slug: String, email: String? = nil) async throws -> Caller {
        let email = email ?? "owner@\(slug).example"
        try await service.signup(SignupRequest(email: email, password: TestEnvironment.strong, name: "The \(slug) family", slug: slug, plan: "family-mini"), caller: .system("test"))
        _ = try await service.verifyEmail(token: verificationToken(to: email) ?? "", caller: .system("test"))
        let s = try await service.login(email: email, password: TestEnvironment.strong, caller: Caller(user: nil, ip: "192.0.2.1"))
        return Caller(user: s.user, ip: "192.0.2.1")
    }

    /// Logs in with the password (from no particular address); the session,
    /// its second factor still due when TOTP is on.
    func passwordSession(_ email: String) async throws -> SessionInfo {
        let login = try await service.login(email: email, password: TestEnvironment.strong, caller: .system())
        guard let info = try await service.session(id: login.id) else { throw ServiceError(.notFound, "no session") }
        return info
    }

    /// An owner with TOTP turned on; the caller holds the user as it is now.
    func ownerWithTOTP(slug: String) async throws -> (Caller, TOTP) {
        var owner = try await owner(slug: slug)
        let (secretText, _) = try await service.beginTOTP(caller: owner)
        owner.user = try await service.store.user(id: owner.user!.id)
        guard let secret = Base32.decode(secretText) else { throw ServiceError(.invalid, "bad secret") }
        let totp = TOTP(secret: secret)
        try await service.enableTOTP(code: totp.code(at: time.withLockedValue { $0 }), caller: owner)
        owner.user = try await service.store.user(id: owner.user!.id)
        return (owner, totp)
    }

    func staff(_ role: Role, email: String) async throws -> Caller {
        let u = try await service.createStaff(email: email, password: TestEnvironment.strong, role: role, caller: .system("test"))
        return Caller(user: u, ip: "198.51.100.7")
    }
}
