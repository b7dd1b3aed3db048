import DNS
import Dispatch
import Foundation
import Logging
import MailCore
import MailQueue
import MailStore
import NIOCore
import NIOPosix
import NIOSSL
import IMAP
import POP3
import SMTP
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `postcell-engine serve`: one cell. Wiring only: loads the configuration,
/// opens the store and spool, binds listeners, reloads on SIGHUP, and shuts
/// down gracefully on SIGTERM/SIGINT.
///
/// Threads: one event loop, one store thread (group commit), one thread for
/// password hashing (ISOLATION.md: a cell keeps its thread count small).
public final class Engine: @unchecked Sendable {
    let configPath: String
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let storePool: NIOThreadPool
    let authPool: NIOThreadPool
    var state: EngineState!
    var outbound: OutboundQueue?
    var dataDirectory = ""
    struct BoundListener {
        var definition: CellConfiguration.Listener
        var channel: Channel
        var boundAddress: String
        /// What new connections are served with: an inherited (`fd`)
        /// socket cannot be bound again, so a reload that changes its other
        /// settings updates this instead of closing the socket.
        var current: ListenerDefinition
    }
    var listeners: [String: BoundListener] = [:]
    /// Configuration changes one at a time: SIGHUP reloads, admin API
    /// changes and exports (docs/ADMIN-API.md), never on the event loop.
    let controlQueue = DispatchQueue(label: "postcell.control")
    var admin: AdminServer?
    /// The `fd` listeners' sockets, checked at start.
    var inheritedFDs: Set<Int32> = []
    let started = Int64(time(nil))
    let sessions = Mutex<[ObjectIdentifier: Channel]>([:])
    var shuttingDown = false
    var signalSources: [DispatchSourceSignal] = []
    let stopped = DispatchSemaphore(value: 0)

    public init(configPath: String, logger: Logger) {
        self.configPath = configPath
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        storePool = NIOThreadPool(numberOfThreads: 1)
        authPool = NIOThreadPool(numberOfThreads: 1)
    }

    static func dataDirectory(for config: CellConfiguration, configPath: String) -> String {
        let base = DurableFile.parentDirectory(of: configPath.hasPrefix("/") ? configPath : FileManager.default.currentDirectoryPath + "/" + configPath)
        guard let d = config.dataDirectory else { return base }
        return d.hasPrefix("/") ? d : base + "/" + d
    }

    func makeSnapshot(_ config: CellConfiguration, previous: Snapshot? = nil) throws -> Snapshot {
        let a = config.auth
        let resolver: DNSResolver
        if let p = previous, p.config.dns == config.dns { resolver = p.resolver } else {
            resolver = DNSResolver(configuration: config.resolverConfiguration())
        }
        var snapshot = Snapshot(
            config: config, directory: try CellDirectory(config),
            tls: try TLSSetup.context(config: config, dataDirectory: dataDirectory),
            trusted: (config.trustedProxies ?? []).compactMap(PeerMatcher.init),
            authPolicy: .init(maxPerIP: a?.maxFailuresPerIP ?? 10, maxPerAccount: a?.maxFailuresPerAccount ?? 20,
                              window: Int64(a?.windowSeconds ?? 900), lockout: Int64(a?.lockoutSeconds ?? 900)),
            resolver: resolver)
        snapshot.mailAuth = try MailAuthSetup(config, dataDirectory: dataDirectory, previous: previous?.mailAuth)
        return snapshot
    }

    /// Starts everything; returns once listeners are bound.
    public func start() throws {
        let config = try CellConfiguration.load(path: configPath)
        // Inherited sockets are checked before the engine opens any socket of
        // its own, so a listening socket found at fd N came from the host.
        for l in config.listeners {
            if let fd = l.fd { try Engine.checkInheritedSocket(fd, listener: l.name) }
        }
        inheritedFDs = Set(config.listeners.compactMap(\.fd))
        // Handlers before listeners: a signal that comes as soon as
        // listeners.json exists must find them in place.
        installSignalHandlers()
        dataDirectory = Engine.dataDirectory(for: config, configPath: configPath)
        for sub in ["", "/run", "/sockets"] { try DurableFile.makeDirectory(dataDirectory + sub) }
        // An export a crash interrupted (docs/ADMIN-API.md) was never reported.
        for name in DurableFile.list(dataDirectory + "/exports/tmp") { unlink(dataDirectory + "/exports/tmp/" + name) }
        storePool.start()
        authPool.start()
        let store = try MailStore(directory: dataDirectory + "/store")
        let recovered = try store.recover()
        if recovered.removedTmp + recovered.orphans > 0 {
            logger.notice("recovered store", metadata: ["removedTmp": "\(recovered.removedTmp)", "orphans": "\(recovered.orphans)"])
        }
        let spool = try OutboundSpool(directory: dataDirectory + "/queue")
        spool.recover()
        let snapshot = try makeSnapshot(config)
        try store.ensureUsers(snapshot.directory.users.keys.sorted(), now: Int64(time(nil)))
        state = EngineState(snapshot: snapshot, store: store, spool: spool, storePool: storePool, authPool: authPool,
                            eventLoop: group.next(), logger: logger, clock: { Int64(time(nil)) })
        try startOutbound(config, spool: spool)
        // The admin socket before listeners.json, which tells that the cell is ready.
        try bindAdmin(config.admin)
        try bindListeners(config.listeners)
        try DurableFile.write(Array("\(getpid())\n".utf8), to: dataDirectory + "/run/engine.pid", tmpDirectory: dataDirectory + "/run")
        scheduleMemoryTrim()
        logger.info("ready", metadata: ["listeners": "\(listeners.mapValues(\.boundAddress))"])
    }

