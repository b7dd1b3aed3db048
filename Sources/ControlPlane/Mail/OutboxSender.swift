import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SMTP

/// Sends the control plane's outbox (`STATE/outbox/*.eml`, written durably
/// by `Mailer`) through the provider's relay: one SMTP transaction per file.
/// A file is removed once the relay accepted it (250), kept for the next
/// round after a temporary failure (4xx, no connection), and moved to
/// `outbox/failed/` after a permanent one (5xx). Without a relay the files
/// stay where they are (the demo set-up logs the links instead).
public final class OutboxSender: Sendable {
    public struct Relay: Sendable {
        public var host: String
        public var port: Int
        /// STARTTLS when the relay offers it (certificate not verified: the
        /// relay is the provider's own, normally on loopback).
        public var startTLS: Bool
        public init(host: String, port: Int, startTLS: Bool = true) { self.host = host; self.port = port; self.startTLS = startTLS }

        /// `HOST:PORT` or `[IPv6]:PORT`.
        public static func parse(_ text: String) -> Relay? {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return host.isEmpty ? nil : Relay(host: host, port: port)
        }
    }

    let outbox: String
    let relay: Relay
    let heloName: String
    let group: any EventLoopGroup
    let logger: Logger

    public init(outbox: String, relay: Relay, heloName: String, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "postcell.outbox")) {
        self.outbox = outbox; self.relay = relay; self.heloName = heloName; self.group = group; self.logger = logger
    }

    /// Sends what is in the outbox now; returns how many files were accepted.
    @discardableResult
    public func runOnce() async -> Int {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: outbox)) ?? []).filter { $0.hasSuffix(".eml") }.sorted()
        var sent = 0
        for name in names {
            let path = outbox + "/" + name
            guard let data = FileManager.default.contents(atPath: path), let envelope = OutboxSender.envelope(data) else {
                move(path, name, reason: "unreadable or without From:/To:")
                continue
            }
            do {
                let outcome = try await send(from: envelope.from, to: envelope.to, message: data)
                switch outcome {
                case .delivered:
                    try? FileManager.default.removeItem(atPath: path)
                    sent += 1
                case .deferred(let r):
                    logger.notice("relay deferred \(name): \(r.code)")
                case .failed(let r):
                    move(path, name, reason: "relay refused it: \(r.code)")
                }
            } catch {
                logger.notice("relay \(relay.host):\(relay.port) unreachable: \(error)")
                break
            }
        }
        return sent
    }

    /// Runs every `interval` until cancelled.
    public func run(interval: Duration = .seconds(5)) async {
        while !Task.isCancelled {
            await runOnce()
            try? await Task.sleep(for: interval)
        }
    }

    func move(_ path: String, _ name: String, reason: String) {
        let failed = outbox + "/failed"
        try? FileManager.default.createDirectory(atPath: failed, withIntermediateDirectories: true)
        try? FileManager.default.moveItem(atPath: path, toPath: failed + "/" + name)
        logger.error("outbox \(name) moved to failed/: \(reason)")
    }

    /// The envelope of a file `Mailer` wrote: the addresses of its From:
    /// and To: fields (one each).
    static func envelope(_ data: Data) -> (from: String, to: String)? {
        let text = String(decoding: data.prefix(8192), as: UTF8.self)
        var from: String?, to: String?
        for line in text.components(separatedBy: "\r\n") {
            if line.isEmpty { break }
            let lower = line.lowercased()
            if lower.hasPrefix("from:") { from = address(String(line.dropFirst(5))) }
            if lower.hasPrefix("to:") { to = address(String(line.dropFirst(3))) }
        }
        guard let from, let to else { return nil }
        return (from, to)
    }

    static func address(_ field: String) -> String? {
        var s = field.trimmingCharacters(in: .whitespaces)
        if let open = s.lastIndex(of: "<"), let close = s.lastIndex(of: ">"), open < close { s = String(s[s.index(after: open)..<close]) }
        guard s.contains("@"), !s.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" }) else { return nil }
        return s
    }

    func send(from: String, to: String, message: Data) async throws -> SMTPClientSession.Outcome {
        let loop = group.next()
        let promise = loop.makePromise(of: SMTPClientSession.Outcome.self)
        let tls: SMTPClientTLS?
        if relay.startTLS {
            var c = TLSConfiguration.makeClientConfiguration()
            c.certificateVerification = .none
            tls = SMTPClientTLS(context: try NIOSSLContext(configuration: c), serverHostname: nil)
        } else { tls = nil }
        let eightBit = message.contains { $0 >= 0x80 }
        let transaction = SMTPClientSession.Transaction(id: "outbox", from: from, recipients: [to], size: message.count,
                                                        eightBit: eightBit, needsSMTPUTF8: false)
        let helo = heloName
        let session = SMTPClientSession(configuration: .init(heloName: helo, tls: relay.startTLS ? .opportunistic : .none))
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                let delegate = OneMessage(transaction: transaction, body: ByteBuffer(bytes: message), loop: channel.eventLoop, promise: promise)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SMTPClientHandler(session: session, delegate: delegate, tls: tls, timeout: .seconds(30)))
                }
            }
        let channel: Channel
        do { channel = try await bootstrap.connect(host: relay.host, port: relay.port).get() } catch {
            promise.fail(error)
            throw error
        }
        defer { channel.close(promise: nil) }
        return try await promise.futureResult.get()
    }

    /// Feeds one message to the client state machine and reports its outcome.
    final class OneMessage: SMTPClientDelegate {
        let transaction: SMTPClientSession.Transaction
        var body: ByteBuffer?
        let loop: any EventLoop
        let promise: EventLoopPromise<SMTPClientSession.Outcome>
        var outcome: SMTPClientSession.Outcome?

        init(transaction: SMTPClientSession.Transaction, body: ByteBuffer, loop: any EventLoop, promise: EventLoopPromise<SMTPClientSession.Outcome>) {
            self.transaction = transaction; self.body = body; self.loop = loop; self.promise = promise
        }
        func nextTransaction(_ session: SMTPClientSession) -> EventLoopFuture<(SMTPClientSession.Transaction, ByteBuffer)?> {
            guard let b = body else { return loop.makeSucceededFuture(nil) }
            body = nil
            return loop.makeSucceededFuture((transaction, b))
        }
        func finished(_ result: SMTPClientSession.TransactionResult, session: SMTPClientSession) {
            outcome = result.outcomes.first?.outcome
        }
        func ended(_ failure: SMTPClientSession.Failure?, session: SMTPClientSession) {
            if let outcome { promise.succeed(outcome) }
            else if let failure { promise.succeed(failure.permanent ? .failed(failure.reply) : .deferred(failure.reply)) }
            else { promise.succeed(.deferred(SMTPReply(421, "4.4.2", "connection closed"))) }
        }
    }
}
