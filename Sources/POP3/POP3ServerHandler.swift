import MailCore
import NIOCore
import NIOSSL

/// What the engine provides to POP3 sessions beyond the maildrop.
public protocol POP3Services: AnyObject, Sendable {
    func runBlocking<T: Sendable>(on eventLoop: EventLoop, quick: Bool, _ body: @escaping @Sendable () throws -> T) -> EventLoopFuture<T>
    func authenticate(user: String, password: String, clientHost: String?, eventLoop: EventLoop) -> EventLoopFuture<AuthVerdict>
}

/// The NIO driver of a `POP3Session`: line framing with limits, one command
/// at a time on the blocking pool, STLS, SASL continuation, a 10-minute
/// inactivity timer (RFC 1939 §3).
public final class POP3ServerHandler: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    let session: POP3Session
    let services: POP3Services
    let tlsContext: NIOSSLContext?
    let clientHost: String?
    var buffer: [UInt8] = []
    var busy = false
    var closing = false
    var inSASL = false
    var discarding = false
    var timer: Scheduled<Void>?
    var started = false
    var context: ChannelHandlerContext?
    public var inactivitySeconds: Int64 = 600

    public init(session: POP3Session, services: POP3Services, tlsContext: NIOSSLContext?, clientHost: String?) {
        self.session = session
        self.services = services
        self.tlsContext = tlsContext
        self.clientHost = clientHost
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        write(session.greeting(), context)
        resetTimer(context)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        closing = true
        timer?.cancel()
        let session = self.session
        _ = services.runBlocking(on: context.eventLoop, quick: false) { session.closed() }
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is POP3ShutdownEvent, !busy, !closing {
            closing = true
            write(Array("-ERR [SYS/TEMP] Server shutting down\r\n".utf8), context)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func resetTimer(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = context.eventLoop.scheduleTask(in: .seconds(inactivitySeconds)) { [weak self] in
            guard let self, !self.closing else { return }
            self.closing = true
            self.write(Array("-ERR Inactivity timeout\r\n".utf8), context)
            context.close(promise: nil)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        buffer += unwrapInboundIn(data).readableBytesView
        resetTimer(context)
        drain(context)
    }

    func drain(_ context: ChannelHandlerContext) {
        let limit = inSASL ? POP3Session.maxAuthLine : POP3Session.maxLine
        while !busy && !closing {
            guard let lf = buffer.firstIndex(of: 10) else {
                if buffer.count > limit { discarding = true; buffer = [] }
                return
            }
            var line = Array(buffer[..<lf])
            buffer.removeFirst(lf + 1)
            if line.last == 13 { line.removeLast() }
            if discarding || line.count > limit {
                discarding = false
                inSASL = false
                write(Array("-ERR Line too long\r\n".utf8), context)
                continue
            }
            if line.contains(0) { write(Array("-ERR NUL in command\r\n".utf8), context); continue }
            let session = self.session
            let command = line
            let sasl = inSASL
            inSASL = false
            busy = true
            services.runBlocking(on: context.eventLoop, quick: false) { sasl ? session.saslResponse(command) : session.execute(command) }
                .hop(to: context.eventLoop).whenComplete { result in
                    self.busy = false
                    switch result {
                    case .success(let outcome): self.perform(outcome, context)
                    case .failure: self.write(Array("-ERR [SYS/TEMP] Internal error\r\n".utf8), context)
                    }
                    self.drain(context)
                }
        }
    }

    func perform(_ outcome: POP3Session.Outcome, _ context: ChannelHandlerContext) {
        switch outcome {
        case .respond(let bytes):
            write(bytes, context)
        case .quit(let bytes):
            closing = true
            var b = context.channel.allocator.buffer(capacity: bytes.count)
            b.writeBytes(bytes)
            context.writeAndFlush(wrapOutboundOut(b)).whenComplete { _ in context.close(promise: nil) }
        case .startTLS(let bytes):
            write(bytes, context)
            buffer = [] // RFC 2595 §4: nothing pipelined before TLS carries over
            guard let tlsContext else { return }
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext), position: .first)
                session.tlsEstablished()
            } catch {
                context.close(promise: nil)
            }
        case .saslContinuation:
            inSASL = true
            write(Array("+ \r\n".utf8), context)
        case .authenticate(let user, let password):
            busy = true
            let session = self.session
            services.authenticate(user: user, password: password, clientHost: clientHost, eventLoop: context.eventLoop)
                .flatMap { result -> EventLoopFuture<[UInt8]> in
                    switch result {
                    case .success(let u): return self.services.runBlocking(on: context.eventLoop, quick: false) { session.authenticated(user: u) }
                    case .invalid: return context.eventLoop.makeSucceededFuture(session.authenticationFailed(temporary: false))
                    case .temporaryFailure: return context.eventLoop.makeSucceededFuture(session.authenticationFailed(temporary: true))
                    case .suspended: return context.eventLoop.makeSucceededFuture(session.accountSuspended())
                    }
                }
                .hop(to: context.eventLoop).whenComplete { result in
                    self.busy = false
                    self.write((try? result.get()) ?? session.authenticationFailed(temporary: true), context)
                    self.drain(context)
                }
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
public struct POP3ShutdownEvent: Sendable {
    public init() {}
}