    /// Blocks until the engine has shut down.
    public func wait() {
        stopped.wait()
    }

    // MARK: Listeners

    func bindListeners(_ wanted: [CellConfiguration.Listener]) throws {
        let wantedByName = Dictionary(uniqueKeysWithValues: wanted.map { ($0.name, $0) })
        for (name, bound) in listeners where wantedByName[name] != bound.definition {
            listeners[name] = nil
            // An inherited socket still wanted (maybe under another name)
            // stays open and takes the new settings.
            if let fd = bound.definition.fd, let w = wanted.first(where: { $0.fd == fd }), listeners[w.name] == nil {
                bound.current.set(w)
                listeners[w.name] = BoundListener(definition: w, channel: bound.channel, boundAddress: bound.boundAddress, current: bound.current)
                continue
            }
            bound.channel.close(promise: nil)
            // Its number may soon name another file of the engine's.
            if let fd = bound.definition.fd { inheritedFDs.remove(fd) }
            logger.info("listener closed", metadata: ["listener": "\(name)"])
        }
        for l in wanted where listeners[l.name] == nil {
            let current = ListenerDefinition(l)
            let channel = try bind(l, current: current)
            let bound: String
            if let path = l.path {
                bound = path.hasPrefix("/") ? path : dataDirectory + "/" + path
            } else if let a = channel.localAddress, let ip = a.ipAddress, let port = a.port {
                bound = (ip.contains(":") ? "[\(ip)]" : ip) + ":\(port)"
            } else if let p = channel.localAddress?.pathname {
                bound = p
            } else {
                bound = l.address ?? "fd \(l.fd ?? -1)"
            }
            listeners[l.name] = BoundListener(definition: l, channel: channel, boundAddress: bound, current: current)
        }
        let map = listeners.mapValues(\.boundAddress)
        let json = try JSONSerialization.data(withJSONObject: map, options: [.sortedKeys])
        try DurableFile.write(Array(json), to: dataDirectory + "/run/listeners.json", tmpDirectory: dataDirectory + "/run")
    }

    func bind(_ l: CellConfiguration.Listener, current: ListenerDefinition) throws -> Channel {
        var bootstrap = ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { [weak self] channel in
                guard let self else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture { try self.initialize(channel, listener: current.get()) }
            }
        if let fd = l.fd {
            // Bound and listening already (the host's backlog and options);
            // only a socket checked at start, never one the engine opened.
            guard inheritedFDs.contains(fd) else {
                throw CellConfiguration.Invalid("listener \(l.name): fd \(fd) was not a listener at start (inherited sockets need a restart)")
            }
            return try bootstrap.withBoundSocket(fd).wait()
        }
        bootstrap = bootstrap.serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        if let path = l.path {
            let full = path.hasPrefix("/") ? path : dataDirectory + "/" + path
            try DurableFile.makeDirectory(DurableFile.parentDirectory(of: full))
            return try bootstrap.bind(unixDomainSocketPath: full, cleanupExistingSocketFile: true).wait()
        }
        let (host, port) = ListenerAddress.parse(l.address!)!
        return try bootstrap.bind(host: host, port: port).wait()
    }

    /// Sets up one accepted connection: PROXY v2 from trusted peers, limits,
    /// implicit TLS, then the SMTP session.
    func initialize(_ channel: Channel, listener l: CellConfiguration.Listener) throws {
        let peer = channel.remoteAddress?.ipAddress
        let snapshot = state.snapshot
        if l.proxyProtocol == true, snapshot.trusted.contains(where: { $0.matches(host: peer) }) {
            let handler = ProxyProtocolHandler { [weak self] header, _ in
                guard let self else { return }
                let client = SMTPClient(host: header.sourceHost ?? peer, port: header.sourceHost != nil ? header.sourcePort : (channel.remoteAddress?.port ?? 0), viaProxy: header.sourceHost != nil)
                try self.startSession(channel, listener: l, client: client, position: .last)
            }
            try channel.pipeline.syncOperations.addHandler(handler)
            return
        }
        try startSession(channel, listener: l, client: SMTPClient(host: peer, port: channel.remoteAddress?.port ?? 0, viaProxy: false), position: .last)
    }

