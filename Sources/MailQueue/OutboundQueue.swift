import DNS
import Foundation
import Logging
import MailCore
import MIME
import NIOCore
import NIOPosix
import NIOSSL
import SMTP

/// The outbound queue: takes spooled messages to their destinations.
///
/// Each message's recipients are grouped by destination (their domain, or
/// the relay); each destination gets up to `maxConnectionsPerDestination`
/// connections, and a connection carries one transaction after another
/// while the destination has work. Results are written per message
/// (`QueueEntryState`) after each transaction; what stays pending waits for
/// the retry policy; what failed, or expired, is reported to the sender in
/// a DSN. Mutable state lives on the cell's event loop; file writes run on
/// the blocking pool.
public final class OutboundQueue: @unchecked Sendable {
    /// Sends a DSN (from the null sender) to `recipient`: the engine delivers
    /// it locally or spools it like any other message.
    public typealias DSNSink = @Sendable (_ recipient: String, _ message: [UInt8]) -> EventLoopFuture<Void>

    struct Entry {
        var envelope: OutboundEnvelope
        var state: QueueEntryState
        /// Jobs of the current attempt not finished yet (0: idle).
        var outstanding = 0
    }

    struct Job {
        var id: String
        var recipients: [String]
    }

    final class Destination {
        let key: String
        var jobs: [Job] = []
        var connections = 0
        init(key: String) { self.key = key }
    }

    let loop: EventLoop
    let spool: OutboundSpool
    let files: QueueStateFiles
    let pool: NIOThreadPool
    let logger: Logger
    let clock: @Sendable () -> Int64
    let dsnSink: DSNSink
    var configuration: OutboundConfiguration
    var resolver: DNSResolver
    var entries: [String: Entry] = [:]
    var destinations: [String: Destination] = [:]
    var active = 0
    var timer: Scheduled<Void>?
    var timerAt: Int64 = .max
    var started = false
    var rng = SystemRandomNumberGenerator()
    lazy var opportunisticTLS: NIOSSLContext? = {
        var c = TLSConfiguration.makeClientConfiguration()
        // Opportunistic TLS (RFC 7435): encrypt, but any certificate will do.
        c.certificateVerification = .none
        return try? NIOSSLContext(configuration: c)
    }()
    let mtaSTS = MTASTSCache()
    var verifiedTLS: NIOSSLContext?
    var verifiedTLSRoots: String??

    public init(loop: EventLoop, spool: OutboundSpool, pool: NIOThreadPool, configuration: OutboundConfiguration,
                resolver: DNSResolver, logger: Logger, clock: @escaping @Sendable () -> Int64, dsnSink: @escaping DSNSink) throws {
        self.loop = loop
        self.spool = spool
        self.files = try QueueStateFiles(spool: spool)
        self.pool = pool
        self.configuration = configuration
        self.resolver = resolver
        self.logger = logger
        self.clock = clock
        self.dsnSink = dsnSink
    }

    // MARK: Life cycle

    /// Reads the spool and the state files (on the pool), then starts sending.
    public func start() -> EventLoopFuture<Void> {
        let spool = self.spool, files = self.files, now = clock()
        return pool.runIfActive(eventLoop: loop) { () -> [Entry] in
            let queued = spool.list()
            let ids = Set(queued.map(\.envelope.id))
            // A state file without its message: the message was done and removed.
            for id in files.all() where !ids.contains(id) { files.remove(id) }
            return queued.map { q in
                var state = files.read(q.envelope.id) ?? QueueEntryState(id: q.envelope.id, recipients: q.envelope.recipients, nextAttempt: now)
                if state.recipients.map(\.address).sorted() != q.envelope.recipients.sorted() {
                    state = QueueEntryState(id: q.envelope.id, recipients: q.envelope.recipients, nextAttempt: now)
                }
                return Entry(envelope: q.envelope, state: state)
            }
        }.map { loaded in
            for e in loaded where self.entries[e.envelope.id] == nil { self.entries[e.envelope.id] = e }
            self.started = true
            if !loaded.isEmpty { self.logger.info("outbound queue loaded", metadata: ["messages": "\(loaded.count)"]) }
            self.pump()
        }
    }

    /// A message was spooled (called from any thread once it is durable).
    public func enqueued(_ envelope: OutboundEnvelope) {
        loop.execute {
            guard self.entries[envelope.id] == nil else { return }
            self.entries[envelope.id] = Entry(envelope: envelope,
                                              state: QueueEntryState(id: envelope.id, recipients: envelope.recipients, nextAttempt: self.clock()))
            if self.started { self.pump() }
        }
    }

