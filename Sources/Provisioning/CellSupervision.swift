import Foundation

/// How long to wait before starting a cell again after it exited: `initial`
/// doubling per consecutive failure up to `maximum`; the count starts over
/// once a run has lasted `resetAfter`.
public struct RestartBackoff: Sendable, Hashable {
    public var initial: TimeInterval
    public var maximum: TimeInterval
    public var resetAfter: TimeInterval

    public init(initial: TimeInterval = 1, maximum: TimeInterval = 60, resetAfter: TimeInterval = 60) {
        self.initial = initial; self.maximum = maximum; self.resetAfter = resetAfter
    }

    /// The delay after the `failures`-th failure in a row (1 → `initial`).
    public func delay(afterFailures failures: Int) -> TimeInterval {
        guard failures > 0 else { return 0 }
        var d = initial
        for _ in 1..<min(failures, 64) {
            d *= 2
            if d >= maximum { return maximum }
        }
        return min(d, maximum)
    }
}

/// One cell's supervision as a pure state machine: events in (`tick`,
/// `started`, `exited`, `health`...), an `Action` out for the driver
/// (`LocalProvisioner`) to carry out. No clock reads, no I/O.
struct CellSupervision: Sendable {
    enum Action: Equatable, Sendable {
        case none
        /// Start the cell now.
        case start
        /// Ask the running cell to stop (SIGTERM to its processes).
        case terminate(pid: Int32)
        /// The grace period is over: kill the whole tree.
        case kill(pid: Int32)
    }

    var id: String
    var desired: CellDesiredState
    var backoff: RestartBackoff
    /// How long a stopping cell has between SIGTERM and SIGKILL.
    var stopGrace: TimeInterval

    private(set) var phase: CellPhase = .stopped
    private(set) var pid: Int32?
    private(set) var startedAt: Date?
    private(set) var adopted = false
    private(set) var failures = 0
    private(set) var restarts = 0
    private(set) var lastExit: String?
    private(set) var healthy = false
    private(set) var since: Date
    private(set) var nextStart: Date?
    private(set) var stopRequested: Date?
    var detail: String?

    init(id: String, desired: CellDesiredState, backoff: RestartBackoff, stopGrace: TimeInterval = 10, now: Date) {
        self.id = id; self.desired = desired; self.backoff = backoff; self.stopGrace = stopGrace; self.since = now
    }

    var isStopping: Bool { stopRequested != nil }

    /// The control plane changed what it wants.
    mutating func setDesired(_ d: CellDesiredState, now: Date) {
        guard d != desired else { return }
        desired = d
        if d == .running {
            // An explicit start forgets earlier failures.
            failures = 0
            nextStart = nil
            if pid == nil, phase != .stopped { move(.stopped, now) }
        }
    }

    /// What to do now.
    mutating func tick(now: Date) -> Action {
        if let pid {
            if let asked = stopRequested {
                return now.timeIntervalSince(asked) >= stopGrace ? .kill(pid: pid) : .none
            }
            if desired == .stopped {
                stopRequested = now
                return .terminate(pid: pid)
            }
            if let s = startedAt, failures > 0, now.timeIntervalSince(s) >= backoff.resetAfter {
                failures = 0
            }
            return .none
        }
        guard desired == .running else {
            if phase != .stopped { move(.stopped, now); nextStart = nil }
            return .none
        }
        if let next = nextStart, now < next { return .none }
        return .start
    }

    /// The driver started the cell (or found it running: `adopted`).
    mutating func started(pid: Int32, at start: Date, adopted: Bool = false, now: Date) {
        self.pid = pid
        self.startedAt = start
        self.adopted = adopted
        self.healthy = false
        self.nextStart = nil
        self.stopRequested = nil
        move(.starting, now)
    }

    /// The driver could not start the cell at all.
    mutating func startFailed(_ reason: String, now: Date) {
        failures += 1
        detail = reason
        nextStart = now.addingTimeInterval(backoff.delay(afterFailures: failures))
        move(.failed, now)
    }

    /// The cell's process ended (`how`: "exit 1", "signal 9", "oom ...").
    mutating func exited(_ how: String, now: Date) {
        let ranFor = startedAt.map { now.timeIntervalSince($0) } ?? 0
        pid = nil
        startedAt = nil
        adopted = false
        healthy = false
        lastExit = how
        if stopRequested != nil || desired == .stopped {
            stopRequested = nil
            nextStart = nil
            move(.stopped, now)
            return
        }
        restarts += 1
        if ranFor >= backoff.resetAfter { failures = 0 }
        failures += 1
        nextStart = now.addingTimeInterval(backoff.delay(afterFailures: failures))
        move(.backoff, now)
    }

    /// A health check's outcome for the run of `pid`. A cell is `running`
    /// once it has answered; a later miss only clears `healthy`.
    mutating func health(_ ok: Bool, pid checked: Int32, now: Date) {
        guard checked == pid, !isStopping else { return }
        healthy = ok
        if ok, phase == .starting { move(.running, now) }
    }

    func observation(extraDetail: String? = nil) -> CellObservation {
        let details = [detail, extraDetail].compactMap { $0 }.filter { !$0.isEmpty }
        return CellObservation(id: id, phase: phase, pid: pid, restarts: restarts, lastExit: lastExit, healthy: healthy,
                               since: since, nextStart: pid == nil ? nextStart : nil,
                               detail: details.isEmpty ? nil : details.joined(separator: "; "))
    }

    private mutating func move(_ p: CellPhase, _ now: Date) {
        if p != phase { phase = p; since = now }
    }
}
