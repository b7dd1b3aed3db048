import MailCore
import NIOCore
import NIOSSL

/// What the engine provides to IMAP sessions beyond mailbox access.
public protocol IMAPServices: AnyObject, Sendable {
    /// Runs blocking work (store access) off the event loop; quick work
    /// (`IMAPSession.isQuick`) may run on it when the store is idle.
    func runBlocking<T: Sendable>(on eventLoop: EventLoop, quick: Bool, _ body: @escaping @Sendable () throws -> T) -> EventLoopFuture<T>
    func authenticate(user: String, password: String, clientHost: String?, eventLoop: EventLoop) -> EventLoopFuture<AuthVerdict>
    /// Calls `onChange` (from any thread) when `user`'s mailboxes change, until the returned token is cancelled.
    func watch(user: String, _ onChange: @escaping @Sendable () -> Void) -> IMAPWatchToken
    var autologoutSeconds: Int64 { get }
    /// The largest message APPEND takes (the cell's message size limit).
    var maxAppendBytes: Int { get }
}

public final class IMAPWatchToken: Sendable {
    let cancelAction: @Sendable () -> Void
    public init(cancel: @escaping @Sendable () -> Void) { cancelAction = cancel }
    public func cancel() { cancelAction() }
}

/// The thin NIO driver of an `IMAPSession`: frames commands with the
/// assembler, runs them one at a time on the blocking pool, writes what they
/// produce, and handles STARTTLS, SASL continuations and IDLE.
public final class IMAPServerHandler: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    enum Mode {
        case commands
        case sasl(tag: String)
        case idle(tag: String)
    }

    let session: IMAPSession
    let services: IMAPServices
    let tlsContext: NIOSSLContext?
    let clientHost: String?
    var assembler = IMAPCommandAssembler()
    var queue: [IMAPCommandAssembler.Event] = []
    var busy = false
    /// A change came while an IDLE update was being made: make another after it.
    var idleUpdatePending = false
    var mode = Mode.commands
    var closing = false
    var watch: IMAPWatchToken?
    var idleTimer: Scheduled<Void>?
    var context: ChannelHandlerContext?
    /// Work waiting for the output buffer to drain below its low watermark.
    var whenWritable: (() -> Void)?
    var reading = true
    /// Commands framed but not yet run; beyond this, reading stops until they are.
    static let maxQueued = 32

    public init(session: IMAPSession, services: IMAPServices, tlsContext: NIOSSLContext?, clientHost: String?) {
        self.session = session
        self.services = services
        self.tlsContext = tlsContext
        self.clientHost = clientHost
        limitAssembler()
    }

    /// Before login a literal only carries credentials: a few KiB. After
    /// it, APPEND takes messages up to the cell's limit.
    static let preAuthLiteralBytes = 8192
    /// RFC 9051 §5.4 asks 30 minutes of patience for logged-in sessions
    /// only; a connection that never logs in is dropped sooner.
    static let preAuthTimeoutSeconds: Int64 = 120

    func limitAssembler() {
        let limit = session.user == nil ? IMAPServerHandler.preAuthLiteralBytes : services.maxAppendBytes
        assembler.maxLiteralLength = limit
        assembler.maxCommandLength = limit + 65536
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    var started = false
    func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        write(session.greeting(), context)
        resetTimer(context)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        closing = true
        watch?.cancel()
        idleTimer?.cancel()
        self.context = nil
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is IMAPShutdownEvent else { context.fireUserInboundEventTriggered(event); return }
        shutdownRequested = true
        closeIfIdleForShutdown(context)
    }

    var shutdownRequested = false

    /// RFC 9051 §7.1.5: BYE, then close; a command in progress finishes first.
    func closeIfIdleForShutdown(_ context: ChannelHandlerContext) {
        guard shutdownRequested, !busy, !closing else { return }
        closing = true
        var w = IMAPWriter()
        w.status(tag: nil, "BYE", "Server shutting down")
        var b = context.channel.allocator.buffer(capacity: w.bytes.count)
        b.writeBytes(w.bytes)
        context.writeAndFlush(wrapOutboundOut(b)).whenComplete { _ in context.close(promise: nil) }
    }

    /// Backpressure: a client that does not read its responses stops the
    /// session (no further commands run, no further input is read) instead
    /// of growing the output buffer.
    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let work = whenWritable {
            whenWritable = nil
            work()
        }
        if context.channel.isWritable { drain(context) }
        updateReading(context)
        context.fireChannelWritabilityChanged()
    }

    func afterFlush(_ context: ChannelHandlerContext, _ work: @escaping () -> Void) {
        if context.channel.isWritable { work() } else { whenWritable = work }
    }

    func updateReading(_ context: ChannelHandlerContext) {
        let want = !closing && queue.count < IMAPServerHandler.maxQueued && context.channel.isWritable
        guard want != reading else { return }
        reading = want
        context.channel.setOption(ChannelOptions.autoRead, value: want).whenComplete { _ in }
        if want { context.read() }
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !closing else { return }
        resetTimer(context)
        queue += assembler.feed(Array(buffer.readableBytesView))
        drain(context)
        updateReading(context)
    }

    /// RFC 9051 §5.4: an idle session is logged out after at least 30 minutes.
    func resetTimer(_ context: ChannelHandlerContext) {
        idleTimer?.cancel()
        let timeout = session.user == nil ? IMAPServerHandler.preAuthTimeoutSeconds : services.autologoutSeconds
        idleTimer = context.eventLoop.scheduleTask(in: .seconds(timeout)) { [weak self] in
            guard let self, !self.closing else { return }
            var w = IMAPWriter()
            w.status(tag: nil, "BYE", "Autologout; idle for too long")
            self.closing = true
            self.write(w.bytes, context)
            context.close(promise: nil)
        }
    }

    func drain(_ context: ChannelHandlerContext) {
        defer {
            closeIfIdleForShutdown(context)
            updateReading(context)
        }
        while !busy && !closing && !queue.isEmpty && context.channel.isWritable {
            let event = queue.removeFirst()
            switch event {
            case .continuationNeeded:
                write(Array("+ Ready for literal data\r\n".utf8), context)
            case .tooLong(let tag, let text):
                var w = IMAPWriter()
                switch mode {
                case .sasl(let saslTag):
                    // The SASL response was the over-long line: the exchange ends there.
                    mode = .commands
                    w.status(tag: saslTag, "BAD", "Authentication response too long")
                case .idle, .commands:
                    if text == IMAPCommandAssembler.literalTooLarge {
                        // RFC 9051 §7.1: TOOBIG, before the client sends a synchronizing literal.
                        w.status(tag: tag ?? "*", "NO", code: "TOOBIG", "Literal larger than \(assembler.maxLiteralLength) octets")
                    } else {
                        w.status(tag: tag ?? "*", "BAD", text)
                    }
                }
                write(w.bytes, context)
            case .command(let pieces):
                handle(pieces, context)
            }
        }
    }

    func handle(_ pieces: [IMAPToken.Piece], _ context: ChannelHandlerContext) {
        switch mode {
        case .sasl(let tag):
            mode = .commands
            var line: [UInt8] = []
            if case .text(let t)? = pieces.first, pieces.count == 1 { line = t }
            perform(session.saslResponse(tag: tag, line), context)
            return
        case .idle(let tag):
            var line: [UInt8] = []
            if case .text(let t)? = pieces.first { line = t }
            mode = .commands
            watch?.cancel()
            watch = nil
            var w = IMAPWriter()
            if String(decoding: line, as: UTF8.self).uppercased() == "DONE" {
                w.status(tag: tag, "OK", "IDLE terminated")
            } else {
                w.status(tag: tag, "BAD", "Expected DONE")
            }
            write(w.bytes, context)
            return
        case .commands:
            break
        }
        switch IMAPParser.parse(pieces) {
        case .failure(let f):
            var w = IMAPWriter()
            w.status(tag: f.tag ?? "*", "BAD", f.text)
            write(w.bytes, context)
        case .success(let (tag, command)):
            busy = true
            let session = self.session
            services.runBlocking(on: context.eventLoop, quick: session.isQuick(command)) { session.execute(tag: tag, command) }
                .hop(to: context.eventLoop)
                .whenComplete { result in
                    self.busy = false
                    switch result {
                    case .success(let outcome): self.perform(outcome, context)
                    case .failure:
                        var w = IMAPWriter()
                        w.status(tag: tag, "NO", code: "SERVERBUG", "Internal error")
                        self.write(w.bytes, context)
                    }
                    self.drain(context)
                }
        }
    }

    func perform(_ outcome: IMAPSession.Outcome, _ context: ChannelHandlerContext) {
        guard !closing else { return }
        switch outcome {
        case .respond(let bytes):
            write(bytes, context)
        case .partial(let bytes, let next):
            // A long response in pieces: the next one is made once this one
            // has drained, so a slow reader costs one piece of memory.
            busy = true
            write(bytes, context)
            let services = self.services
            afterFlush(context) {
                services.runBlocking(on: context.eventLoop, quick: false) { next() }
                    .hop(to: context.eventLoop)
                    .whenComplete { result in
                        self.busy = false
                        switch result {
                        case .success(let outcome): self.perform(outcome, context)
                        case .failure: context.close(promise: nil)
                        }
                        self.drain(context)
                    }
            }
        case .logout(let bytes):
            closing = true
            var b = context.channel.allocator.buffer(capacity: bytes.count)
            b.writeBytes(bytes)
            context.writeAndFlush(wrapOutboundOut(b)).whenComplete { _ in context.close(promise: nil) }
        case .startTLS(let bytes):
            write(bytes, context)
            // RFC 9051 §6.2.1: commands pipelined after STARTTLS are discarded.
            queue = []
            assembler = IMAPCommandAssembler()
            limitAssembler()
            guard let tlsContext else { return }
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext), position: .first)
                session.tlsEstablished()
            } catch {
                context.close(promise: nil)
            }
        case .authenticate(let tag, let user, let password):
            busy = true
            services.authenticate(user: user, password: password, clientHost: clientHost, eventLoop: context.eventLoop)
                .hop(to: context.eventLoop).whenComplete { result in
                    self.busy = false
                    switch (try? result.get()) ?? .temporaryFailure {
                    case .success(let u):
                        self.write(self.session.authenticated(tag: tag, user: u), context)
                        self.limitAssembler()
                        self.resetTimer(context)
                    case .invalid: self.write(self.session.authenticationFailed(tag: tag, temporary: false), context)
                    case .temporaryFailure: self.write(self.session.authenticationFailed(tag: tag, temporary: true), context)
                    case .suspended: self.write(self.session.accountSuspended(tag: tag), context)
                    }
                    self.drain(context)
                }
        case .compress(let bytes):
            // The OK goes out plain; everything after it is deflated. A
            // client must wait for the OK, so anything queued is discarded.
            write(bytes, context)
            queue = []
            assembler = IMAPCommandAssembler()
            limitAssembler()
            do {
                try context.pipeline.syncOperations.addHandlers([InflateHandler(), DeflateHandler()], position: .before(self))
            } catch {
                context.close(promise: nil)
            }
        case .saslContinuation(let tag, let bytes):
            mode = .sasl(tag: tag)
            write(bytes, context)
        case .idle(let tag, let bytes):
            guard case .commands = mode, let user = session.user else { return }
            mode = .idle(tag: tag)
            write(bytes, context)
            let loop = context.eventLoop
            watch = services.watch(user: user) { [weak self] in
                loop.execute { if let self, let ctx = self.context { self.idleUpdate(ctx) } }
            }
            idleUpdate(context)
        }
    }

    /// While idling, tell the client what changed (RFC 2177). The session is
    /// busy meanwhile: DONE and later commands wait, so they never look at
    /// the session while the store thread changes it, and the update's lines
    /// (already counted as told) come before `OK IDLE terminated`.
    func idleUpdate(_ context: ChannelHandlerContext) {
        guard case .idle = mode, !closing else { return }
        guard !busy else { idleUpdatePending = true; return }
        busy = true
        idleUpdatePending = false
        let session = self.session
        services.runBlocking(on: context.eventLoop, quick: false) { session.idleUpdates() }.hop(to: context.eventLoop).whenComplete { result in
            self.busy = false
            if case .success(let bytes) = result { self.write(bytes, context) }
            if self.idleUpdatePending { self.idleUpdate(context) }
            self.drain(context)
        }
    }

    func write(_ bytes: [UInt8], _ context: ChannelHandlerContext) {
        guard !bytes.isEmpty, context.channel.isActive else { return }
        var b = context.channel.allocator.buffer(capacity: bytes.count)
        b.writeBytes(bytes)
        context.writeAndFlush(wrapOutboundOut(b), promise: nil)
    }
}

/// Sent down a session's pipeline when the engine stops.
public struct IMAPShutdownEvent: Sendable {
    public init() {}
}