    /// New settings and resolver (a reload); connections under way keep theirs.
    public func update(_ configuration: OutboundConfiguration, resolver: DNSResolver) {
        loop.execute {
            if configuration.trustRoots != self.configuration.trustRoots { self.verifiedTLSRoots = nil }
            self.configuration = configuration
            self.resolver = resolver
            if self.started { self.pump() }
        }
    }

    /// Every deferred message due now (`postcell-engine queue flush`, SIGUSR1).
    public func flush() {
        loop.execute {
            for id in self.entries.keys where self.entries[id]!.outstanding == 0 { self.entries[id]!.state.nextAttempt = 0 }
            self.pump()
        }
    }

    /// Messages waiting, for status and tests.
    public func count() -> EventLoopFuture<Int> { loop.submit { self.entries.count } }

    // MARK: Scheduling

    /// Starts what is due and sets the timer for what is not.
    func pump() {
        guard !configuration.hold else { return }
        let now = clock()
        var next = Int64.max
        var touched: [Destination] = []
        for (id, entry) in entries where entry.outstanding == 0 {
            guard entry.state.nextAttempt <= now else { next = min(next, entry.state.nextAttempt); continue }
            let pending = entry.state.pending
            if pending.isEmpty { continue }
            var byDestination: [String: [String]] = [:]
            var order: [String] = []
            for r in pending {
                let key = destinationKey(r)
                if byDestination[key] == nil { order.append(key) }
                byDestination[key, default: []].append(r)
            }
            var jobs = 0
            for key in order {
                let d = destination(key)
                var rest = byDestination[key]!
                while !rest.isEmpty {
                    let n = min(rest.count, max(1, configuration.maxRecipientsPerTransaction))
                    d.jobs.append(Job(id: id, recipients: Array(rest.prefix(n))))
                    rest.removeFirst(n)
                    jobs += 1
                }
                if !touched.contains(where: { $0 === d }) { touched.append(d) }
            }
            entries[id]!.outstanding = jobs
        }
        for d in touched { startConnections(d) }
        schedule(next)
    }

    func schedule(_ at: Int64) {
        guard at != .max else { return }
        if timer != nil, timerAt <= at { return }
        timer?.cancel()
        timerAt = at
        let delay = max(0, at - clock())
        timer = loop.scheduleTask(in: .seconds(delay)) { [weak self] in
            guard let self else { return }
            self.timer = nil
            self.timerAt = .max
            self.pump()
        }
    }

    func destinationKey(_ recipient: String) -> String {
        if configuration.relay != nil { return "[relay]" }
        guard let at = recipient.lastIndex(of: "@") else { return "" }
        return recipient[recipient.index(after: at)...].lowercased()
    }

    func destination(_ key: String) -> Destination {
        if let d = destinations[key] { return d }
        let d = Destination(key: key)
        destinations[key] = d
        return d
    }

    func startConnections(_ d: Destination) {
        while !d.jobs.isEmpty, d.connections < max(1, configuration.maxConnectionsPerDestination),
              active < max(1, configuration.maxConnections), d.connections < d.jobs.count {
            d.connections += 1
            active += 1
            let attempt = OutboundConnection(queue: self, destination: d)
            attempt.start()
        }
    }

    /// A connection to `d` is over.
    func connectionEnded(_ d: Destination) {
        d.connections -= 1
        active -= 1
        if d.jobs.isEmpty, d.connections == 0 { destinations[d.key] = nil }
        // Destinations waiting for a free slot.
        for other in destinations.values where !other.jobs.isEmpty { startConnections(other) }
    }

    // MARK: Jobs

    /// The next job for a connection to `d`, with the message bytes; a job
    /// whose message cannot be read is deferred and the next one tried.
    func takeJob(_ d: Destination) -> (Job, OutboundEnvelope, [UInt8])? {
        while !d.jobs.isEmpty {
            let job = d.jobs.removeFirst()
            guard let entry = entries[job.id] else { continue }
            let path = spool.directory + "/outbound/\(job.id).msg"
            if let bytes = try? DurableFile.readAll(path), let (_, message) = OutboundSpool.decode(bytes) {
                return (job, entry.envelope, message)
            }
            logger.error("cannot read spooled message", metadata: ["queue": "\(job.id)"])
            record(job, job.recipients.map { ($0, .deferred(SMTPReply(451, "4.3.0", "cannot read the queued message"))) }, remote: nil)
        }
        return nil
    }

