import Foundation

/// How one control plane is set up (`postcell up` flags, or a file later).
public struct ControlConfiguration: Sendable {
    /// Where the control plane keeps its own files: the SQLite database, the
    /// panel's TLS key, the outbox, and (local backend) `cells/`.
    public var stateDirectory: String
    /// `sqlite:PATH` or `postgres://...`; default `sqlite:STATE/control.db`.
    public var databaseURL: String?
    /// Customers get `SLUG.providerDomain` as their first domain.
    public var providerDomain: String = "postcell.test"
    /// The panel's address and port.
    public var panelHost: String = "127.0.0.1"
    public var panelPort: Int = 8443
    /// The name mail clients connect to for the local cells.
    public var mailHost: String = "127.0.0.1"
    /// The plan catalogue (`Billing/plans.json`).
    public var plansFile: String = "Billing/plans.json"
    /// The panel templates (`templates/`).
    public var templatesDirectory: String = "templates"
    /// The engine binary cells run.
    public var engineBinary: String = ""
    /// The local host's first cell port; each cell takes `portStride` ports.
    public var portBase: Int = 20000
    public var portStride: Int = 10
    public var hostCapacity: Int = 500
    /// Mail to customers is written to `STATE/outbox/` (one `.eml` file per
    /// message) and, when this is set (`HOST:PORT`), sent through that relay.
    public var smtpRelay: String?
    /// Sign-ups from one client address (IPv6 by /64) per hour; each sends a
    /// verification mail, so the form must not become a way to mail
    /// strangers. 0: no limit. Operator sign-ups (no address) are not counted.
    public var signupsPerHour: Int = 5
    /// Sessions last this long without a new login.
    public var sessionSeconds: Int64 = 12 * 3600
    /// `bubblewrap` (needs root, bwrap and setpriv), `none`, or anything
    /// else for bubblewrap where possible.
    public var sandbox: String = "auto"
    /// Memory limit of one cell.
    public var cellMemoryBytes: Int64 = 128 << 20
    /// Processes and threads of one cell (the engine runs about five).
    public var cellPids: Int = 64

    public init(stateDirectory: String) { self.stateDirectory = stateDirectory }

    public var resolvedDatabaseURL: String { databaseURL ?? "sqlite:" + stateDirectory + "/control.db" }
    public var panelURL: String { "https://\(panelHost == "0.0.0.0" ? "127.0.0.1" : panelHost):\(panelPort)" }
}

/// The ports of one local cell: `base + slot * stride + offset`.
public enum CellPorts {
    public static let listeners: [(name: String, role: String, offset: Int, implicitTLS: Bool)] = [
        ("mx", "mx", 0, false), ("submission", "submission", 1, false), ("submissions", "submission", 2, true),
        ("imap", "imap", 3, false), ("imaps", "imap", 4, true), ("pop3", "pop3", 5, false), ("pop3s", "pop3", 6, true),
    ]
    public static func port(_ name: String, slot: Int, host: CellHost) -> Int {
        host.portBase + slot * host.portStride + (listeners.first { $0.name == name }?.offset ?? 0)
    }
}
