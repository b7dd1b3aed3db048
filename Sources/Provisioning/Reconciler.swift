import Foundation
import Logging

/// What to do with a cell the backend runs but the desired state no longer
/// lists. Nothing is removed unless the control plane says so: a cell
/// missing from a (possibly partial, possibly buggy) read of the database
/// must never lose its data by accident.
public enum OrphanDecision: Sendable, Hashable {
    case keep
    case remove(deleteData: Bool)
}

/// One step the reconciler takes.
public enum ReconcileAction: Sendable, Hashable {
    case apply(CellSpec)
    case remove(id: String, deleteData: Bool)
}

/// The reconciler's decision, as a pure function of what is wanted, what
/// the backend observes, and what was last applied.
public enum ReconcilePlan {
    /// - A desired cell is applied when its spec changed since the last
    ///   successful apply, when the backend does not know it (restarted,
    ///   forgot it), or when its phase contradicts the spec (stopped while
    ///   it should run, running while it should be stopped).
    /// - A duplicate id in `desired`: the first wins.
    /// - An observed cell that is not desired is removed only when
    ///   `orphans` says so; absent means keep.
    public static func decide(desired: [CellSpec], observed: [CellObservation], lastApplied: [String: CellSpec],
                              orphans: [String: OrphanDecision]) -> [ReconcileAction] {
        var actions: [ReconcileAction] = []
        let seen = Dictionary(observed.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var wanted = Set<String>()
        for spec in desired where wanted.insert(spec.id).inserted {
            guard let o = seen[spec.id] else { actions.append(.apply(spec)); continue }
            let contradicts: Bool
            switch spec.desired {
            case .running: contradicts = o.phase == .stopped
            case .stopped: contradicts = o.phase != .stopped
            }
            if lastApplied[spec.id] != spec || contradicts { actions.append(.apply(spec)) }
        }
        for o in observed.sorted(by: { $0.id < $1.id }) where !wanted.contains(o.id) {
            if case .remove(let deleteData)? = orphans[o.id] { actions.append(.remove(id: o.id, deleteData: deleteData)) }
        }
        return actions
    }

    /// Observed cells that are not desired (those `orphans` is asked about).
    public static func orphans(desired: [CellSpec], observed: [CellObservation]) -> [String] {
        let wanted = Set(desired.map(\.id))
        return observed.map(\.id).filter { !wanted.contains($0) }.sorted()
    }
}

/// Drives a `Provisioner` towards the desired state: every `interval` (or at
/// once after `kick()`) it reads the desired specs, decides with
/// `ReconcilePlan`, carries the actions out one by one (a failing cell does
/// not hold up the others) and reports the backend's observations.
public actor Reconciler {
    public typealias DesiredSource = @Sendable () async throws -> [CellSpec]
    public typealias OrphanPolicy = @Sendable (String) async -> OrphanDecision
    public typealias Reporter = @Sendable ([CellObservation]) async -> Void

    /// What one round did.
    public struct Round: Sendable {
        public var actions: [ReconcileAction]
        public var failures: [String: String]
        public var observations: [CellObservation]
    }

    let provisioner: any Provisioner
    let interval: TimeInterval
    let desired: DesiredSource
    let orphanPolicy: OrphanPolicy
    let report: Reporter
    let logger: Logger
    private var lastApplied: [String: CellSpec] = [:]
    private var kicked = false
    private var loop: Task<Void, Never>?

    public init(provisioner: any Provisioner, interval: TimeInterval = 2,
                desired: @escaping DesiredSource,
                orphans: @escaping OrphanPolicy = { _ in .keep },
                report: @escaping Reporter = { _ in },
                logger: Logger = Logger(label: "postcell.provisioning.reconciler")) {
        self.provisioner = provisioner; self.interval = interval; self.desired = desired
        self.orphanPolicy = orphans; self.report = report; self.logger = logger
    }

    /// Starts the loop (idempotent).
    public func start() {
        guard loop == nil else { return }
        loop = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                _ = await self.runOnce()
                await self.waitForKickOrInterval()
            }
        }
    }

    /// Stops the loop; cells are left as they are.
    public func stop() {
        loop?.cancel()
        loop = nil
    }

    /// Runs the next round now instead of at the end of the interval.
    public func kick() { kicked = true }

    /// One round: read, decide, act, report.
    @discardableResult
    public func runOnce() async -> Round {
        var round = Round(actions: [], failures: [:], observations: [])
        let specs: [CellSpec]
        do {
            specs = try await desired()
        } catch {
            // Without a desired state nothing is decided; still report.
            logger.error("cannot read the desired cells", metadata: ["error": "\(error)"])
            round.failures["*"] = "\(error)"
            round.observations = await provisioner.observe()
            await report(round.observations)
            return round
        }
        let observed = await provisioner.observe()
        var decisions: [String: OrphanDecision] = [:]
        for id in ReconcilePlan.orphans(desired: specs, observed: observed) { decisions[id] = await orphanPolicy(id) }
        round.actions = ReconcilePlan.decide(desired: specs, observed: observed, lastApplied: lastApplied, orphans: decisions)
        for action in round.actions {
            do {
                switch action {
                case .apply(let spec):
                    try await provisioner.apply(spec)
                    lastApplied[spec.id] = spec
                case .remove(let id, let deleteData):
                    try await provisioner.remove(id: id, deleteData: deleteData)
                    lastApplied[id] = nil
                }
            } catch {
                let id: String
                switch action {
                case .apply(let s): id = s.id
                case .remove(let i, _): id = i
                }
                round.failures[id] = "\(error)"
                logger.error("reconcile failed", metadata: ["cell": "\(id)", "error": "\(error)"])
            }
        }
        round.observations = await provisioner.observe()
        await report(round.observations)
        return round
    }

    /// Removes a cell explicitly (the only way besides the orphan policy).
    public func remove(id: String, deleteData: Bool) async throws {
        try await provisioner.remove(id: id, deleteData: deleteData)
        lastApplied[id] = nil
    }

    private func waitForKickOrInterval() async {
        let step: UInt64 = 50_000_000
        var waited: TimeInterval = 0
        while !kicked && waited < interval && !Task.isCancelled {
            try? await Task.sleep(nanoseconds: step)
            waited += 0.05
        }
        kicked = false
    }
}
