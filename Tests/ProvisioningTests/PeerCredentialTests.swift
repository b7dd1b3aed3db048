import Foundation
import Testing
@testable import Provisioning

/// The admin client insists on the cell's uid as the socket's peer.
@Suite struct PeerCredentialTests {
    /// A listening unix socket of our own (our uid), accepting nothing.
    func listen(_ path: String) throws -> CInt {
        let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in raw.copyBytes(from: Array(path.utf8)); raw[path.utf8.count] = 0 }
        let rc = withUnsafePointer(to: &addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(rc == 0)
        #expect(Glibc.listen(fd, 4) == 0)
        return fd
    }

    @Test func refusesAPeerUnderAnotherUID() async throws {
        let path = NSTemporaryDirectory() + "peer-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let fd = try listen(path)
        defer { close(fd); unlink(path) }
        // Our own uid is accepted...
        let ok = try UnixHTTPTransport.connectChecked(path, peerUID: getuid())
        close(ok)
        // ...any other is refused before a request is sent.
        #expect(throws: UnixHTTPTransport.Failure.self) { _ = try UnixHTTPTransport.connectChecked(path, peerUID: getuid() &+ 4242) }
        let client = EngineAdminClient(socketPath: path, timeout: .seconds(1), expectedPeerUID: getuid() &+ 4242)
        await #expect(throws: EngineAdminError.self) { _ = try await client.health() }
    }
}
