import MailCore
import MailQueue
import MailStore
import NIOCore
import NIOPosix
import Synchronization

/// The store thread and its work. Group commit: deliveries queue up while a
/// batch is being made durable and go together in the next one, so fsyncs
/// and index transactions are shared (docs/DATA-DIR.md); they run on the one
/// store thread, never on an event loop. Sessions' store work runs there
/// too, except quick commands while the thread is idle (`run(on:quick:_:)`).
final class DeliveryScheduler: Sendable {
    struct Job: @unchecked Sendable {
        var delivery: Delivery?
        /// Set when the message is also for remote recipients.
        var outbound: OutboundEnvelope?
        var message: IncomingMessage
        var promise: EventLoopPromise<Result<String, StoreFailure>>
    }
    struct State {
        var jobs: [Job] = []
        var running = false
    }

    let store: MailStore
    let spool: OutboundSpool
    let pool: NIOThreadPool
    let state = Mutex(State())
    /// Jobs handed to the store thread and not finished yet.
    let queued = Atomic<Int>(0)
    /// Held by whoever works on the store: the store thread for each job, the
    /// event loop for a quick command. One at a time, as with one thread.
    let storeLock = Mutex(())
    /// Told of each message spooled for remote recipients once it is durable
    /// and acknowledged (the outbound queue, set at start).
    let onSpooled = Mutex<(@Sendable (OutboundEnvelope) -> Void)?>(nil)
    /// Largest batch per commit; more wait for the next.
    static let maxBatch = 256

    init(store: MailStore, spool: OutboundSpool, pool: NIOThreadPool) {
        self.store = store
        self.spool = spool
        self.pool = pool
    }

    func submit(_ job: Job) {
        let start = state.withLock { s -> Bool in
            s.jobs.append(job)
            if s.running { return false }
            s.running = true
            return true
        }
        if start {
            queued.add(1, ordering: .relaxed)
            pool.submit { _ in
                self.storeLock.withLock { _ in self.drain() }
                self.queued.subtract(1, ordering: .releasing)
            }
        }
    }

    /// Quick commands run in a row on the event loop before one goes to the
    /// store thread anyway (the loop then serves other connections' I/O).
    static let quickStreak = 16
    let streak = Atomic<Int>(0)

    /// Runs a session's store work. A quick one (reads only, a few rows or
    /// messages: `IMAPSession.isQuick`) runs on the event loop itself when
    /// the store thread has nothing queued: an idle cell answers without two
    /// thread hand-offs, and a busy one does not stall its connections
    /// behind the store. Nothing that writes or fsyncs runs there.
    func run<T: Sendable>(on eventLoop: EventLoop, quick: Bool, _ body: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        guard quick, eventLoop.inEventLoop else { return onStoreThread(eventLoop, body) }
        // On a later turn of the loop, not inside this call: the response's
        // handling starts the next pipelined command, which must not nest.
        let promise = eventLoop.makePromise(of: T.self)
        eventLoop.execute {
            if self.queued.load(ordering: .acquiring) == 0,
               self.streak.add(1, ordering: .relaxed).newValue <= DeliveryScheduler.quickStreak,
               let result = self.storeLock.withLockIfAvailable({ _ in Result { try body() } }) {
                promise.completeWith(result)
            } else {
                promise.completeWith(self.onStoreThread(eventLoop, body))
            }
        }
        return promise.futureResult
    }

    func onStoreThread<T: Sendable>(_ eventLoop: EventLoop, _ body: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        queued.add(1, ordering: .relaxed)
        streak.store(0, ordering: .relaxed)
        let result = pool.runIfActive(eventLoop: eventLoop) {
            try self.storeLock.withLock { _ in try body() }
        }
        // Counted down however it ends (also when the pool has stopped).
        result.whenComplete { _ in self.queued.subtract(1, ordering: .releasing) }
        return result
    }

    func drain() {
        while true {
            let batch = state.withLock { s -> [Job] in
                let n = min(s.jobs.count, DeliveryScheduler.maxBatch)
                let b = Array(s.jobs.prefix(n))
                s.jobs.removeFirst(n)
                if b.isEmpty { s.running = false }
                return b
            }
            if batch.isEmpty { return }
            run(batch)
        }
    }

    func run(_ batch: [Job]) {
        var results = [Result<String, StoreFailure>?](repeating: nil, count: batch.count)
        var spooled: [Int: String] = [:]
        // Outbound copies first: if the local part then fails, they are removed.
        for (i, job) in batch.enumerated() {
            guard let env = job.outbound else { continue }
            if let f = job.message.failure { results[i] = .failure(f); continue }
            do {
                let bytes = try DurableFile.readAll(job.message.tmpPath)
                try spool.enqueue(env, message: bytes)
                spooled[i] = spool.directory + "/outbound/\(env.id).msg"
            } catch let e as FileSystemError {
                results[i] = .failure(.storage(e.description))
            } catch {
                results[i] = .failure(.storage("\(error)"))
            }
        }
        var local: [Int] = []
        for (i, job) in batch.enumerated() {
            if results[i] != nil { job.message.discard(); continue }
            if job.delivery != nil { local.append(i) } else {
                job.message.discard()
                results[i] = .success(job.message.id)
            }
        }
        let stored = store.commit(local.map { batch[$0].delivery! })
        for (k, i) in local.enumerated() {
            results[i] = stored[k]
            if case .failure = stored[k], let path = spooled[i] { DurableFile.remove(path) }
        }
        let spooledHandler = onSpooled.withLock { $0 }
        for (i, job) in batch.enumerated() {
            if case .success = results[i]!, let env = job.outbound, spooled[i] != nil { spooledHandler?(env) }
            job.promise.succeed(results[i]!)
        }
    }
}
