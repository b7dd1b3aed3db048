import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import Provisioning

/// A canned HTTP server on a unix socket: records each request and answers
/// with fixed bytes, optionally one byte per write.
final class CannedServer: Sendable {
    let path: String
    let channel: any Channel
    let requests = NIOLockedValueBox<[String]>([])

    init(reply: [UInt8], drip: Bool = false, silent: Bool = false) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pc-admin-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        path = dir + "/admin.sock"
        let requests = self.requests
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(CannedHandler(reply: reply, drip: drip, silent: silent, requests: requests))
                }
            }
            .bind(unixDomainSocketPath: path).get()
    }

    func close() async {
        try? await channel.close()
        try? FileManager.default.removeItem(atPath: DurableFileTestPath.parent(path))
    }
}

enum DurableFileTestPath {
    static func parent(_ p: String) -> String { String(p[..<p.lastIndex(of: "/")!]) }
}

final class CannedHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reply: [UInt8]
    let drip: Bool
    let silent: Bool
    let requests: NIOLockedValueBox<[String]>
    var received: [UInt8] = []
    var answered = false

    init(reply: [UInt8], drip: Bool, silent: Bool, requests: NIOLockedValueBox<[String]>) {
        self.reply = reply; self.drip = drip; self.silent = silent; self.requests = requests
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        received += b.readBytes(length: b.readableBytes) ?? []
        let text = String(decoding: received, as: UTF8.self)
        guard !answered, let end = text.range(of: "\r\n\r\n") else { return }
        let head = text[..<end.lowerBound].lowercased()
        var length = 0
        if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }) {
            length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        guard text.utf8.count - text[..<end.upperBound].utf8.count >= length else { return }
        answered = true
        requests.withLockedValue { $0.append(text) }
        if silent { return }
        if drip {
            for byte in reply { context.write(wrapOutboundOut(ByteBuffer(bytes: [byte])), promise: nil); context.flush() }
        } else {
            context.write(wrapOutboundOut(ByteBuffer(bytes: reply)), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: nil)
        context.close(promise: nil)
    }
}

@Suite struct EngineAdminClientTests {
    static let healthJSON = #"{"status":"ok","version":"0.1.0","uptimeSeconds":12,"suspended":false,"users":2,"domains":1,"queuedMessages":0}"#

    func reply(_ status: String, _ body: String, extra: String = "") -> [UInt8] {
        Array("HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\(extra)\r\n\(body)".utf8)
    }

    @Test func healthWithContentLength() async throws {
        let s = try await CannedServer(reply: reply("200 OK", Self.healthJSON))
        defer { Task { await s.close() } }
        let h = try await EngineAdminClient(socketPath: s.path).health()
        #expect(h == EngineAdmin.Health(status: "ok", version: "0.1.0", uptimeSeconds: 12, suspended: false, users: 2, domains: 1, queuedMessages: 0))
        let req = s.requests.withLockedValue { $0 }
        #expect(req.first?.hasPrefix("GET /v1/health HTTP/1.1\r\n") == true)
    }

