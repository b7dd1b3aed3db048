import Foundation

/// The provisioning protocol: what the control plane asks of a backend that
/// runs cells (`local` today; `podman` and `kubernetes` later), and what it
/// hears back. The control plane's database holds the desired state; a
/// backend holds none of its own beyond what it observes.

/// Whether a cell should run.
public enum CellDesiredState: String, Sendable, Codable, Hashable, CaseIterable {
    case running, stopped
}

/// A listening socket the backend binds on the host and hands to the cell as
/// an inherited file descriptor: the i-th listener of a spec becomes fd 3+i
/// in the cell, and the cell's configuration names it as `"fd": 3+i`.
public struct ListenerSocket: Sendable, Codable, Hashable {
    public var name: String
    public var host: String
    public var port: Int
    public init(name: String, host: String, port: Int) { self.name = name; self.host = host; self.port = port }
}

/// Resource limits of one cell (cgroup v1 memory, pids and cpu shares;
/// RLIMIT_NOFILE).
public struct ResourceLimits: Sendable, Codable, Hashable {
    public var memoryBytes: Int64
    public var pids: Int
    public var cpuShares: Int
    public var openFiles: Int
    public init(memoryBytes: Int64 = 64 << 20, pids: Int = 32, cpuShares: Int = 256, openFiles: Int = 1024) {
        self.memoryBytes = memoryBytes; self.pids = pids; self.cpuShares = cpuShares; self.openFiles = openFiles
    }
}

/// What the control plane wants of one cell.
public struct CellSpec: Sendable, Hashable {
    /// Stable id, `[a-z0-9-]{1,40}`; names the data directory and cgroups.
    public var id: String
    public var desired: CellDesiredState
    /// The cell.json to write before each start (docs/CELL-CONFIG.md).
    public var configuration: String
    public var listeners: [ListenerSocket]
    public var limits: ResourceLimits
    public init(id: String, desired: CellDesiredState, configuration: String, listeners: [ListenerSocket], limits: ResourceLimits = .init()) {
        self.id = id; self.desired = desired; self.configuration = configuration; self.listeners = listeners; self.limits = limits
    }
}

/// Where a cell is in its life, as the backend sees it.
public enum CellPhase: String, Sendable, Codable, Hashable, CaseIterable {
    /// Not running, as desired.
    case stopped
    /// Started, not yet answering its admin API.
    case starting
    /// Running and answering its health check.
    case running
    /// Exited unexpectedly; waiting out the back-off before the next start.
    case backoff
    /// Could not be started at all (bad configuration, missing binary...).
    case failed
}

/// What the backend observed of one cell.
public struct CellObservation: Sendable, Codable, Hashable {
    public var id: String
    public var phase: CellPhase
    public var pid: Int32?
    /// Unexpected exits since the control plane started supervising it.
    public var restarts: Int
    /// How the last run ended ("exit 1", "signal 9", "oom"), if it did.
    public var lastExit: String?
    /// Set when the admin API answered the last health check.
    public var healthy: Bool
    public var since: Date
    public var nextStart: Date?
    public var detail: String?
    public init(id: String, phase: CellPhase, pid: Int32? = nil, restarts: Int = 0, lastExit: String? = nil,
                healthy: Bool = false, since: Date, nextStart: Date? = nil, detail: String? = nil) {
        self.id = id; self.phase = phase; self.pid = pid; self.restarts = restarts; self.lastExit = lastExit
        self.healthy = healthy; self.since = since; self.nextStart = nextStart; self.detail = detail
    }
}

/// A backend that runs cells. Every method is idempotent.
public protocol Provisioner: Sendable {
    /// "local", "podman", "kubernetes".
    var backendName: String { get }
    /// Records what is wanted of a cell and acts on it: creates its data
    /// directory, starts or stops it. A running cell whose spec changed is
    /// not restarted: configuration changes reach it through the admin API.
    func apply(_ spec: CellSpec) async throws
    /// Stops a cell and forgets it; with `deleteData`, removes its data too.
    func remove(id: String, deleteData: Bool) async throws
    /// The current observation of every cell the backend knows.
    func observe() async -> [CellObservation]
    /// The admin API of a cell (docs/ADMIN-API.md).
    func admin(_ id: String) -> EngineAdminClient
    /// The cell's data directory as the control plane's host sees it.
    func dataDirectory(_ id: String) -> String
    /// Stops supervising. Cells keep running unless `stopCells`.
    func shutdown(stopCells: Bool) async
}

/// Why a backend refused or could not carry out a request.
public struct ProvisioningError: Error, CustomStringConvertible, Sendable, Hashable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// Checks a cell id against `[a-z0-9-]{1,40}` (it names directories and cgroups).
    public static func validate(cellID id: String) throws {
        guard (1...40).contains(id.utf8.count),
              id.utf8.allSatisfy({ (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d }) else {
            throw ProvisioningError("bad cell id \(id.debugDescription): want [a-z0-9-]{1,40}")
        }
    }
}
