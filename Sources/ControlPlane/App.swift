import Crypto
import Foundation
import Hummingbird
import Logging
import MailCore
import Mustache
import NIOCore
import PanelSecurity
import Provisioning

/// The whole control plane in one process: database and migrations, the
/// service layer, the local provisioner and its reconciler, and the HTTPS
/// server for panels and API.
public final class ControlPlaneApp: Sendable {
    public let config: ControlConfiguration
    public let service: ControlService
    public let database: any SQLDatabase
    public let provisioner: LocalProvisioner?
    let library: MustacheLibrary
    let logger: Logger

    public static func make(_ config: ControlConfiguration, logger: Logger = Logger(label: "postcell")) async throws -> ControlPlaneApp {
        try FileManager.default.createDirectory(atPath: config.stateDirectory, withIntermediateDirectories: true)
        let db = try await DatabaseURL.open(config.resolvedDatabaseURL)
        let applied = try await Migrations.run(on: db)
        if !applied.isEmpty { logger.info("database migrated", metadata: ["versions": "\(applied)"]) }
        let library = try await MustacheLibrary(directory: config.templatesDirectory)
        var provisioner: LocalProvisioner?
        if !config.engineBinary.isEmpty {
            provisioner = try LocalProvisioner(provisionerConfiguration(config), logger: Logger(label: "postcell.cells"))
        }
        // Without a relay (the demo set-up) links are logged so someone can
        // follow them; with one, they travel only by mail.
        let logLinks: (@Sendable (String, String, String) -> Void)?
        if config.smtpRelay == nil {
            logLinks = { to, subject, body in
                if let link = body.split(separator: "\n").first(where: { $0.hasPrefix("https://") }) {
                    logger.notice("mail to \(to): \(subject): \(link)")
                }
            }
        } else {
            logLinks = nil
        }
        let mailer = try Mailer(outbox: config.stateDirectory + "/outbox", from: "Postcell <noreply@\(config.providerDomain)>", library: library,
                                onSend: logLinks)
        let secrets = try SecretBox.loadOrCreate(path: config.stateDirectory + "/keys/secrets.key")
        let service = ControlService(store: ControlStore(db: db), config: config, provisioner: provisioner, mailer: mailer, secrets: secrets, logger: logger)
        try await service.bootstrap()
        return ControlPlaneApp(config: config, service: service, database: db, provisioner: provisioner, library: library, logger: logger)
    }

    /// The local backend of a state directory (also for `postcell down`).
    public static func provisionerConfiguration(_ config: ControlConfiguration) -> LocalProvisioner.Configuration {
        var pc = LocalProvisioner.Configuration(root: config.stateDirectory + "/cells", engineBinary: config.engineBinary,
                                                sandbox: SandboxMode(rawValue: config.sandbox))
        pc.uidBase = 200_000
        // Cgroup names are machine-wide: tie them to this state directory,
        // so two control planes' cells of the same name never meet.
        pc.cgroupPrefix = "postcell-" + shortHash(config.stateDirectory) + "-"
        return pc
    }

    /// 8 hex digits of SHA-256 of a path.
    static func shortHash(_ s: String) -> String {
        SHA256.hash(data: Data(s.utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
    }

    init(config: ControlConfiguration, service: ControlService, database: any SQLDatabase, provisioner: LocalProvisioner?, library: MustacheLibrary, logger: Logger) {
        self.config = config; self.service = service; self.database = database; self.provisioner = provisioner
        self.library = library; self.logger = logger
    }

    /// Serves until SIGTERM/SIGINT. Cells keep running afterwards: mail
    /// flow does not depend on the control plane, and the next start
    /// adopts them.
    public func run(onReady: @escaping @Sendable () -> Void = {}) async throws {
        let names = Array(Set(["localhost", "127.0.0.1", config.panelHost].filter { $0 != "0.0.0.0" }))
        let cert = try SelfSignedCertificate.loadOrCreate(directory: config.stateDirectory + "/tls", names: names)
        let tls = try ControlServer.tlsConfiguration(certificatePEM: cert.certificatePEM, keyPEM: cert.privateKeyPEM)
        let router = try ControlServer.router(service: service, library: library, templatesDirectory: config.templatesDirectory)
        var reconciler: Reconciler?
        if let p = provisioner {
            try await service.markAllDirty()
            let r = Reconciler(provisioner: p, interval: 2, desired: { [service] in try await service.desiredCells() },
                               report: { [service] in await service.report($0) })
            service.onKick { Task { await r.kick() } }
            await r.start()
            reconciler = r
        }
        var outbox: Task<Void, Never>?
        if let text = config.smtpRelay {
            guard let relay = OutboxSender.Relay.parse(text) else { throw ServiceError(.invalid, "bad relay address \(text) (HOST:PORT)") }
            let sender = OutboxSender(outbox: config.stateDirectory + "/outbox", relay: relay, heloName: config.panelHost == "0.0.0.0" ? "localhost" : config.panelHost, logger: logger)
            outbox = Task { await sender.run() }
        }
        let service = self.service, logger = self.logger
        let cleanUp = Task {
            while !Task.isCancelled {
                do { try await service.cleanUp() } catch { logger.notice("clean-up: \(error)") }
                try? await Task.sleep(for: .seconds(600))
            }
        }
        let app = try ControlServer.application(router: router, tls: tls, host: config.panelHost, port: config.panelPort, logger: logger,
                                                onServerRunning: { _ in onReady() })
        do { try await app.runService() } catch { logger.error("server: \(error)") }
        await reconciler?.stop()
        outbox?.cancel()
        cleanUp.cancel()
        await provisioner?.shutdown(stopCells: false)
        await database.close()
    }
}
