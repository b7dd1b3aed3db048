import ArgumentParser
import ControlPlane
import Foundation
import Logging
import MailCore
import PanelSecurity
import Provisioning

/// `postcell`: the control plane and its CLI.
@main
struct Postcell: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postcell",
        abstract: "Postcell control plane: customer and staff panels, API, and local cells.",
        subcommands: [Up.self, Down.self, Migrate.self, StaffAdd.self, Seed.self])
}

/// Options every command that opens the database shares.
struct StateOptions: ParsableArguments {
    @Option(help: "Where the control plane keeps its files (database, TLS key, outbox, cells).")
    var state: String = "state"
    @Option(help: "Database URL: sqlite:PATH (default STATE/control.db) or postgres://user:password@host:port/db.")
    var database: String?
    @Option(help: "The plan catalogue.")
    var plans: String = "Billing/plans.json"
    @Option(help: "The templates directory.")
    var templates: String = "templates"
    @Option(help: "The domain customers get subdomains of.")
    var providerDomain: String = "postcell.test"

    func configuration() -> ControlConfiguration {
        var c = ControlConfiguration(stateDirectory: absolute(state))
        c.databaseURL = database
        c.plansFile = absolute(plans)
        c.templatesDirectory = absolute(templates)
        c.providerDomain = providerDomain
        return c
    }
}

func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Runs the control plane and local cells; prints the panel URL and demo logins.")
    @OptionGroup var options: StateOptions
    @Option(help: "Address the panel listens on.") var host: String = "127.0.0.1"
    @Option(help: "The panel's HTTPS port.") var port: Int = 8443
    @Option(help: "The engine binary cells run (default: postcell-engine beside this program).") var engine: String?
    @Option(help: "Cell sandbox: bubblewrap (needs root and bwrap) or none; default: bubblewrap when possible.") var sandbox: String?
    @Option(help: "First TCP port of local cells (each takes 10).") var cellPortBase: Int = 20000
    @Option(help: "The address mail clients use to reach local cells.") var mailHost: String = "127.0.0.1"
    @Flag(help: "Do not create the demo staff and customer accounts.") var noDemo = false
    @Option(help: "Sign-ups one client address (IPv6: one /64) may make per hour; 0 for no limit.") var signupsPerHour: Int = 5
    @Option(help: "Send mail to customers (verification links) through this SMTP relay, HOST:PORT; without it the mail stays in STATE/outbox and links are logged.") var mailRelay: String?

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var c = options.configuration()
        c.panelHost = host; c.panelPort = port; c.portBase = cellPortBase; c.mailHost = mailHost; c.smtpRelay = mailRelay
        guard signupsPerHour >= 0 else { throw ValidationError("--signups-per-hour is 0 or more") }
        c.signupsPerHour = signupsPerHour
        c.engineBinary = engine.map(absolute) ?? (URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/postcell-engine")
        if let sandbox {
            guard sandbox == "bubblewrap" || sandbox == "none" else { throw ValidationError("--sandbox is bubblewrap or none") }
            c.sandbox = sandbox
        } else { c.sandbox = "" }
        guard FileManager.default.isExecutableFile(atPath: c.engineBinary) else {
            throw ValidationError("no engine binary at \(c.engineBinary); build it (swift build) or pass --engine")
        }
        let config = c
        let app = try await ControlPlaneApp.make(config)
        let demo = noDemo ? nil : try await Demo.ensure(app.service, state: config.stateDirectory)
        try await app.run(onReady: {
            var lines = ["", "Postcell is running.", "  Panel:     \(config.panelURL)/  (self-signed certificate: accept it in the browser)",
                         "  API:       \(config.panelURL)/openapi.json"]
            if let demo {
                lines += ["  Staff:     \(demo.staffEmail) / \(demo.staffPassword)",
                          "  Customer:  \(demo.ownerEmail) / \(demo.ownerPassword)  (mailbox \(demo.mailbox), same password)",
                          config.smtpRelay == nil ? "  Sign-up verification links are written to \(config.stateDirectory)/outbox and logged here."
                                                  : "  Mail to customers goes through \(config.smtpRelay!)."]
            }
            lines.append("Stop with Ctrl-C; cells keep running and are adopted by the next start (`postcell down` stops them).\n")
            FileHandle.standardOutput.write(Data(lines.joined(separator: "\n").utf8))
        })
    }
}

struct Down: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stops the local cells of a state directory (they outlive `postcell up` by design).")
    @Option(help: "The state directory of `postcell up`.") var state: String = "state"
    func run() async throws {
        guard FileManager.default.fileExists(atPath: absolute(state) + "/cells") else { print("no cells"); return }
        var c = ControlConfiguration(stateDirectory: absolute(state))
        c.engineBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/postcell-engine"
        let p = try LocalProvisioner(ControlPlaneApp.provisionerConfiguration(c))
        let cells = await p.observe()
        await p.shutdown(stopCells: true)
        print("stopped \(cells.count) cell\(cells.count == 1 ? "" : "s")")
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Applies pending database migrations and exits.")
    @OptionGroup var options: StateOptions
    func run() async throws {
        let db = try await DatabaseURL.open(options.configuration().resolvedDatabaseURL)
        let applied = try await Migrations.run(on: db)
        print(applied.isEmpty ? "up to date" : "applied \(applied.map(String.init).joined(separator: ", "))")
        await db.close()
    }
}

struct StaffAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "staff-add", abstract: "Adds a staff user; the password is read from standard input.")
    @OptionGroup var options: StateOptions
    @Option var email: String
    @Option(help: "admin, support or billing") var role: String = "admin"
    func run() async throws {
        guard let role = Role(rawValue: role), role.isStaff else { throw ValidationError("role must be admin, support or billing") }
        let password = readLine(strippingNewline: true) ?? ""
        let app = try await ControlPlaneApp.make(options.configuration())
        let v = app.service.checkPassword(password, user: email)
        guard v.accepted else { throw ValidationError(v.messages.first ?? "password refused") }
        _ = try await app.service.createStaff(email: email, password: password, role: role, caller: .system("cli"))
        await app.database.close()
        print("added \(email) (\(role.rawValue))")
    }
}

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fills the database with N stopped demo tenants (for benchmarks).")
    @OptionGroup var options: StateOptions
    @Option var tenants: Int = 10000
    func run() async throws {
        let app = try await ControlPlaneApp.make(options.configuration())
        let n = try await Demo.seed(app.service, tenants: tenants)
        await app.database.close()
        print("seeded \(n) tenants")
    }
}


