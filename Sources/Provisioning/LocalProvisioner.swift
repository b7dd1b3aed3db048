import Foundation
import NIOConcurrencyHelpers
import Logging
import MailCore
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The `local` backend: each cell is a child process of the control plane,
/// sandboxed with bubblewrap under a uid of its own, limited by cgroups, fed
/// its listening sockets as inherited descriptors (docs/PROVISIONING.md).
///
/// Privilege: runs as root to drop each cell to its own uid, make cgroups
/// and bind low ports. Untrusted input: what cells write in their data
/// directories and answer on their admin sockets.
///
/// Cells outlive the control plane: `shutdown(stopCells: false)` (and a
/// crash) leaves them running, and a new `LocalProvisioner` on the same root
/// adopts them from their run records instead of starting duplicates.
public actor LocalProvisioner: Provisioner {
    public struct Configuration: Sendable {
        /// The backend's directory (layout in `LocalLayout`).
        public var root: String
        /// The `postcell-engine` binary.
        public var engineBinary: String
        /// `nil`: bubblewrap when root with `bwrap` and `setpriv` installed,
        /// else `none` with a warning.
        public var sandbox: SandboxMode?
        /// Cell uids (and gids) are `uidBase + index`, the index stable per cell.
        public var uidBase: UInt32 = 200_000
        /// Cgroups are named `cgroupPrefix + id`.
        public var cgroupPrefix: String = "postcell-"
        /// Where cell cgroups go; `nil`: under this process's own cgroups.
        public var cgroupLayout: CgroupLayout?
        /// Extra read-only directories for the engine's shared libraries;
        /// `nil`: found with `ldd`.
        public var runtimeDirectories: [String]?
        public var backoff = RestartBackoff()
        /// How often exits are collected and restarts considered.
        public var tickInterval: TimeInterval = 0.25
        /// How often a live cell's `GET /v1/health` is asked, and how long it has.
        public var healthInterval: TimeInterval = 1
        public var healthTimeout: TimeInterval = 1
        /// SIGTERM → SIGKILL grace when stopping (the engine drains in up to 10 s).
        public var stopGrace: TimeInterval = 12
        /// The admin socket, relative to the data directory.
        public var adminSocket = "sockets/admin.sock"
        public var setpriv = "/usr/bin/setpriv"
        public var bwrap = "/usr/bin/bwrap"
        public var now: @Sendable () -> Date = { Date() }

        public init(root: String, engineBinary: String, sandbox: SandboxMode? = nil) {
            self.root = root; self.engineBinary = engineBinary; self.sandbox = sandbox
        }
    }

    public nonisolated let backendName = "local"
    /// The sandbox in effect (after the automatic choice).
    public nonisolated let sandboxMode: SandboxMode
    nonisolated let configuration: Configuration
    nonisolated let layout: LocalLayout
    nonisolated let engine: String
    nonisolated let runtimeDirectories: [String]
    nonisolated let cgroupLayout: CgroupLayout
    let logger: Logger

    private struct Cell {
        var spec: CellSpec?
        var supervision: CellSupervision
        var uid: UInt32?
        var listeners = ListenerSockets()
        var cgroups: CellCgroups?
        var cgroupNotes: [String] = []
        var oomBaseline: Int?
        var cgroupCleanupPending = false
        var lastHealthCheck: Date?
        var healthInFlight = false
        var healthNote: String?
    }

    private var cells: [String: Cell] = [:]
    private var uids: UIDIndex {
        didSet { publishUIDs() }
    }
    /// The uids, readable without the actor (for `admin(_:)`).
    nonisolated let peerUIDs = NIOLockedValueBox<[String: UInt32]>([:])
    private var loop: Task<Void, Never>?
    private var started = false
    private var isShutDown = false

    public init(_ configuration: Configuration, logger: Logger = Logger(label: "postcell.provisioning.local")) throws {
        self.configuration = configuration
        self.logger = logger
        layout = LocalLayout(root: configuration.root)
        try layout.prepare()
        let loaded = try UIDIndex.load(layout.uids)
        uids = loaded
        peerUIDs.withLockedValue { m in for (id, i) in loaded.cells { m[id] = configuration.uidBase + UInt32(i) } }
        engine = URL(fileURLWithPath: configuration.engineBinary).resolvingSymlinksInPath().path
        guard access(engine, X_OK) == 0 else { throw ProvisioningError("engine binary \(engine) is not executable") }

        let canSandbox = geteuid() == 0 && access(configuration.bwrap, X_OK) == 0 && access(configuration.setpriv, X_OK) == 0
        switch configuration.sandbox {
        case .bubblewrap?:
            guard canSandbox else {
                throw ProvisioningError("sandbox bubblewrap needs root, \(configuration.bwrap) and \(configuration.setpriv)")
            }
            sandboxMode = .bubblewrap
        case .none?:
            sandboxMode = .none
        case nil:
            sandboxMode = canSandbox ? .bubblewrap : .none
            if !canSandbox {
                logger.warning("cells run without a sandbox (not root, or bwrap/setpriv missing)", metadata: ["sandbox": "none"])
            }
        }
        runtimeDirectories = configuration.runtimeDirectories ?? SandboxCommand.runtimeDirectories(lddOutput: Self.ldd(engine))
        cgroupLayout = configuration.cgroupLayout ?? CgroupLayout.current()
    }

    // MARK: Provisioner

    public func apply(_ spec: CellSpec) async throws {
        try ProvisioningError.validate(cellID: spec.id)
        guard !isShutDown else { throw ProvisioningError("the local provisioner is shut down") }
        ensureStarted()
        let now = configuration.now()
        var cell = cells[spec.id] ?? adoptOrCreate(spec.id, desired: spec.desired, now: now)
        let (uid, gid) = try ids(for: spec.id)
        try prepareDataDirectory(layout.dataDirectory(spec.id), uid: uid, gid: gid)
        cell.spec = spec
        cell.supervision.setDesired(spec.desired, now: now)
        if let groups = cell.cgroups, cell.supervision.pid != nil {
            cell.cgroupNotes = groups.setLimits(spec.limits)
        }
        cells[spec.id] = cell
        tick(spec.id, now: now)
    }

    public func remove(id: String, deleteData: Bool) async throws {
        try ProvisioningError.validate(cellID: id)
        ensureStarted()
        let now = configuration.now()
        if cells[id] == nil { cells[id] = adoptOrCreate(id, desired: .stopped, now: now) }
        cells[id]?.supervision.setDesired(.stopped, now: now)
        tick(id, now: now)
        try await waitStopped([id])
        if var cell = cells.removeValue(forKey: id) {
            cell.listeners.closeAll()
            cell.cgroups?.remove()
        }
        unlink(layout.runRecord(id))
        if deleteData {
            let data = layout.dataDirectory(id)
            if FileManager.default.fileExists(atPath: data) { try FileManager.default.removeItem(atPath: data) }
            unlink(layout.log(id))
        }
        logger.info("cell removed", metadata: ["cell": "\(id)", "deleteData": "\(deleteData)"])
    }

    public func observe() async -> [CellObservation] {
        if !isShutDown { ensureStarted() }
        return cells.keys.sorted().compactMap { id in
            guard let c = cells[id] else { return nil }
            var notes: [String] = []
            if c.spec == nil { notes.append("adopted; no spec applied yet") }
            if sandboxMode == .none { notes.append("sandbox none") }
            if !c.cgroupNotes.isEmpty { notes.append("limits: " + c.cgroupNotes.joined(separator: ", ")) }
            if let h = c.healthNote, !c.supervision.healthy, c.supervision.pid != nil { notes.append(h) }
            return c.supervision.observation(extraDetail: notes.isEmpty ? nil : notes.joined(separator: "; "))
        }
    }

    public nonisolated func admin(_ id: String) -> EngineAdminClient {
        // Sandboxed, the engine runs as the cell's own uid: insist on it.
        let uid = sandboxMode == .bubblewrap ? peerUIDs.withLockedValue { $0[id] } : nil
        return EngineAdminClient(socketPath: dataDirectory(id) + "/" + configuration.adminSocket,
                                 expectedPeerUID: sandboxMode == .bubblewrap ? (uid ?? UInt32.max) : nil)
    }

    public nonisolated func dataDirectory(_ id: String) -> String { layout.dataDirectory(id) }

    public func shutdown(stopCells: Bool) async {
        guard !isShutDown else { return }
        if stopCells {
            let now = configuration.now()
            for id in cells.keys { cells[id]?.supervision.setDesired(.stopped, now: now); tick(id, now: now) }
            do { try await waitStopped(Array(cells.keys)) } catch { logger.error("cells did not stop: \(error)") }
            for id in cells.keys {
                cells[id]?.cgroups?.remove()
                unlink(layout.runRecord(id))
            }
        }
        isShutDown = true
        loop?.cancel()
        loop = nil
        // Running cells hold their own copies of their listening sockets.
        for id in cells.keys { cells[id]?.listeners.closeAll() }
        logger.info("local provisioner shut down", metadata: ["cellsStopped": "\(stopCells)", "cells": "\(cells.count)"])
    }

    // MARK: More for tests and tools

    /// The host uid of a cell, once assigned (`nil` without a sandbox).
    public func uid(of id: String) -> UInt32? { cells[id]?.uid ?? uids.cells[id].map { configuration.uidBase + UInt32($0) } }

    /// The cgroup directories of a running cell.
    public func cgroupDirectories(of id: String) -> [String] { cells[id]?.cgroups?.directories ?? [] }

    /// The host ports the backend holds for a cell, by listener name.
    public func boundPorts(of id: String) -> [String: Int] {
        var out: [String: Int] = [:]
        for (l, fd) in cells[id]?.listeners.bound ?? [:] { out[l.name] = ListenerSockets.localPort(fd) }
        return out
    }

    /// Runs one supervision step now (the loop does it every `tickInterval`).
    public func step() {
        let now = configuration.now()
        for id in cells.keys.sorted() { tick(id, now: now) }
        checkHealth(now: now)
    }

    // MARK: Supervision

    private func ensureStarted() {
        guard !started else { return }
        started = true
        adoptRecorded()
        let interval = UInt64(configuration.tickInterval * 1e9)
        loop = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                await self.step()
                try? await Task.sleep(nanoseconds: interval)
            }
        }
    }

    /// Collects an exit, then acts on the state machine's decision.
    private func tick(_ id: String, now: Date) {
        guard var cell = cells[id] else { return }
        collectExit(&cell, id: id, now: now)
        switch cell.supervision.tick(now: now) {
        case .none: break
        case .start: start(&cell, id: id, now: now)
        case .terminate(let pid): signalCell(cell, pid: pid, SIGTERM)
        case .kill(let pid):
            logger.warning("cell did not stop in time, killing it", metadata: ["cell": "\(id)"])
            signalCell(cell, pid: pid, SIGKILL)
        }
        if cell.cgroupCleanupPending, cell.supervision.pid == nil, let groups = cell.cgroups {
            if groups.processes().isEmpty {
                if groups.remove() { cell.cgroups = nil; cell.cgroupCleanupPending = false }
            } else {
                groups.killAll()
            }
        }
        cells[id] = cell
    }

    private func collectExit(_ cell: inout Cell, id: String, now: Date) {
        guard let pid = cell.supervision.pid else { return }
        var how: String
        let reaped = ProcessSpawner.reap(pid)
        if reaped == .running { return }
        if cell.supervision.adopted, case .exited(let status) = reaped {
            // Adopted from an earlier provisioner in this same process: still our child.
            how = ProcessSpawner.describe(waitStatus: status)
        } else if cell.supervision.adopted {
            guard let record = RunRecord.load(layout.runRecord(id)), record.pid == pid else {
                // No record to go by: watch the pid alone.
                if kill(pid, 0) == 0 || errno == EPERM { return }
                how = "ended (status unknown: adopted)"
                finishExit(&cell, id: id, how: how, now: now)
                return
            }
            if record.isAlive() { return }
            how = "ended (status unknown: adopted)"
        } else {
            switch reaped {
            case .running: return
            case .exited(let status): how = ProcessSpawner.describe(waitStatus: status)
            case .notOurs: how = "ended (status unknown)"
            }
        }
        if let base = cell.oomBaseline, let kills = cell.cgroups?.oomKills(), kills > base { how = "oom (\(how))" }
        finishExit(&cell, id: id, how: how, now: now)
    }

    private func finishExit(_ cell: inout Cell, id: String, how: String, now: Date) {
        let expected = cell.supervision.isStopping || cell.supervision.desired == .stopped
        cell.supervision.exited(how, now: now)
        unlink(layout.runRecord(id))
        if let groups = cell.cgroups, !groups.processes().isEmpty {
            // The launcher's tree is gone but something in the cell's cgroup
            // lives on: never let it run beside the next start.
            groups.killAll()
        }
        if expected {
            cell.listeners.closeAll()
            cell.cgroupCleanupPending = true
            logger.info("cell stopped", metadata: ["cell": "\(id)", "exit": "\(how)"])
        } else {
            logger.warning("cell exited", metadata: ["cell": "\(id)", "exit": "\(how)",
                                                     "restartIn": "\(cell.supervision.nextStart.map { $0.timeIntervalSince(now) } ?? 0)"])
        }
    }

    private func start(_ cell: inout Cell, id: String, now: Date) {
        guard let spec = cell.spec else {
            cell.supervision.startFailed("not started: no spec applied since the control plane started", now: now)
            return
        }
        do {
            let data = layout.dataDirectory(id)
            let (uid, gid) = try ids(for: id)
            cell.uid = uid
            try prepareDataDirectory(data, uid: uid, gid: gid)
            try writeCellConfiguration(spec.configuration, dataDirectory: data, uid: uid, gid: gid)
            let (groups, notes) = CellCgroups.create(name: configuration.cgroupPrefix + id, layout: cgroupLayout, limits: spec.limits)
            if !groups.processes().isEmpty {
                logger.warning("killing leftover processes in the cell's cgroup before starting", metadata: ["cell": "\(id)"])
                groups.killAll()
                for _ in 0..<100 where !groups.processes().isEmpty { usleep(10_000) }
            }
            cell.cgroups = groups
            cell.cgroupNotes = notes
            cell.cgroupCleanupPending = false
            cell.oomBaseline = groups.oomKills()
            let fds = try cell.listeners.update(spec.listeners)
            let command: [String]
            switch sandboxMode {
            case .bubblewrap:
                command = SandboxCommand.bubblewrap(cellID: id, uid: uid!, gid: gid!, dataDirectory: data, engine: engine,
                                                    runtimeDirectories: runtimeDirectories,
                                                    setpriv: configuration.setpriv, bwrap: configuration.bwrap)
            case .none:
                command = SandboxCommand.plain(engine: engine, dataDirectory: data)
            }
            let argv = SandboxCommand.launcher(openFiles: spec.limits.openFiles, cgroupProcsFiles: groups.procsFiles,
                                               directory: data, command: command)
            let pid = try ProcessSpawner.spawn(argv, environment: ["PATH=/usr/bin:/bin"], inherited: fds, logPath: layout.log(id))
            let record = RunRecord(pid: pid, startTicks: ProcessSpawner.startTicks(pid) ?? 0, startedAt: now,
                                   dataDirectory: data, cgroups: groups, sandbox: sandboxMode)
            do { try record.save(layout.runRecord(id)) } catch {
                logger.error("cannot write the run record; a restarted control plane will not adopt this cell", metadata: ["cell": "\(id)", "error": "\(error)"])
            }
            cell.supervision.detail = nil
            cell.supervision.started(pid: pid, at: now, now: now)
            cell.lastHealthCheck = nil
            logger.info("cell started", metadata: ["cell": "\(id)", "pid": "\(pid)", "sandbox": "\(sandboxMode.rawValue)"])
        } catch {
            cell.supervision.startFailed("\(error)", now: now)
            logger.error("cell could not start", metadata: ["cell": "\(id)", "error": "\(error)"])
        }
    }

    /// SIGTERM lets the engine drain; it goes to the engine and its helpers,
    /// not to the outer bwrap, which exits by itself when the sandbox's init
    /// does (a signalled outer bwrap would leave the engine orphaned).
    private func signalCell(_ cell: Cell, pid: Int32, _ signal: Int32) {
        if signal == SIGKILL, let groups = cell.cgroups, !groups.directories.isEmpty {
            groups.killAll()
            kill(pid, SIGKILL)
            return
        }
        var targets = cell.cgroups.map { $0.processes() } ?? []
        if targets.isEmpty { targets = ProcessSpawner.processTree(pid) }
        if sandboxMode == .bubblewrap, signal != SIGKILL, targets.count > 1 { targets.removeAll { $0 == pid } }
        for p in targets { kill(p, signal) }
    }

    private func checkHealth(now: Date) {
        for (id, cell) in cells {
            guard let pid = cell.supervision.pid, !cell.supervision.isStopping, !cell.healthInFlight else { continue }
            if let last = cell.lastHealthCheck, now.timeIntervalSince(last) < configuration.healthInterval { continue }
            cells[id]?.lastHealthCheck = now
            cells[id]?.healthInFlight = true
            var client = admin(id)
            client.timeout = .milliseconds(Int64(configuration.healthTimeout * 1000))
            Task { [weak self] in
                var note: String?
                do {
                    _ = try await client.health()
                } catch let e as EngineAdminError {
                    note = e.code == .unreachable ? "admin API not answering (no socket yet)" : "health: \(e)"
                } catch {
                    note = "health: \(error)"
                }
                await self?.healthResult(id, pid: pid, note: note)
            }
        }
    }

    private func healthResult(_ id: String, pid: Int32, note: String?) {
        guard var cell = cells[id] else { return }
        cell.healthInFlight = false
        cell.healthNote = note
        cell.supervision.health(note == nil, pid: pid, now: configuration.now())
        cells[id] = cell
    }

    private func waitStopped(_ ids: [String]) async throws {
        let deadline = configuration.now().addingTimeInterval(configuration.stopGrace + 10)
        while ids.contains(where: { cells[$0]?.supervision.pid != nil }) {
            if configuration.now() > deadline { throw ProvisioningError("cells \(ids) did not stop") }
            let now = configuration.now()
            for id in ids { tick(id, now: now) }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    // MARK: Adoption

    /// Takes over the cells a previous control plane started that still run.
    private func adoptRecorded() {
        for name in DurableFile.list(layout.run) where name.hasSuffix(".json") {
            let id = String(name.dropLast(5))
            guard (try? ProvisioningError.validate(cellID: id)) != nil, cells[id] == nil else { continue }
            cells[id] = adoptOrCreate(id, desired: .running, now: configuration.now())
        }
    }

    private func adoptOrCreate(_ id: String, desired: CellDesiredState, now: Date) -> Cell {
        var cell = Cell(supervision: CellSupervision(id: id, desired: desired, backoff: configuration.backoff,
                                                     stopGrace: configuration.stopGrace, now: now))
        cell.uid = uids.cells[id].map { configuration.uidBase + UInt32($0) }
        guard let record = RunRecord.load(layout.runRecord(id)) else { return cell }
        if record.isAlive() {
            cell.cgroups = record.cgroups
            cell.oomBaseline = record.cgroups.oomKills()
            cell.supervision.started(pid: record.pid, at: record.startedAt, adopted: true, now: now)
            logger.info("adopted a running cell", metadata: ["cell": "\(id)", "pid": "\(record.pid)"])
        } else {
            if !record.cgroups.processes().isEmpty {
                logger.warning("the cell's recorded process is gone but its cgroup is not empty: killing what is left", metadata: ["cell": "\(id)"])
                record.cgroups.killAll()
            }
            cell.cgroups = record.cgroups
            cell.cgroupCleanupPending = true
            unlink(layout.runRecord(id))
        }
        return cell
    }

    // MARK: Helpers

    private func publishUIDs() {
        let base = configuration.uidBase
        let map = Dictionary(uniqueKeysWithValues: uids.cells.map { ($0.key, base + UInt32($0.value)) })
        peerUIDs.withLockedValue { $0 = map }
    }

    /// The cell's uid and gid under the sandbox (assigned and persisted on
    /// first use); `nil` without one.
    private func ids(for id: String) throws -> (uid_t?, gid_t?) {
        guard sandboxMode == .bubblewrap else { return (nil, nil) }
        let (index, isNew) = uids.index(for: id)
        if isNew { try uids.save(layout.uids) }
        let uid = configuration.uidBase + UInt32(index)
        return (uid, uid)
    }

    /// `ldd BINARY`: which directories outside /usr hold its shared libraries.
    nonisolated static func ldd(_ binary: String) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ldd")
        p.arguments = [binary]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        do { try p.run() } catch { return "" }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
