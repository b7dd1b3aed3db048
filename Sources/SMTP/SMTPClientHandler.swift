import NIOCore
import NIOSSL
import NIOTLS

/// What an outgoing connection asks of whoever runs it (the outbound
/// queue). Called on the channel's event loop.
public protocol SMTPClientDelegate: AnyObject {
    /// The next message for this server, with its bytes; nil ends the
    /// connection (QUIT). The future may wait (until the outcome of the
    /// previous transaction is on disk, so a crash re-sends at most one
    /// message per connection).
    func nextTransaction(_ session: SMTPClientSession) -> EventLoopFuture<(SMTPClientSession.Transaction, ByteBuffer)?>
    func finished(_ result: SMTPClientSession.TransactionResult, session: SMTPClientSession)
    /// The connection is over: nil after QUIT, else why it failed.
    func ended(_ failure: SMTPClientSession.Failure?, session: SMTPClientSession)
}

/// How to do TLS with one server: the context, the name to send (SNI) and
/// verify, and an extra check of the peer's chain (DANE, RFC 7672 §3).
public struct SMTPClientTLS {
    public var context: NIOSSLContext
    public var serverHostname: String?
    public var verify: NIOSSLCustomVerificationCallback?

    public init(context: NIOSSLContext, serverHostname: String?, verify: NIOSSLCustomVerificationCallback? = nil) {
        self.context = context
        self.serverHostname = serverHostname
        self.verify = verify
    }

    /// A TLS handler for this server.
    public func makeHandler() throws -> NIOSSLClientHandler {
        // SNI must be a host name, not an address literal (RFC 6066 §3).
        let sni = serverHostname.flatMap { $0.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? nil : $0 }
        if let verify {
            return try NIOSSLClientHandler(context: context, serverHostname: sni, customVerificationCallback: verify)
        }
        return try NIOSSLClientHandler(context: context, serverHostname: sni)
    }
}

/// The thin NIO driver of `SMTPClientSession`: reads replies, writes what
/// the session says, adds TLS on STARTTLS, dot-stuffs the message (RFC 5321
/// §4.5.2) and times out a silent server (§4.5.3.2).
public final class SMTPClientHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    var session: SMTPClientSession
    let delegate: SMTPClientDelegate
    let tls: SMTPClientTLS?
    /// How long the server may stay silent after we wrote (RFC 5321
    /// §4.5.3.2 gives 2 to 10 minutes by command; one value here).
    let timeout: TimeAmount
    var parser = SMTPReplyParser()
    var input = ByteBuffer()
    var body: ByteBuffer?
    var timer: Scheduled<Void>?
    var ended = false
    var context: ChannelHandlerContext?

    public init(session: SMTPClientSession, delegate: SMTPClientDelegate, tls: SMTPClientTLS?, timeout: TimeAmount) {
        self.session = session
        self.delegate = delegate
        self.tls = tls
        self.timeout = timeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        armTimer(context)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        input.writeBuffer(&bytes)
        while !ended {
            let reply: SMTPReply?
            do {
                reply = try parser.parse(&input)
            } catch {
                perform(session.connectionLost("unreadable reply from server: \(error)"), context)
                return
            }
            guard let reply else { break }
            armTimer(context)
            perform(session.received(reply), context)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e {
            armTimer(context)
            perform(session.tlsEstablished(), context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            perform(session.tlsFailed("\(error)"), context)
        } else {
            perform(session.connectionLost("\(error)"), context)
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        perform(session.connectionLost("connection closed by the server"), context)
        finish(nil, context)
        context.fireChannelInactive()
    }

    func armTimer(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let loop = context.eventLoop
        timer = loop.scheduleTask(in: timeout) { [weak self] in
            guard let self, let ctx = self.context else { return }
            self.perform(self.session.connectionLost("timeout waiting for the server"), ctx)
        }
    }

    func perform(_ actions: [SMTPClientSession.Action], _ context: ChannelHandlerContext) {
        for action in actions {
            guard !ended else { return }
            switch action {
            case .send(let text):
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)), promise: nil)
            case .startTLS:
                // Whatever came after "220" and before the handshake was not
                // from a TLS peer (RFC 3207 §4.2 command injection).
                if input.readableBytes > 0 {
                    perform(session.tlsFailed("data after the STARTTLS reply"), context)
                    return
                }
                guard let tls else {
                    perform(session.tlsFailed("no TLS configuration"), context)
                    return
                }
                do {
                    try context.pipeline.syncOperations.addHandler(try tls.makeHandler(), position: .first)
                } catch {
                    perform(session.tlsFailed("\(error)"), context)
                }
            case .sendMessage:
                if var b = body {
                    body = nil
                    var out = context.channel.allocator.buffer(capacity: b.readableBytes + b.readableBytes / 64 + 8)
                    SMTPClientHandler.dotStuff(&b, into: &out)
                    context.writeAndFlush(wrapOutboundOut(out), promise: nil)
                }
            case .ready:
                delegate.nextTransaction(session).whenComplete { result in
                    guard !self.ended else { return }
                    if case .success(let next?) = result {
                        self.body = next.1
                        self.perform(self.session.begin(next.0), context)
                    } else {
                        self.perform(self.session.quit(), context)
                    }
                }
                return
            case .finished(let result):
                body = nil
                delegate.finished(result, session: session)
            case .failed(let failure):
                finish(failure, context)
            case .close:
                finish(nil, context)
                context.close(promise: nil)
            }
        }
    }

    func finish(_ failure: SMTPClientSession.Failure?, _ context: ChannelHandlerContext) {
        guard !ended else { return }
        ended = true
        timer?.cancel()
        delegate.ended(failure, session: session)
        if failure != nil { context.close(promise: nil) }
    }

    /// The message as DATA content: CRLF line ends (a bare LF becomes CRLF),
    /// a leading "." doubled, then the end mark "." CRLF (RFC 5321 §4.5.2).
    public static func dotStuff(_ message: inout ByteBuffer, into out: inout ByteBuffer) {
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), dot = UInt8(ascii: ".")
        message.withUnsafeReadableBytes { raw in
            var lineStart = true
            var start = 0
            var i = 0
            let n = raw.count
            while i < n {
                let b = raw[i]
                if lineStart, b == dot {
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[start..<i]))
                    out.writeInteger(dot)
                    start = i
                }
                lineStart = false
                if b == lf {
                    if i == 0 || raw[i - 1] != cr {
                        out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[start..<i]))
                        out.writeInteger(cr)
                        start = i
                    }
                    lineStart = true
                }
                i += 1
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[start..<n]))
            if n > 0, raw[n - 1] != lf { out.writeStaticString("\r\n") }
        }
        out.writeStaticString(".\r\n")
    }
}
