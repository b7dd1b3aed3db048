import DNS
import NIOCore
import NIOPosix
import NIOSSL

/// An MTA-STS policy (RFC 8461 §3.2): how a domain's MX hosts must be
/// reached. `enforce` requires TLS with a certificate valid for an MX host
/// matching `mx`; `testing` only asks for reports.
public struct MTASTSPolicy: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable { case enforce, testing, none }
    public var mode: Mode
    public var mx: [String]
    public var maxAge: Int64

    /// Parses the policy body: `key: value` lines, CRLF or LF (§3.2).
    public static func parse(_ text: String) -> MTASTSPolicy? {
        var version: String?, mode: Mode?, maxAge: Int64?, mx: [String] = []
        for raw in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "version": version = value
            case "mode": mode = Mode(rawValue: value)
            // §3.2: max_age up to 31557600 seconds.
            case "max_age": maxAge = Int64(value).map { min(max($0, 0), 31_557_600) }
            case "mx": mx.append(value.lowercased())
            default: continue
            }
        }
        guard version == "STSv1", let mode, let maxAge else { return nil }
        if mode != .none, mx.isEmpty { return nil }
        return MTASTSPolicy(mode: mode, mx: mx, maxAge: maxAge)
    }

    /// Whether an MX host name matches one of the patterns; `*.` stands for
    /// exactly one leftmost label (§4.1).
    public func matches(_ host: String) -> Bool {
        let h = host.lowercased().hasSuffix(".") ? String(host.lowercased().dropLast()) : host.lowercased()
        return mx.contains { p in
            if p.hasPrefix("*.") {
                let suffix = p.dropFirst(1)
                guard h.hasSuffix(suffix) else { return false }
                let label = h.dropLast(suffix.count)
                return !label.isEmpty && !label.contains(".")
            }
            return p == h
        }
    }

    /// The `id` of a `_mta-sts` TXT record (§3.1); nil when it is not one.
    public static func recordID(_ txt: String) -> String? {
        let fields = txt.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard fields.first == "v=STSv1" else { return nil }
        for f in fields.dropFirst() where f.hasPrefix("id=") {
            let id = f.dropFirst(3)
            if (1...32).contains(id.count), id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) { return String(id) }
        }
        return nil
    }
}

/// Finds and caches domains' MTA-STS policies: the `_mta-sts` TXT record,
/// then the policy over HTTPS from `mta-sts.DOMAIN` (§3.3: a verified
/// certificate, no redirects, 200 only, 64 KiB at most). Lives on the
/// queue's event loop.
final class MTASTSCache: @unchecked Sendable {
    struct Cached {
        var id: String
        var policy: MTASTSPolicy
        var expires: Int64
    }
    var policies: [String: Cached] = [:]
    static let maxBody = 65_536

    /// The policy that applies to `domain` now, or nil.
    func policy(for domain: String, resolver: DNSResolver, tls: NIOSSLContext?, port: Int, now: Int64,
                on loop: EventLoop) -> EventLoopFuture<MTASTSPolicy?> {
        let cached = policies[domain].flatMap { $0.expires > now ? $0 : nil }
        guard let name = DNSName("_mta-sts." + domain) else { return loop.makeSucceededFuture(nil) }
        return resolver.query(name, .txt, on: loop).flatMap { answer -> EventLoopFuture<MTASTSPolicy?> in
            let ids = answer.records(.txt).compactMap { $0.data.joinedText }.compactMap { MTASTSPolicy.recordID(String(decoding: $0, as: UTF8.self)) }
            // §3.1: none or several records: no (new) policy; a cached one still holds (§5.1).
            guard ids.count == 1, let id = ids.first else { return loop.makeSucceededFuture(cached?.policy) }
            if let c = cached, c.id == id { return loop.makeSucceededFuture(c.policy) }
            guard let tls else { return loop.makeSucceededFuture(cached?.policy) }
            return self.fetch(domain, resolver: resolver, tls: tls, port: port, on: loop).map { policy in
                guard let policy else { return cached?.policy }
                self.policies[domain] = Cached(id: id, policy: policy, expires: now + policy.maxAge)
                return policy
            }
        }.recover { _ in cached?.policy }
    }

