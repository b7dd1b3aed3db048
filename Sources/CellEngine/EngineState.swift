import DNS
import Logging
import MailCore
import MailQueue
import IMAP
import MailStore
import NIOCore
import NIOPosix
import NIOSSL
import SMTP
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a configuration becomes once loaded: the directory of users and
/// aliases, limits, the TLS context. Swapped whole on reload.
struct Snapshot: Sendable {
    var config: CellConfiguration
    var directory: CellDirectory
    var tls: NIOSSLContext?
    var trusted: [PeerMatcher]
    var authPolicy: AuthLimiter.Policy
    /// The stub resolver (docs/CELL-CONFIG.md `dns`): kept, cache and all,
    /// across reloads that leave the `dns` section as it was.
    var resolver: DNSResolver
    /// Inbound checks and DKIM signing keys (MailAuthSetup, DKIMSigning.swift).
    var mailAuth = MailAuthSetup()

    var limits: CellConfiguration.Limits { config.limits ?? .init() }
}

/// The engine's shared state and its implementation of the SMTP backend.
/// Reads the current snapshot on every call, so a reload applies to the
/// next command of every session.
final class EngineState: SMTPServerBackend, @unchecked Sendable {
    let store: MailStore
    let spool: OutboundSpool
    let scheduler: DeliveryScheduler
    let authPool: NIOThreadPool
    /// The cell's one event loop: DNS questions, outbound connections, timers.
    let eventLoop: EventLoop
    let limiter = AuthLimiter()
    let logger: Logger
    let snapshotBox: Mutex<Snapshot>
    let clock: @Sendable () -> Int64
    struct Connections {
        var total = 0
        var perIP: [String: Int] = [:]
    }
    let connections = Mutex(Connections())
    let sessionCounter = Atomic<Int>(0)
    /// IDLE watchers per user (lower-cased address).
    let watchers = Mutex<[String: [Int: @Sendable () -> Void]]>([:])
    let watcherCounter = Atomic<Int>(0)
    /// Users whose INBOX a POP3 session holds (RFC 1939 §8 maildrop lock).
    let pop3Locks = Mutex<Set<String>>([])
    /// IMAP search fields of messages read lately (shared by the cell's
    /// sessions; emptied when the cell is idle).
    let searchFields = Mutex(SearchFieldCache())

    /// The search fields (`IMAPMessageSource.searchFields`) of messages by
    /// storage key, in memory: a SEARCH FROM over a large mailbox reads them
    /// here instead of from the index. Bounded; emptied whole when full.
    struct SearchFieldCache {
        static let maxBytes = 16 << 20
        var entries: [IMAPStorageKey: [UInt8]] = [:]
        var bytes = 0

        mutating func insert(_ key: IMAPStorageKey, _ fields: [UInt8]) {
            if bytes + fields.count + 64 > SearchFieldCache.maxBytes { clear() }
            if let old = entries.updateValue(fields, forKey: key) { bytes -= old.count + 64 }
            bytes += fields.count + 64
        }

        mutating func clear() {
            entries = [:]
            bytes = 0
        }
    }

    /// Tells IDLE sessions of these users that their mailboxes changed.
    func notifyChanged(_ users: [String]) {
        let callbacks = watchers.withLock { w in users.flatMap { w[$0.lowercased()].map { Array($0.values) } ?? [] } }
        for c in callbacks { c() }
    }

    init(snapshot: Snapshot, store: MailStore, spool: OutboundSpool, storePool: NIOThreadPool, authPool: NIOThreadPool,
         eventLoop: EventLoop, logger: Logger, clock: @escaping @Sendable () -> Int64) {
        self.snapshotBox = Mutex(snapshot)
        self.store = store
        self.spool = spool
        self.scheduler = DeliveryScheduler(store: store, spool: spool, pool: storePool)
        self.authPool = authPool
        self.eventLoop = eventLoop
        self.logger = logger
        self.clock = clock
    }

    var snapshot: Snapshot { snapshotBox.withLock { $0 } }
    var directory: CellDirectory { snapshot.directory }
    var hostname: String { snapshot.config.hostname }
    var cellQuota: Int64 { snapshot.config.quota?.cellBytes ?? 0 }

    func nextSessionID() -> String {
        let n = sessionCounter.add(1, ordering: .relaxed).newValue
        return String(getpid(), radix: 36) + "." + String(n, radix: 36)
    }

    // MARK: Connection limits

    /// Takes a connection slot for a client; false when over a limit.
    func acquireConnection(host: String?) -> Bool {
        let limits = snapshot.limits
        let maxTotal = limits.maxConnections ?? 1000
        let maxPerIP = limits.maxConnectionsPerIP ?? 50
        return connections.withLock { c in
            if c.total >= maxTotal { return false }
            if let host, (c.perIP[host] ?? 0) >= maxPerIP { return false }
            c.total += 1
            if let host { c.perIP[host, default: 0] += 1 }
            return true
        }
    }

    func releaseConnection(host: String?) {
        connections.withLock { c in
            c.total -= 1
            if let host {
                let n = (c.perIP[host] ?? 1) - 1
                c.perIP[host] = n > 0 ? n : nil
            }
        }
    }

    // MARK: SMTPServerBackend