    /// Gives every job left at `d` the same outcome (the destination cannot be reached).
    func failAll(_ d: Destination, _ reply: SMTPReply, remote: String?) {
        let jobs = d.jobs
        d.jobs = []
        for job in jobs {
            let outcome: SMTPClientSession.Outcome = reply.code >= 500 ? .failed(reply) : .deferred(reply)
            record(job, job.recipients.map { ($0, outcome) }, remote: remote)
        }
    }

    /// The outcome of one job; when the message's attempt is complete, its
    /// next step (retry, report, removal).
    @discardableResult
    func record(_ job: Job, _ outcomes: [(String, SMTPClientSession.Outcome)], remote: String?) -> EventLoopFuture<Void> {
        guard var entry = entries[job.id] else { return loop.makeSucceededVoidFuture() }
        for (r, o) in outcomes {
            let reply = o.reply
            switch o {
            case .delivered: entry.state.update(r, .delivered, reply: reply.oneLine, code: reply.status, remote: remote)
            case .failed: entry.state.update(r, .failed, reply: reply.oneLine, code: reply.status, remote: remote)
            case .deferred:
                if let i = entry.state.recipients.firstIndex(where: { $0.address == r && $0.status == .pending }) {
                    entry.state.recipients[i].lastReply = reply.oneLine
                    entry.state.recipients[i].statusCode = reply.status
                    entry.state.recipients[i].remote = remote
                }
            }
            let level: Logger.Level = { if case .delivered = o { return .info } else { return .notice } }()
            logger.log(level: level, "outbound", metadata: ["queue": "\(job.id)", "to": "\(r)", "relay": "\(remote ?? "none")",
                                                             "result": "\(o.label)", "reply": "\(reply.oneLine)"])
        }
        entry.outstanding -= 1
        entries[job.id] = entry
        if entry.outstanding > 0 {
            // Keep what was delivered even if the engine stops before the rest is done.
            if outcomes.contains(where: { if case .deferred = $0.1 { return false } else { return true } }) { return persist(job.id) }
            return loop.makeSucceededVoidFuture()
        }
        return attemptDone(job.id)
    }

    /// The message's attempt is over: report, then remove it or write when to try again.
    func attemptDone(_ id: String) -> EventLoopFuture<Void> {
        guard var entry = entries[id] else { return loop.makeSucceededVoidFuture() }
        let now = clock()
        entry.state.attempts += 1
        entry.state.lastAttempt = now
        let policy = configuration.retry
        let age = now - entry.envelope.received
        var report: [DSN.Recipient] = []
        if !entry.state.pending.isEmpty {
            if age >= policy.lifetime {
                // RFC 3463 §3.5: 4.4.7, delivery time expired.
                for i in entry.state.recipients.indices where entry.state.recipients[i].status == .pending {
                    let last = entry.state.recipients[i].lastReply ?? "no attempt succeeded"
                    entry.state.recipients[i].status = .failed
                    entry.state.recipients[i].lastReply = "delivery time expired; last: \(last)"
                    entry.state.recipients[i].statusCode = "4.4.7"
                }
            } else {
                entry.state.nextAttempt = now + policy.delay(after: entry.state.attempts, using: &rng)
                if policy.warnAfter > 0, age >= policy.warnAfter, !entry.state.delayWarned, !entry.envelope.from.isEmpty {
                    entry.state.delayWarned = true
                    report = entry.state.recipients.filter { $0.status == .pending }.map {
                        DSN.Recipient(address: $0.address, action: .delayed, status: $0.statusCode ?? "4.0.0", diagnostic: $0.lastReply, remote: $0.remote)
                    }
                }
            }
        }
        if entry.state.isDone, !entry.state.reported, !entry.envelope.from.isEmpty {
            report = entry.state.recipients.filter { $0.status == .failed }.map {
                DSN.Recipient(address: $0.address, action: .failed, status: $0.statusCode ?? "5.0.0", diagnostic: $0.lastReply, remote: $0.remote)
            }
        }
        entries[id] = entry
        return sendReport(id, report).flatMap { _ -> EventLoopFuture<Void> in
            if self.entries[id]?.state.isDone == true {
                self.entries[id]!.state.reported = true
                return self.remove(id)
            }
            self.schedule(self.entries[id]?.state.nextAttempt ?? .max)
            return self.persist(id)
        }
    }