    /// GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt; nil on any failure.
    func fetch(_ domain: String, resolver: DNSResolver, tls: NIOSSLContext, port: Int, on loop: EventLoop) -> EventLoopFuture<MTASTSPolicy?> {
        let host = "mta-sts." + domain
        guard let name = DNSName(host) else { return loop.makeSucceededFuture(nil) }
        return resolver.query(name, .a, on: loop).flatMap { answer -> EventLoopFuture<MTASTSPolicy?> in
            var address: SocketAddress?
            for r in answer.records(.a) {
                if case .a(let b) = r.data { var buf = ByteBuffer(); buf.writeBytes(b); address = try? SocketAddress(packedIPAddress: buf, port: port) }
            }
            guard let address else { return loop.makeSucceededFuture(nil) }
            let done = loop.makePromise(of: [UInt8].self)
            ClientBootstrap(group: loop)
                .connectTimeout(.seconds(10))
                .channelInitializer { ch in
                    do {
                        try ch.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: host))
                        try ch.pipeline.syncOperations.addHandler(HTTPFetchHandler(host: host, path: "/.well-known/mta-sts.txt", promise: done))
                        return ch.eventLoop.makeSucceededVoidFuture()
                    } catch { return ch.eventLoop.makeFailedFuture(error) }
                }
                .connect(to: address)
                .whenFailure { done.fail($0) }
            loop.scheduleTask(in: .seconds(30)) { done.fail(ChannelError.connectTimeout(.seconds(30))) }
            return done.futureResult.map { body in MTASTSPolicy.parse(String(decoding: body, as: UTF8.self)) }
                .recover { _ in nil }
        }
    }
}

/// A one-shot HTTP/1.1 GET (RFC 9112): the body of a 200 answer, with
/// Content-Length, chunked coding or read to close; nothing else is followed.
final class HTTPFetchHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let host: String, path: String
    let promise: EventLoopPromise<[UInt8]>
    var received: [UInt8] = []

    init(host: String, path: String, promise: EventLoopPromise<[UInt8]>) {
        self.host = host
        self.path = path
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: Postcell\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytesView
        if received.count > MTASTSCache.maxBody + 16_384 {
            promise.fail(ChannelError.inputClosed)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let body = HTTPFetchHandler.body(received) { promise.succeed(body) } else { promise.fail(ChannelError.inputClosed) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Servers often close without TLS close_notify; a body whose length
        // was declared and fully read is still whole.
        if case .uncleanShutdown = error as? NIOSSLError, HTTPFetchHandler.declaresLength(received), let body = HTTPFetchHandler.body(received) {
            promise.succeed(body)
        } else {
            promise.fail(error)
        }
        context.close(promise: nil)
    }

    static func declaresLength(_ bytes: [UInt8]) -> Bool {
        let head = String(decoding: bytes.prefix(16_384), as: UTF8.self).lowercased()
        return head.contains("\r\ncontent-length:") || head.contains("\r\ntransfer-encoding: chunked")
    }

    /// The body of a complete 200 response, else nil.
    static func body(_ bytes: [UInt8]) -> [UInt8]? {
        let sep: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == sep }) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        guard let status = head.first, status.split(separator: " ").count >= 2, status.split(separator: " ")[1] == "200" else { return nil }
        var fields: [String: String] = [:]
        for line in head.dropFirst() {
            if let c = line.firstIndex(of: ":") { fields[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces) }
        }
        var body = Array(bytes[(end + 4)...])
        if fields["transfer-encoding"]?.lowercased().contains("chunked") == true {
            var out: [UInt8] = []
            var i = 0
            while true {
                guard let lf = body[i...].firstIndex(of: 10) else { return nil }
                let sizeText = String(decoding: body[i..<lf], as: UTF8.self).split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
                guard let size = Int(sizeText, radix: 16) else { return nil }
                if size == 0 { break }
                guard lf + 1 + size <= body.count else { return nil }
                out += body[(lf + 1)..<(lf + 1 + size)]
                i = lf + 1 + size + 2
                guard i <= body.count else { return nil }
            }
            body = out
        } else if let l = fields["content-length"].flatMap({ Int($0) }) {
            guard body.count >= l else { return nil }
            body = Array(body.prefix(l))
        }
        return body.count <= MTASTSCache.maxBody ? body : nil
    }
}