    func sessionConfiguration(listener: String, isTLS: Bool) -> SMTPSessionConfiguration {
        let s = snapshot
        let role = s.config.listeners.first { $0.name == listener }?.role.smtpRole ?? .mx
        let l = s.limits
        return SMTPSessionConfiguration(
            hostname: s.config.hostname, role: role, tlsAvailable: s.tls != nil,
            maxMessageBytes: maxMessageBytes, maxRecipients: l.maxRecipients ?? 100,
            maxCommands: l.maxCommandsPerSession ?? 10_000, maxErrors: l.maxErrorsPerSession ?? 20,
            maxLineLength: l.maxCommandLineBytes ?? SMTPCommandParser.defaultMaxLineLength)
    }

    /// The cell's message size limit (SIZE, APPEND): 35 MiB unless configured.
    var maxMessageBytes: Int { snapshot.limits.maxMessageBytes ?? 36_700_160 }

    func idleTimeoutSeconds() -> Int64 { Int64(snapshot.limits.idleTimeoutSeconds ?? 300) }

    func authenticate(user: String, password: String, context: SMTPSessionContext, eventLoop: EventLoop) -> EventLoopFuture<AuthVerdict> {
        verifyPassword(user: user, password: password, ip: context.client.host, session: context.id, eventLoop: eventLoop)
    }

    /// Password check shared by SMTP AUTH, IMAP LOGIN/AUTHENTICATE and POP3
    /// PASS/AUTH, with the failed-attempt limits per IP and per account and
    /// the cell's suspension.
    func verifyPassword(user: String, password: String, ip: String?, session: String, eventLoop: EventLoop) -> EventLoopFuture<AuthVerdict> {
        let s = snapshot
        let now = clock()
        let account = user.lowercased()
        if limiter.isLocked(ip: ip, account: account, now: now) {
            logger.notice("auth refused: locked out", metadata: ["session": "\(session)"])
            return eventLoop.makeSucceededFuture(.temporaryFailure)
        }
        let entry = s.directory.users[account]
        // An unknown account costs the same as a known one.
        let hash = entry?.password ?? EngineState.decoyHash
        let policy = s.authPolicy
        return authPool.runIfActive(eventLoop: eventLoop) { () -> Bool in
            hash.verify(password) && entry != nil
        }.map { ok in
            // Suspension (docs/ADMIN-API.md) is told only to whoever knows
            // the password, as RFC 5248's X.7.13 describes; the one place
            // every login of IMAP, POP3 and SMTP AUTH passes.
            if ok, s.config.suspended == true {
                self.logger.notice("auth refused: cell suspended", metadata: ["session": "\(session)", "user": "\(account)"])
                return .suspended
            }
            if ok {
                self.limiter.recordSuccess(ip: ip, account: account)
                self.logger.info("auth ok", metadata: ["session": "\(session)", "user": "\(account)"])
                return .success(user: account)
            }
            self.limiter.recordFailure(ip: ip, account: account, now: self.clock(), policy: policy)
            self.logger.notice("auth failed", metadata: ["session": "\(session)"])
            return .invalid
        }
    }

    static let decoyHash: PasswordHash = (try? PasswordHash.make(password: "decoy")) ?? PasswordHash(log2N: 14, r: 8, p: 1, salt: [UInt8](repeating: 1, count: 16), hash: [UInt8](repeating: 0, count: 32))

    func checkSender(_ path: ReversePath, parameters: MailParameters, context: SMTPSessionContext) -> SMTPReply? {
        guard context.role == .submission else { return nil }
        guard case .mailbox(let address) = path else { return nil }
        guard let user = context.authenticatedUser, let entry = snapshot.directory.users[user],
              entry.owned.contains(address.lookupKey) else { return .senderNotOwned }
        return nil
    }

    func checkRecipient(_ address: MailAddress, transaction: SMTPTransaction, context: SMTPSessionContext) -> SMTPReply? {
        let s = snapshot
        let target = address.domain.isEmpty ? MailAddress(localPart: address.localPart, domain: s.directory.firstDomain) : address
        switch s.directory.resolve(target) {
        case .notOurDomain:
            if context.role == .submission && !target.isAddressLiteral { return nil }
            return .relayDenied
        case .unknown:
            return .userUnknown
        case .deliver(let local, _):
            return quotaRefusal(local: local, size: Int64(transaction.parameters.size ?? 0), snapshot: s)
        }
    }

    /// RFC 3463 4.2.2 while the quota may clear; 5.2.2 when the message could never fit.
    func quotaRefusal(local: [String], size: Int64, snapshot s: Snapshot) -> SMTPReply? {
        for u in local {
            guard let entry = s.directory.users[u], let id = store.userID(u) else { continue }
            let limit = entry.quotaBytes
            guard limit > 0 else { continue }
            if size > limit { return .mailboxFullPermanent }
            let used = store.usage(user: id)
            if used >= limit || used + size > limit { return .mailboxFullTemporary }
        }
        let cell = s.config.quota?.cellBytes ?? 0
        if cell > 0 {
            if size > cell { return .mailboxFullPermanent }
            let used = store.totalUsage
            if used >= cell || used + size * Int64(max(1, local.count)) > cell { return .mailboxFullTemporary }
        }
        return nil
    }

    func openMessage(_ transaction: SMTPTransaction, context: SMTPSessionContext, eventLoop: EventLoop) -> SMTPMessageSink {
        MessageWriter(engine: self, context: context, transaction: transaction, eventLoop: eventLoop, now: clock())
    }
}