    @Test func chunkedReplyDrippedByteByByte() async throws {
        let body = #"[{"address":"a@example.test","quotaBytes":1000,"addresses":["x@example.test"]},{"address":"b@example.test","addresses":[]}]"#
        let half = body.utf8.count / 2
        let b = Array(body.utf8)
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + String(half, radix: 16) + "\r\n" + String(decoding: b[..<half], as: UTF8.self) + "\r\n"
            + String(b.count - half, radix: 16) + "\r\n" + String(decoding: b[half...], as: UTF8.self) + "\r\n0\r\n\r\n"
        let s = try await CannedServer(reply: Array(chunked.utf8), drip: true)
        defer { Task { await s.close() } }
        let users = try await EngineAdminClient(socketPath: s.path).users()
        #expect(users == [EngineAdmin.User(address: "a@example.test", quotaBytes: 1000, addresses: ["x@example.test"]),
                          EngineAdmin.User(address: "b@example.test")])
    }

    @Test func closeDelimitedBody() async throws {
        let s = try await CannedServer(reply: Array("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[\"example.org\"]".utf8))
        defer { Task { await s.close() } }
        #expect(try await EngineAdminClient(socketPath: s.path).domains() == ["example.org"])
    }

    @Test func putSendsJSONAndReadsCreated() async throws {
        let s = try await CannedServer(reply: reply("201 Created", #"{"address":"a@example.test","addresses":[]}"#))
        defer { Task { await s.close() } }
        let (user, outcome) = try await EngineAdminClient(socketPath: s.path)
            .putUser("a@example.test", .init(passwordHash: "$scrypt$ln=14,r=8,p=1$c2FsdA$aGFzaA", quotaBytes: 5))
        #expect(outcome == .created && user.address == "a@example.test")
        let req = try #require(s.requests.withLockedValue { $0 }.first)
        #expect(req.hasPrefix("PUT /v1/users/a@example.test HTTP/1.1\r\n"))
        #expect(req.lowercased().contains("content-type: application/json"))
        #expect(req.contains(#""quotaBytes":5"#))
    }

    @Test func nullQuotaIsSentAsNull() async throws {
        let s = try await CannedServer(reply: reply("200 OK", "{}"))
        defer { Task { await s.close() } }
        try await EngineAdminClient(socketPath: s.path).setQuota("a b@example.test", quotaBytes: nil)
        let req = try #require(s.requests.withLockedValue { $0 }.first)
        #expect(req.hasPrefix("PUT /v1/users/a%20b@example.test/quota HTTP/1.1\r\n"))
        #expect(req.hasSuffix(#"{"quotaBytes":null}"#))
    }

    @Test func errorsCarryStatusAndText() async throws {
        let s = try await CannedServer(reply: reply("409 Conflict", #"{"error":"domain example.org is still used by 2 users"}"#))
        defer { Task { await s.close() } }
        do {
            try await EngineAdminClient(socketPath: s.path).deleteDomain("example.org")
            Issue.record("no error")
        } catch let e as EngineAdminError {
            #expect(e.code == .http && e.status == 409)
            #expect(e.message == "domain example.org is still used by 2 users")
        }
    }

    @Test func missingSocketIsUnreachable() async throws {
        do {
            _ = try await EngineAdminClient(socketPath: "/nonexistent/admin.sock").health()
            Issue.record("no error")
        } catch let e as EngineAdminError {
            #expect(e.code == .unreachable)
        }
    }

    @Test func silentServerTimesOut() async throws {
        let s = try await CannedServer(reply: [], silent: true)
        defer { Task { await s.close() } }
        let start = Date()
        do {
            _ = try await EngineAdminClient(socketPath: s.path, timeout: .milliseconds(300)).usage()
            Issue.record("no error")
        } catch let e as EngineAdminError {
            #expect(e.code == .timeout)
        }
        // Without the timeout this would wait forever; the bound only
        // catches that, not speed (a loaded CI machine took 3.3 s).
        #expect(Date().timeIntervalSince(start) < 30)
    }

    @Test func garbageIsABadReply() async throws {
        let s = try await CannedServer(reply: reply("200 OK", "not json"))
        defer { Task { await s.close() } }
        do {
            _ = try await EngineAdminClient(socketPath: s.path).export()
            Issue.record("no error")
        } catch let e as EngineAdminError {
            #expect(e.code == .badReply)
        }
    }

    @Test func usageAndExportDecode() throws {
        let u = try JSONDecoder().decode(EngineAdmin.Usage.self, from: Data(#"{"cellBytes":10,"users":[{"address":"a@x.test","usedBytes":10,"messages":1}]}"#.utf8))
        #expect(u.cellQuotaBytes == nil && u.users.first?.quotaBytes == nil)
        let e = try JSONDecoder().decode(EngineAdmin.ExportResult.self, from: Data(#"{"path":"exports/x.tar","bytes":512}"#.utf8))
        #expect(e.path == "exports/x.tar")
    }
}
