import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 exchange over a unix socket: connect, send one request with
/// `Connection: close`, collect the reply (NIOHTTP1's decoder handles
/// Content-Length, chunked and close-delimited bodies), close.
///
/// Untrusted input: the reply bytes of a cell's engine. The body is capped at
/// `maxBodyBytes`; the whole exchange at `timeout`.
struct UnixHTTPTransport: Sendable {
    struct Response: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]
    }

    enum Failure: Error, Sendable {
        case unreachable(String)
        case timeout
        case tooLarge
        case closedEarly
    }

    var socketPath: String
    var timeout: TimeAmount
    var maxBodyBytes: Int
    var group: any EventLoopGroup
    var expectedPeerUID: UInt32?

    func send(method: HTTPMethod, target: String, body: [UInt8]?) async throws -> Response {
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: Response.self)
        let limit = maxBodyBytes
        let deadline = NIODeadline.now() + timeout
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise, maxBodyBytes: limit))
                }
            }
        let channel: any Channel
        do {
            if let uid = expectedPeerUID {
                let fd = try UnixHTTPTransport.connectChecked(socketPath, peerUID: uid)
                do { channel = try await bootstrap.withConnectedSocket(fd).get() } catch { close(fd); throw error }
            } else {
                channel = try await bootstrap.connect(unixDomainSocketPath: socketPath).get()
            }
        } catch {
            promise.fail(Failure.unreachable("\(error)"))
            throw Failure.unreachable("\(error)")
        }
        let timer = eventLoop.scheduleTask(deadline: deadline) {
            promise.fail(Failure.timeout)
            channel.close(promise: nil)
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target)
        head.headers.add(name: "Host", value: "cell")
        head.headers.add(name: "Connection", value: "close")
        head.headers.add(name: "Accept", value: "application/json")
        if let body {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: String(body.count))
        } else if method == .PUT || method == .POST {
            head.headers.add(name: "Content-Length", value: "0")
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body, !body.isEmpty {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        do {
            let response = try await promise.futureResult.get()
            timer.cancel()
            channel.close(promise: nil)
            return response
        } catch {
            timer.cancel()
            channel.close(promise: nil)
            throw error
        }
    }
}

/// Collects one response and completes the promise at its end (or fails it
/// when the connection closes first).
private final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<UnixHTTPTransport.Response>
    private let maxBodyBytes: Int
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var done = false

    init(promise: EventLoopPromise<UnixHTTPTransport.Response>, maxBodyBytes: Int) {
        self.promise = promise
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        switch unwrapInboundIn(data) {
        case .head(let h):
            // 1xx interim replies are followed by the real one.
            if h.status.code >= 100 && h.status.code < 200 { return }
            head = h
        case .body(var buffer):
            guard head != nil else { return }
            if body.count + buffer.readableBytes > maxBodyBytes {
                finish(.failure(UnixHTTPTransport.Failure.tooLarge), context: context)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let h = head else { return }
            let headers = h.headers.map { ($0.name, $0.value) }
            finish(.success(.init(status: Int(h.status.code), headers: headers, body: body)), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(UnixHTTPTransport.Failure.closedEarly), context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(UnixHTTPTransport.Failure.unreachable("\(error)")), context: context)
        context.close(promise: nil)
    }

    private func finish(_ result: Result<UnixHTTPTransport.Response, any Error>, context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        promise.completeWith(result)
        if case .failure = result { context.close(promise: nil) }
    }
}

extension UnixHTTPTransport {
    /// Connects to a unix socket and checks who is listening (SO_PEERCRED,
    /// unix(7)): a peer under any other uid is refused before a byte goes out.
    static func connectChecked(_ path: String, peerUID: UInt32) throws -> CInt {
        let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure.unreachable("socket: errno \(errno)") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(fd); throw Failure.unreachable("socket path too long") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { let e = errno; close(fd); throw Failure.unreachable("connect: \(String(cString: strerror(e)))") }
        // struct ucred (unix(7)): pid, uid, gid; Glibc exposes it only
        // under _GNU_SOURCE, so its layout is spelled out here.
        struct PeerCredentials { var pid: Int32 = 0; var uid: UInt32 = 0; var gid: UInt32 = 0 }
        var cred = PeerCredentials()
        var len = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0, cred.uid == peerUID else {
            close(fd)
            throw Failure.unreachable("the socket's peer is not the cell (uid \(cred.uid), expected \(peerUID))")
        }
        return fd
    }
}