    /// Queues a DSN about message `id` to its sender (none for the null sender).
    func sendReport(_ id: String, _ recipients: [DSN.Recipient]) -> EventLoopFuture<Void> {
        guard !recipients.isEmpty, let entry = entries[id] else { return loop.makeSucceededVoidFuture() }
        let path = spool.directory + "/outbound/\(id).msg"
        let header = (try? DurableFile.readAll(path)).flatMap(OutboundSpool.decode).map { DSN.headerSection(of: $0.1) } ?? []
        let now = clock()
        let dsn = DSN(reportingMTA: configuration.hostname, queueID: id, originalSender: entry.envelope.from,
                      arrival: entry.envelope.received, lastAttempt: entry.state.lastAttempt ?? now,
                      retryUntil: entry.envelope.received + configuration.retry.lifetime, recipients: recipients, originalHeader: header)
        let bytes = dsn.render(date: now, boundary: "\(id).\(now)/\(configuration.hostname)")
        return dsnSink(entry.envelope.from, bytes).flatMapErrorThrowing { error in
            self.logger.error("cannot queue DSN", metadata: ["queue": "\(id)", "error": "\(error)"])
        }
    }

    /// Writes the message's state; the future completes once it is durable.
    /// Writes run in order on the one blocking thread, so the last one wins.
    @discardableResult
    func persist(_ id: String) -> EventLoopFuture<Void> {
        guard let entry = entries[id] else { return loop.makeSucceededVoidFuture() }
        let state = entry.state, files = self.files, tmp = spool.directory + "/tmp"
        let done = pool.runIfActive(eventLoop: loop) { try files.write(state, tmpDirectory: tmp) }
        done.whenFailure { e in self.logger.error("cannot write queue state", metadata: ["queue": "\(id)", "error": "\(e)"]) }
        return done
    }

    /// The message is done: its file goes first (durably), then its state.
    @discardableResult
    func remove(_ id: String) -> EventLoopFuture<Void> {
        entries[id] = nil
        let spool = self.spool, files = self.files
        let done = pool.runIfActive(eventLoop: loop) {
            DurableFile.remove(spool.directory + "/outbound/\(id).msg")
            try DurableFile.syncDirectory(spool.directory + "/outbound")
            files.remove(id)
        }
        done.whenFailure { e in self.logger.error("cannot remove queued message", metadata: ["queue": "\(id)", "error": "\(e)"]) }
        return done
    }

    // MARK: TLS

    /// Records one TLS outcome for TLS-RPT (RFC 8460 §4): a JSON line per
    /// connection in `queue/tlsrpt/YYYY-MM-DD.jsonl`, summed into reports
    /// when they are sent.
    func tlsReport(domain: String, policyType: String?, policy: MTASTSPolicy?, mx: String, result: String) {
        let now = clock()
        let day = String(RFC3339Day.format(now))
        var fields: [String: String] = ["time": "\(now)", "domain": domain, "mx": mx, "result": result,
                                        "policy": policyType ?? (policy == nil ? "no-policy-found" : "sts")]
        if let p = policy { fields["mode"] = p.mode.rawValue; fields["mxPatterns"] = p.mx.joined(separator: " ") }
        guard let json = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
        let dir = spool.directory + "/tlsrpt"
        pool.runIfActive(eventLoop: loop) {
            try DurableFile.makeDirectory(dir)
            let fd = open(dir + "/\(day).jsonl", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var line = Array(json)
            line.append(10)
            _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }.whenFailure { _ in }
    }

    var daneTLS: NIOSSLContext?
    /// A context whose verification is replaced by a DANE check per connection.
    func daneContext() -> NIOSSLContext? {
        if let c = daneTLS { return c }
        var c = TLSConfiguration.makeClientConfiguration()
        c.certificateVerification = .fullVerification
        daneTLS = try? NIOSSLContext(configuration: c)
        return daneTLS
    }

    /// A context that verifies certificates against the configured roots (or the system's).
    func verifyingContext() -> NIOSSLContext? {
        if let roots = verifiedTLSRoots, roots == configuration.trustRoots, let c = verifiedTLS { return c }
        var c = TLSConfiguration.makeClientConfiguration()
        c.certificateVerification = .fullVerification
        if let path = configuration.trustRoots { c.trustRoots = .file(path) }
        verifiedTLS = try? NIOSSLContext(configuration: c)
        verifiedTLSRoots = .some(configuration.trustRoots)
        return verifiedTLS
    }
}

extension SMTPClientSession.Outcome {
    var label: String {
        switch self {
        case .delivered: return "delivered"
        case .deferred: return "deferred"
        case .failed: return "failed"
        }
    }
}

/// `YYYY-MM-DD` of a Unix time, in UTC.
enum RFC3339Day {
    static func format(_ t: Int64) -> String {
        let days = t >= 0 ? t / 86_400 : (t - 86_399) / 86_400
        let (y, m, d) = RFC5322Date.civil(fromDays: days)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))"
    }
}
