import NIOCore
import NIOPosix

/// One query and its response over UDP or TCP (RFC 1035 §4.2), each on a
/// channel of its own: a fresh source port per query (RFC 5452 §9.2).
enum DNSTransport {
    /// Sends `query` over UDP and waits for a response from `server` with the
    /// same ID and question; other datagrams are ignored (RFC 5452 §9.1).
    static func udp(_ query: [UInt8], id: UInt16, question: DNSQuestion, server: SocketAddress, timeout: TimeAmount,
                    on el: EventLoop) -> EventLoopFuture<DNSMessage> {
        let once = OneShot(el.makePromise(of: DNSMessage.self))
        let local = server.protocol == .inet6 ? "::" : "0.0.0.0"
        DatagramBootstrap(group: el)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(UDPResponseHandler(server: server, id: id, question: question, once: once))
                }
            }
            .bind(host: local, port: 0)
            .whenComplete { result in
                switch result {
                case .failure(let e):
                    once.fail(DNSError.network("\(e)"))
                case .success(let ch):
                    let timer = el.scheduleTask(in: timeout) { once.fail(DNSError.timeout) }
                    once.promise.futureResult.whenComplete { _ in
                        timer.cancel()
                        ch.close(promise: nil)
                    }
                    ch.writeAndFlush(AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: query)))
                        .whenFailure { once.fail(DNSError.network("\($0)")) }
                }
            }
        return once.promise.futureResult
    }

    /// The same over TCP, with the two-octet length before each message.
    static func tcp(_ query: [UInt8], id: UInt16, question: DNSQuestion, server: SocketAddress, timeout: TimeAmount,
                    on el: EventLoop) -> EventLoopFuture<DNSMessage> {
        let once = OneShot(el.makePromise(of: DNSMessage.self))
        let timer = el.scheduleTask(in: timeout) { once.fail(DNSError.timeout) }
        ClientBootstrap(group: el)
            .connectTimeout(timeout)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(TCPResponseHandler(id: id, question: question, once: once))
                }
            }
            .connect(to: server)
            .whenComplete { result in
                switch result {
                case .failure(let e):
                    once.fail(DNSError.network("\(e)"))
                case .success(let ch):
                    once.promise.futureResult.whenComplete { _ in ch.close(promise: nil) }
                    var b = ch.allocator.buffer(capacity: query.count + 2)
                    b.writeInteger(UInt16(query.count))
                    b.writeBytes(query)
                    ch.writeAndFlush(b).whenFailure { once.fail(DNSError.network("\($0)")) }
                }
            }
        once.promise.futureResult.whenComplete { _ in timer.cancel() }
        return once.promise.futureResult
    }

    /// Whether `m` answers the query: a response with its ID and question
    /// (names compared without case, RFC 4343).
    static func answers(_ m: DNSMessage, id: UInt16, question: DNSQuestion) -> Bool {
        m.isResponse && m.id == id && m.questions.count == 1 && m.questions[0].name == question.name
            && m.questions[0].type == question.type
    }
}

/// A promise completed at most once (a timer and a response may race; all
/// on the channel's event loop).
final class OneShot<T: Sendable>: @unchecked Sendable {
    let promise: EventLoopPromise<T>
    var done = false
    init(_ promise: EventLoopPromise<T>) { self.promise = promise }

    func succeed(_ v: T) {
        promise.futureResult.eventLoop.execute {
            guard !self.done else { return }
            self.done = true
            self.promise.succeed(v)
        }
    }

    func fail(_ e: Error) {
        promise.futureResult.eventLoop.execute {
            guard !self.done else { return }
            self.done = true
            self.promise.fail(e)
        }
    }
}

final class UDPResponseHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let server: SocketAddress
    let id: UInt16
    let question: DNSQuestion
    let once: OneShot<DNSMessage>

    init(server: SocketAddress, id: UInt16, question: DNSQuestion, once: OneShot<DNSMessage>) {
        self.server = server; self.id = id; self.question = question; self.once = once
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == server else { return }  // not from the server asked
        let bytes = Array(envelope.data.readableBytesView)
        // Too short to carry our ID: not an answer to us.
        guard bytes.count >= 2, UInt16(bytes[0]) << 8 | UInt16(bytes[1]) == id else { return }
        do {
            let m = try DNSMessage.decode(bytes)
            guard DNSTransport.answers(m, id: id, question: question) else { return }
            once.succeed(m)
        } catch {
            once.fail(DNSError.malformed("\(error)"))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP port unreachable and the like: the server is not there.
        once.fail(DNSError.network("\(error)"))
    }
}

final class TCPResponseHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let id: UInt16
    let question: DNSQuestion
    let once: OneShot<DNSMessage>
    var buffer = ByteBuffer()

    init(id: UInt16, question: DNSQuestion, once: OneShot<DNSMessage>) { self.id = id; self.question = question; self.once = once }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= Int(length) + 2 else { return }
        buffer.moveReaderIndex(forwardBy: 2)
        let bytes = buffer.readBytes(length: Int(length)) ?? []
        do {
            let m = try DNSMessage.decode(bytes)
            guard DNSTransport.answers(m, id: id, question: question) else {
                once.fail(DNSError.malformed("the TCP answer is for another query"))
                return
            }
            once.succeed(m)
        } catch {
            once.fail(DNSError.malformed("\(error)"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        once.fail(DNSError.network("the server closed the TCP connection before answering"))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        once.fail(DNSError.network("\(error)"))
        context.close(promise: nil)
    }
}
