import MailCore
import MailQueue
import MailStore
import NIOCore
import NIOPosix
import Synchronization

/// Group commit: deliveries queue up while a batch is being made durable and
/// go together in the next one, so fsyncs and index transactions are shared
/// (docs/DATA-DIR.md). Runs on one blocking-pool thread; never on an event loop.
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
        if start { pool.submit { _ in self.drain() } }
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
        for (i, job) in batch.enumerated() { job.promise.succeed(results[i]!) }
    }
}
