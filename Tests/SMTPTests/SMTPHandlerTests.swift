import Logging
import MailCore
import NIOCore
import NIOEmbedded
import SMTP
import Testing

/// A backend that accepts everything for example.test and keeps messages in memory.
final class MemoryBackend: SMTPServerBackend, @unchecked Sendable {
    var messages: [[UInt8]] = []
    var role: SMTPRole = .mx
    func sessionConfiguration(listener: String, isTLS: Bool) -> SMTPSessionConfiguration {
        SMTPSessionConfiguration(hostname: "mx.example.test", role: role, tlsAvailable: false, maxMessageBytes: 200)
    }
    func idleTimeoutSeconds() -> Int64 { 300 }
    func authenticate(user: String, password: String, context: SMTPSessionContext, eventLoop: EventLoop) -> EventLoopFuture<AuthVerdict> {
        eventLoop.makeSucceededFuture(.invalid)
    }
    func checkSender(_ path: ReversePath, parameters: MailParameters, context: SMTPSessionContext) -> SMTPReply? { nil }
    func checkRecipient(_ address: MailAddress, transaction: SMTPTransaction, context: SMTPSessionContext) -> SMTPReply? {
        address.domain == "example.test" ? nil : .relayDenied
    }
    func openMessage(_ transaction: SMTPTransaction, context: SMTPSessionContext, eventLoop: EventLoop) -> SMTPMessageSink {
        Sink(backend: self, eventLoop: eventLoop)
    }

    final class Sink: SMTPMessageSink {
        let backend: MemoryBackend
        let eventLoop: EventLoop
        var bytes: [UInt8] = []
        init(backend: MemoryBackend, eventLoop: EventLoop) { self.backend = backend; self.eventLoop = eventLoop }
        func append(_ b: inout ByteBuffer) { bytes += b.readableBytesView }
        func commit(_ transaction: SMTPTransaction) -> EventLoopFuture<SMTPReply> {
            backend.messages.append(bytes)
            return eventLoop.makeSucceededFuture(SMTPReply(250, "2.0.0", "Ok: queued as \(backend.messages.count)"))
        }
        func discard() {}
    }
}

@Suite struct SMTPHandlerTests {
    func run(_ input: [String], backend: MemoryBackend = MemoryBackend(), dripFeed: Bool = false) throws -> (String, MemoryBackend) {
        let channel = EmbeddedChannel()
        let handler = SMTPServerHandler(backend: backend, listener: "mx", client: SMTPClient(host: "192.0.2.1", port: 1, viaProxy: false),
                                        isTLS: false, tlsContext: nil, sessionID: "t", logger: Logger(label: "test"))
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
        for chunk in input {
            let bytes = Array(chunk.utf8)
            if dripFeed {
                for b in bytes { try channel.writeInbound(ByteBuffer(bytes: [b])) }
            } else {
                try channel.writeInbound(ByteBuffer(bytes: bytes))
            }
            channel.embeddedEventLoop.run()
        }
        var out = ""
        while var b = try channel.readOutbound(as: ByteBuffer.self) { out += b.readString(length: b.readableBytes) ?? "" }
        _ = try? channel.finish()
        return (out, backend)
    }

    static let transaction = "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n"

    /// RFC 5321 §4.5.2: leading dots are removed; content ends at CRLF.CRLF.
    @Test(arguments: [false, true])
    func dataTransparency(drip: Bool) throws {
        let (out, backend) = try run([Self.transaction, "Subject: x\r\n\r\n..leading dot\r\n.\r\n", "QUIT\r\n"], dripFeed: drip)
        #expect(backend.messages == [Array("Subject: x\r\n\r\n.leading dot\r\n".utf8)])
        #expect(out.contains("354 End data"))
        #expect(out.contains("250 2.0.0 Ok: queued as 1"))
        #expect(out.hasSuffix("221 2.0.0 Bye\r\n"))
    }

    /// Bare LF is taken as CRLF, and LF.LF never ends the data (SMTP smuggling).
    @Test func smugglingIsNotAnEnd() throws {
        let smuggled = "Subject: s\r\n\r\nhi\n.\nMAIL FROM:<evil@b.example>\r\nRCPT TO:<u@example.test>\r\n.\r\n"
        let (out, backend) = try run([Self.transaction, smuggled])
        #expect(backend.messages.count == 1)
        #expect(backend.messages[0] == Array("Subject: s\r\n\r\nhi\r\n\r\nMAIL FROM:<evil@b.example>\r\nRCPT TO:<u@example.test>\r\n".utf8))
        #expect(out.components(separatedBy: "250 2.0.0 Ok: queued").count == 2)
    }

    /// RFC 2920: a pipelined group gets all its replies, in order, in one write.
    @Test func pipelining() throws {
        let (out, backend) = try run(["EHLO c\r\n", "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nRCPT TO:<x@other.example>\r\nDATA\r\n",
                                      "body\r\n.\r\nQUIT\r\n"])
        let codes = out.split(separator: "\r\n").map { String($0.prefix(3)) }
        #expect(codes.suffix(6) == ["250", "250", "550", "354", "250", "221"])
        #expect(backend.messages == [Array("body\r\n".utf8)])
    }

    @Test func bdatKeepsBytesExactly() throws {
        let (out, backend) = try run(["EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\n",
                                      "BDAT 7\r\na\rb\n.\r\n", "BDAT 0 LAST\r\n"])
        #expect(backend.messages == [Array("a\rb\n.\r\n".utf8)])
        #expect(out.contains("250 2.0.0 7 octets received"))
    }

    @Test func oversizedDataIsRefusedAndSessionContinues() throws {
        let big = String(repeating: "x", count: 300)
        let (out, backend) = try run([Self.transaction, big + "\r\n.\r\n", "NOOP\r\n"])
        #expect(backend.messages.isEmpty)
        #expect(out.contains("552 5.3.4"))
        #expect(out.hasSuffix("250 2.0.0 Ok\r\n"))
    }

    @Test func longLinesAndNULs() throws {
        let long = String(repeating: "A", count: 5000)
        let (out, _) = try run(["EHLO c\r\n", "NOOP " + long + "\r\n", "NO\u{0}OP\r\n", "NOOP\r\n"])
        #expect(out.contains("500 5.5.2 Line too long"))
        #expect(out.contains("500 5.5.2 NUL byte in command"))
        #expect(out.hasSuffix("250 2.0.0 Ok\r\n"))
    }
}
