import Dispatch
import Logging
import MailCore
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The admin API's listener (docs/ADMIN-API.md): HTTP/1.1 on a unix socket
/// in the data directory, on the engine's event loop. A thin driver: it
/// gathers each request (refusing bodies over 1 MiB with 413), runs the
/// router on the engine's control queue, where configuration changes and
/// reloads go one at a time, and writes the reply back on the event loop.
///
/// Reads untrusted input: HTTP from whoever can open the socket (mode 0660;
/// the file system decides who that is). Needs no privilege.
final class AdminServer: Sendable {
    let channel: Channel
    /// The socket's full path.
    let path: String

    init(channel: Channel, path: String) {
        self.channel = channel
        self.path = path
    }

    /// Binds `path` (a stale socket file from an earlier run is removed
    /// first) and makes it mode 0660.
    static func bind(path: String, group: EventLoopGroup, router: AdminRouter, queue: DispatchQueue, logger: Logger) throws -> AdminServer {
        try DurableFile.makeDirectory(DurableFile.parentDirectory(of: path))
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(router: router, queue: queue, logger: logger))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
        guard chmod(path, 0o660) == 0 else {
            let e = errno
            channel.close(promise: nil)
            throw FileSystemError("chmod", path: path, errno: e)
        }
        return AdminServer(channel: channel, path: path)
    }

    func close() {
        try? channel.close().wait()
        unlink(path)
    }
}

/// One admin connection: request head and body in, one reply out per
/// request (keep-alive as the client asks; HTTPServerPipelineHandler keeps
/// pipelined requests in order).
final class AdminHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let router: AdminRouter
    let queue: DispatchQueue
    let logger: Logger
    var head: HTTPRequestHead?
    var body: [UInt8] = []
    var tooLarge = false

    init(router: AdminRouter, queue: DispatchQueue, logger: Logger) {
        self.router = router
        self.queue = queue
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
            // A declared length over the limit is refused without keeping a byte.
            tooLarge = h.headers.first(name: "content-length").flatMap { Int($0) }.map { $0 > AdminRouter.maxBodyBytes } ?? false
        case .body(var chunk):
            guard !tooLarge else { return }
            if body.count + chunk.readableBytes > AdminRouter.maxBodyBytes {
                tooLarge = true
                body = []
            } else {
                body += chunk.readBytes(length: chunk.readableBytes) ?? []
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let keepAlive = head.isKeepAlive && !tooLarge
            if tooLarge {
                // The body was read and dropped; the connection closes after the reply.
                respond(AdminResponse.error(413, "body over 1 MiB"), keepAlive: false, context: context)
                return
            }
            let request = AdminRequest(method: head.method.rawValue, target: head.uri, body: body)
            body = []
            let promise = context.eventLoop.makePromise(of: AdminResponse.self)
            let router = self.router
            queue.async { promise.succeed(router.handle(request)) }
            // The reply is written back on this connection's event loop.
            let here = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            promise.futureResult.whenSuccess { response in
                let (handler, context) = here.value
                if request.method != "GET" {
                    handler.logger.info("admin", metadata: ["request": "\(request.method) \(request.target)", "status": "\(response.status)"])
                }
                handler.respond(response, keepAlive: keepAlive, context: context)
            }
        }
    }

    func respond(_ response: AdminResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        if !response.body.isEmpty { headers.add(name: "content-type", value: "application/json") }
        headers.add(name: "content-length", value: "\(response.body.count)")
        if !response.allow.isEmpty { headers.add(name: "allow", value: response.allow.joined(separator: ", ")) }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
