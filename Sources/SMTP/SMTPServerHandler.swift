import Logging
import MailCore
import NIOCore
import NIOSSL

/// The thin NIO driver of `SMTPServerSession`: frames input (command lines,
/// DATA with dot-unstuffing, BDAT chunks), carries out the session's actions
/// against the backend, and holds replies until input runs dry (RFC 2920 §3.2:
/// replies to a pipelined group may be buffered until the server would block).
///
/// Reads no file and keeps no state beyond one session; untrusted input is
/// every byte from the peer.
public final class SMTPServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    enum Framing {
        case command
        /// DATA: `atLineStart`, whether the last line ended in CRLF, content size, overflow.
        case data(atLineStart: Bool, lastCRLF: Bool, size: Int, overflow: Bool)
        case chunk(remaining: Int, keep: Bool)
    }

    let backend: SMTPServerBackend
    let listener: String
    let client: SMTPClient
    let tlsContext: NIOSSLContext?
    var logger: Logger
    var session: SMTPServerSession
    let sessionID: String

    var input: ByteBuffer?
    var output: ByteBuffer
    var framing = Framing.command
    var discardingLongLine = false
    var awaiting = false
    var closing = false
    var started = false
    var shutdownRequested = false
    var sink: SMTPMessageSink?
    var idleTask: Scheduled<Void>?
    var readPaused = false
    var processing = false
    var context: ChannelHandlerContext?

    /// Unprocessed input beyond this pauses reading while a verdict is awaited.
    static let maxBufferedInput = 1 << 20

    public init(backend: SMTPServerBackend, listener: String, client: SMTPClient, isTLS: Bool,
                tlsContext: NIOSSLContext?, sessionID: String, logger: Logger) {
        self.backend = backend
        self.listener = listener
        self.client = client
        self.tlsContext = tlsContext
        self.sessionID = sessionID
        self.logger = logger
        self.logger[metadataKey: "session"] = "\(sessionID)"
        self.session = SMTPServerSession(configuration: backend.sessionConfiguration(listener: listener, isTLS: isTLS), isTLS: isTLS)
        self.output = ByteBuffer()
    }

    var sessionContext: SMTPSessionContext {
        SMTPSessionContext(id: sessionID, listener: listener, role: session.configuration.role, client: client,
                           helo: session.helo, esmtp: session.esmtp, isTLS: session.isTLS,
                           authenticatedUser: session.authenticatedUser)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        output = context.channel.allocator.buffer(capacity: 256)
        if context.channel.isActive { start(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        perform(session.greeting(), context)
        flush(context)
        resetIdleTimer(context)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        idleTask?.cancel()
        sink?.discard()
        sink = nil
        closing = true
        self.context = nil
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is SMTPShutdownEvent {
            shutdownRequested = true
            closeIfIdleForShutdown(context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func closeIfIdleForShutdown(_ context: ChannelHandlerContext) {
        guard shutdownRequested, !closing, !awaiting, session.transaction == nil,
              case .command = framing else { return }
        send(.shuttingDown, context)
        closeAfterFlush(context)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !closing else { return }
        // RFC 5321 §4.5.3.2.7: the timeout is on silence; bytes that keep
        // coming (however slowly) keep the session. Connection limits bound
        // what a slow client can hold.
        resetIdleTimer(context)
        if input == nil { input = bytes } else { input!.writeBuffer(&bytes) }
        process(context)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        flush(context)
        context.fireChannelReadComplete()
    }

    // MARK: Input processing

    func process(_ context: ChannelHandlerContext) {
        // A verdict that completes synchronously resumes inside this loop;
        // the loop then carries on by itself.
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while !awaiting && !closing, var buffer = input, buffer.readableBytes > 0 {
            let progressed: Bool
            switch framing {
            case .command:
                progressed = processCommandLine(&buffer, context)
            case .data(let atLineStart, let lastCRLF, let size, let overflow):
                progressed = processData(&buffer, atLineStart: atLineStart, lastCRLF: lastCRLF, size: size, overflow: overflow, context)
            case .chunk(let remaining, let keep):
                progressed = processChunk(&buffer, remaining: remaining, keep: keep, context)
            }
            // A STARTTLS action may have discarded the buffer meanwhile.
            if input != nil { input = buffer.readableBytes > 0 ? buffer : nil }
            if !progressed { break }
        }
        if let input, input.readableBytes > SMTPServerHandler.maxBufferedInput, !readPaused {
            readPaused = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        }
    }

    func processCommandLine(_ buffer: inout ByteBuffer, _ context: ChannelHandlerContext) -> Bool {
        let view = buffer.readableBytesView
        let isAuth = view.count >= 5 && view.prefix(5).map { $0 | 0x20 } == Array("auth ".utf8)
        let limit = session.inAuthExchange || isAuth ? SMTPCommandParser.maxAuthLineLength : session.configuration.maxLineLength
        guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > limit {
                // Drop what we have and keep dropping up to the line's end.
                discardingLongLine = true
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            }
            return false
        }
        let length = lf - view.startIndex
        var line = buffer.readBytes(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        resetIdleTimer(context)
        if discardingLongLine || line.count > limit {
            discardingLongLine = false
            perform(session.lineTooLong(), context)
            return true
        }
        // Data after QUIT or while closing is ignored.
        perform(session.receivedLine(line), context)
        return true
    }

    /// DATA content (RFC 5321 §4.5.2 transparency): a leading dot is removed;
    /// the content ends only at CRLF "." CRLF. A bare LF is taken as CRLF.
    func processData(_ buffer: inout ByteBuffer, atLineStart: Bool, lastCRLF: Bool, size: Int, overflow: Bool,
                     _ context: ChannelHandlerContext) -> Bool {
        var atLineStart = atLineStart, lastCRLF = lastCRLF, size = size, overflow = overflow
        let max = session.configuration.maxMessageBytes
        var out = context.channel.allocator.buffer(capacity: buffer.readableBytes + 64)
        var ended = false
        func emit(_ slice: ByteBufferView) {
            size += slice.count
            if size > max { overflow = true }
            if !overflow { out.writeBytes(slice) }
        }
        func emitCRLF() {
            size += 2
            if size > max { overflow = true }
            if !overflow { out.writeStaticString("\r\n") }
        }
        loop: while buffer.readableBytes > 0 {
            let view = buffer.readableBytesView
            if atLineStart && view.first == UInt8(ascii: ".") {
                if view.count < 2 { break }
                let second = view[view.startIndex + 1]
                if second == UInt8(ascii: "\r") {
                    if view.count < 3 { break }
                    if view[view.startIndex + 2] == UInt8(ascii: "\n") && lastCRLF {
                        buffer.moveReaderIndex(forwardBy: 3)
                        ended = true
                        break loop
                    }
                }
                buffer.moveReaderIndex(forwardBy: 1) // unstuff
                atLineStart = false
                continue
            }
            guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
                // A partial line: pass it on, holding back a trailing CR.
                var n = view.count
                if view.last == UInt8(ascii: "\r") { n -= 1 }
                if n > 0 {
                    emit(view[view.startIndex..<(view.startIndex + n)])
                    buffer.moveReaderIndex(forwardBy: n)
                    atLineStart = false
                }
                break
            }
            let lineEnd = lf - view.startIndex
            if lineEnd > 0 && view[lf - 1] == UInt8(ascii: "\r") {
                emit(view[view.startIndex...lf])
                lastCRLF = true
            } else {
                emit(view[view.startIndex..<lf])
                emitCRLF()
                lastCRLF = false
            }
            buffer.moveReaderIndex(forwardBy: lineEnd + 1)
            atLineStart = true
        }
        if out.readableBytes > 0 { sink?.append(&out) }
        if ended {
            framing = .command
            resetIdleTimer(context)
            perform(session.dataEnded(size: size, overflow: overflow), context)
            return true
        }
        framing = .data(atLineStart: atLineStart, lastCRLF: lastCRLF, size: size, overflow: overflow)
        return false
    }

    func processChunk(_ buffer: inout ByteBuffer, remaining: Int, keep: Bool, _ context: ChannelHandlerContext) -> Bool {
        let n = min(remaining, buffer.readableBytes)
        var part = buffer.readSlice(length: n)!
        if keep { sink?.append(&part) }
        let left = remaining - n
        if left > 0 {
            framing = .chunk(remaining: left, keep: keep)
            return false
        }
        framing = .command
        perform(session.chunkRead(), context)
        return true
    }

    // MARK: Actions

    func perform(_ actions: [SMTPServerSession.Action], _ context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .send(let reply):
                send(reply, context)
            case .sendAndClose(let reply):
                send(reply, context)
                closeAfterFlush(context)
            case .startTLS:
                startTLS(context)
            case .authenticate(let user, let password):
                awaiting = true
                let future = backend.authenticate(user: user, password: password, context: sessionContext, eventLoop: context.eventLoop)
                future.hop(to: context.eventLoop).whenComplete { result in
                    let verdict = (try? result.get()) ?? .temporaryFailure
                    self.resume(context) { $0.authenticated(verdict) }
                }
            case .checkSender(let path, let params):
                let refusal = backend.checkSender(path, parameters: params, context: sessionContext)
                perform(session.senderChecked(refusal), context)
            case .checkRecipient(let address, let tx):
                let refusal = backend.checkRecipient(address, transaction: tx, context: sessionContext)
                perform(session.recipientChecked(refusal), context)
            case .receiveData(let tx):
                sink = backend.openMessage(tx, context: sessionContext, eventLoop: context.eventLoop)
                framing = .data(atLineStart: true, lastCRLF: true, size: 0, overflow: false)
                flush(context)
            case .receiveChunk(let size, let keep, let tx):
                if let tx, keep { sink = backend.openMessage(tx, context: sessionContext, eventLoop: context.eventLoop) }
                framing = .chunk(remaining: size, keep: keep)
                if size == 0 { perform(session.chunkRead(), context); framing = .command }
            case .deliver(let tx):
                guard let sink else {
                    perform(session.delivered(.localError), context)
                    continue
                }
                self.sink = nil
                awaiting = true
                flush(context)
                sink.commit(tx).hop(to: context.eventLoop).whenComplete { result in
                    let reply = (try? result.get()) ?? .localError
                    self.resume(context) { $0.delivered(reply) }
                }
            case .discardMessage:
                sink?.discard()
                sink = nil
            }
        }
        if !awaiting { closeIfIdleForShutdown(context) }
    }

    func resume(_ context: ChannelHandlerContext, _ event: (inout SMTPServerSession) -> [SMTPServerSession.Action]) {
        awaiting = false
        guard !closing else { return }
        perform(event(&session), context)
        process(context)
        flush(context)
        if readPaused, (input?.readableBytes ?? 0) <= SMTPServerHandler.maxBufferedInput {
            readPaused = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        }
    }

    func startTLS(_ context: ChannelHandlerContext) {
        guard let tlsContext else { return }
        flush(context)
        // RFC 3207 §4.2 / the STARTTLS injection problem: anything pipelined
        // after STARTTLS in clear text is discarded.
        input = nil
        let handler = NIOSSLServerHandler(context: tlsContext)
        do {
            try context.pipeline.syncOperations.addHandler(handler, position: .first)
        } catch {
            closing = true
            context.close(promise: nil)
            return
        }
        session.tlsEstablished()
    }

    func send(_ reply: SMTPReply, _ context: ChannelHandlerContext) {
        reply.encode(into: &output)
    }

    func flush(_ context: ChannelHandlerContext) {
        guard output.readableBytes > 0, context.channel.isActive else { return }
        let data = output
        output = context.channel.allocator.buffer(capacity: 256)
        context.writeAndFlush(wrapOutboundOut(data), promise: nil)
    }

    func closeAfterFlush(_ context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        idleTask?.cancel()
        let data = output
        output = context.channel.allocator.buffer(capacity: 0)
        context.writeAndFlush(wrapOutboundOut(data)).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func resetIdleTimer(_ context: ChannelHandlerContext) {
        idleTask?.cancel()
        let seconds = backend.idleTimeoutSeconds()
        idleTask = context.eventLoop.scheduleTask(in: .seconds(seconds)) { [weak self] in
            guard let self, !self.closing, !self.awaiting else { return }
            self.logger.debug("idle timeout")
            self.sink?.discard()
            self.sink = nil
            self.send(.idleTimeout, context)
            self.closeAfterFlush(context)
        }
    }
}