    func startSession(_ channel: Channel, listener l: CellConfiguration.Listener, client: SMTPClient, position: ChannelPipeline.Position) throws {
        guard state.acquireConnection(host: client.host) else {
            // Refused in the listener's own protocol, inside TLS where the listener speaks it.
            if l.implicitTLS == true, let tls = state.snapshot.tls {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: position)
            }
            let refusal: [UInt8]
            switch l.role {
            case .imap: refusal = Array("* BYE [UNAVAILABLE] Too many connections, try again later\r\n".utf8)
            case .pop3: refusal = Array("-ERR [SYS/TEMP] Too many connections, try again later\r\n".utf8)
            case .mx, .submission:
                var b = channel.allocator.buffer(capacity: 64)
                SMTPReply.tooManyConnections.encode(into: &b)
                refusal = Array(b.readableBytesView)
            }
            try channel.pipeline.syncOperations.addHandler(RefusalHandler(refusal))
            return
        }
        let id = ObjectIdentifier(channel)
        sessions.withLock { $0[id] = channel }
        let state = self.state!
        channel.closeFuture.whenComplete { [weak self] _ in
            state.releaseConnection(host: client.host)
            self?.sessions.withLock { $0[id] = nil }
        }
        let snapshot = state.snapshot
        let implicitTLS = l.implicitTLS == true
        if implicitTLS {
            guard let tls = snapshot.tls else { channel.close(promise: nil); return }
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: position)
        }
        if l.role == .pop3 {
            let maildrop = POP3Maildrop(engine: state, sessionID: state.nextSessionID())
            let session = POP3Session(backend: maildrop, isTLS: implicitTLS, tlsAvailable: snapshot.tls != nil)
            try channel.pipeline.syncOperations.addHandler(POP3ServerHandler(session: session, services: maildrop,
                                                                            tlsContext: snapshot.tls, clientHost: client.host))
        } else if l.role == .imap {
            let mailboxes = IMAPMailboxes(engine: state, sessionID: state.nextSessionID())
            let session = IMAPSession(backend: mailboxes, isTLS: implicitTLS, tlsAvailable: snapshot.tls != nil)
            try channel.pipeline.syncOperations.addHandler(IMAPServerHandler(session: session, services: mailboxes,
                                                                            tlsContext: snapshot.tls, clientHost: client.host))
        } else {
            let handler = SMTPServerHandler(backend: state, listener: l.name, client: client, isTLS: implicitTLS,
                                            tlsContext: snapshot.tls, sessionID: state.nextSessionID(), logger: logger)
            try channel.pipeline.syncOperations.addHandler(handler)
        }
        if shuttingDown { Engine.requestShutdown(channel) }
    }

    /// After a burst the heap keeps freed pages; give them back while idle
    /// (ISOLATION.md: a cell's footprint is what counts at scale).
    func scheduleMemoryTrim() {
        group.next().scheduleRepeatedTask(initialDelay: .seconds(30), delay: .seconds(30)) { [weak self] _ in
            guard let self, self.sessions.withLock({ $0.isEmpty }) else { return }
            guard let state = self.state else { return }
            state.searchFields.withLock { $0.clear() }
            // SQLite's page cache and the prepared statements, on the store thread.
            _ = state.scheduler.onStoreThread(self.group.next()) { state.store.releaseMemory() }.always { _ in
                _ = postcellMallocTrim(0)
            }
        }
    }

    /// The outbound queue: loads what the spool holds and hears of each new message.
    func startOutbound(_ config: CellConfiguration, spool: OutboundSpool) throws {
        let state = self.state!
        let loop = state.eventLoop
        let queue = try OutboundQueue(loop: state.eventLoop, spool: spool, pool: storePool,
                                      configuration: try config.outboundConfiguration(dataDirectory: dataDirectory),
                                      resolver: state.snapshot.resolver, logger: logger, clock: { Int64(time(nil)) },
                                      dsnSink: { [weak state] to, bytes in
                                          guard let state else { return loop.makeSucceededVoidFuture() }
                                          return state.deliverReport(to: to, message: bytes)
                                      })
        state.scheduler.onSpooled.withLock { $0 = { [weak queue] env in queue?.enqueued(env) } }
        outbound = queue
        try queue.start().wait()
    }

    // MARK: Signals, reload, shutdown

    static func requestShutdown(_ channel: Channel) {
        channel.pipeline.fireUserInboundEventTriggered(SMTPShutdownEvent())
        channel.pipeline.fireUserInboundEventTriggered(IMAPShutdownEvent())
        channel.pipeline.fireUserInboundEventTriggered(POP3ShutdownEvent())
    }

    func installSignalHandlers() {
        let queue = DispatchQueue(label: "postcell.signals")
        for sig in [SIGHUP, SIGTERM, SIGINT, SIGUSR1] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            // Ignore the default action only once the source exists.
            source.setEventHandler { [weak self] in
                // Reloads queue up behind admin API changes, never beside them.
                guard let self else { return }
                if sig == SIGHUP { self.controlQueue.async { self.reload() } } else if sig == SIGUSR1 { self.outbound?.flush() } else { self.controlQueue.async { self.shutdown() } }
            }
            source.resume()
            signalSources.append(source)
        }
    }

    /// Re-reads the configuration; sessions keep running. A bad file is
    /// reported and the running configuration stays. Call on `controlQueue`.
    public func reload() {
        do {
            let config = try CellConfiguration.load(path: configPath)
            try install(prepare(config))
        } catch {
            logger.error("reload failed, keeping the running configuration: \(error)")
        }
    }

    /// A checked configuration made ready to run: everything that may fail
    /// because of what the configuration says (key files, the relay's
    /// password file), done before anything is written or swapped.
    struct Prepared {
        var config: CellConfiguration
        var snapshot: Snapshot
        var outbound: OutboundConfiguration
    }

    func prepare(_ config: CellConfiguration) throws -> Prepared {
        let snapshot = try makeSnapshot(config, previous: state.snapshot)
        return Prepared(config: config, snapshot: snapshot, outbound: try config.outboundConfiguration(dataDirectory: dataDirectory))
    }

    /// Swaps the prepared configuration in: the next command of every
    /// session sees it; listeners and the admin socket follow it.
    func install(_ p: Prepared) throws {
        try state.store.ensureUsers(p.snapshot.directory.users.keys.sorted(), now: Int64(time(nil)))
        state.snapshotBox.withLock { $0 = p.snapshot }
        outbound?.update(p.outbound, resolver: p.snapshot.resolver)
        try bindListeners(p.config.listeners)
        try bindAdmin(p.config.admin)
        logger.info("reloaded", metadata: ["users": "\(p.snapshot.directory.users.count)", "domains": "\(p.snapshot.directory.domains.count)"])
    }

    /// The admin API's change (docs/ADMIN-API.md): checked as at start-up,
    /// written durably over the configuration file, then installed as a
    /// reload would. Call on `controlQueue`.
    func applyChange(_ config: CellConfiguration) throws {
        let bytes: [UInt8]
        let prepared: Prepared
        do {
            bytes = try config.encoded()
            prepared = try prepare(CellConfiguration.parse(bytes, source: "the changed configuration"))
        } catch {
            throw AdminError(400, "\(error)")
        }
        let path = configPath.hasPrefix("/") ? configPath : FileManager.default.currentDirectoryPath + "/" + configPath
        do {
            try DurableFile.write(bytes, to: path, tmpDirectory: DurableFile.parentDirectory(of: path))
        } catch {
            logger.error("admin: could not write the configuration: \(error)")
            throw AdminError(500, "could not write the configuration file; nothing changed")
        }
        do {
            try install(prepared)
        } catch {
            logger.error("admin: configuration written but not applied: \(error)")
            throw AdminError(500, "configuration written but not applied: \(error)")
        }
    }

    /// Stops accepting, lets transactions in flight finish (10 s at most),
    /// answers 421 to idle sessions, and stops.
    public func shutdown() {
        guard !shuttingDown else { return }
        shuttingDown = true
        logger.info("shutting down")
        for (_, l) in listeners { try? l.channel.close().wait() }
        listeners = [:]
        admin?.close()
        admin = nil
        for ch in sessions.withLock({ Array($0.values) }) { Engine.requestShutdown(ch) }
        let deadline = DispatchTime.now() + .seconds(10)
        while !sessions.withLock({ $0.isEmpty }) && DispatchTime.now() < deadline { usleep(20_000) }
        for ch in sessions.withLock({ Array($0.values) }) { ch.close(promise: nil) }
        try? group.syncShutdownGracefully()
        try? storePool.syncShutdownGracefully()
        try? authPool.syncShutdownGracefully()
        unlink(dataDirectory + "/run/engine.pid")
        unlink(dataDirectory + "/run/listeners.json")
        logger.info("stopped")
        stopped.signal()
    }
}

/// glibc's malloc_trim(3): not exported by the Glibc module map.
@_silgen_name("malloc_trim")
func postcellMallocTrim(_ pad: Int) -> Int32

/// Says one thing (a busy-server refusal) and closes.
final class RefusalHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let bytes: [UInt8]
    var sent = false

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { send(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func send(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        let buffer = context.channel.allocator.buffer(bytes: bytes)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in context.close(promise: nil) }
    }
}
