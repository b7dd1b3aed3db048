import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The host's listening TCP sockets of one cell. The backend binds them once
/// and keeps them open across restarts of the cell, so mail clients never see
/// a port change and connections made while the cell restarts wait in the
/// backlog. The i-th listener of the spec is fd 3+i in the cell.
struct ListenerSockets {
    private(set) var bound: [ListenerSocket: Int32] = [:]

    struct BindError: Error, CustomStringConvertible {
        var description: String
    }

    /// Binds what `wanted` adds, closes what it no longer has; returns the
    /// descriptors in `wanted`'s order.
    mutating func update(_ wanted: [ListenerSocket], backlog: Int32 = 1024) throws -> [Int32] {
        for (l, fd) in bound where !wanted.contains(l) {
            close(fd)
            bound[l] = nil
        }
        for l in wanted where bound[l] == nil {
            bound[l] = try Self.bind(host: l.host, port: l.port, backlog: backlog)
        }
        return wanted.map { bound[$0]! }
    }

    mutating func closeAll() {
        for fd in bound.values { close(fd) }
        bound = [:]
    }

    /// A TCP socket bound with SO_REUSEADDR and listening, close-on-exec in
    /// this process (the spawner hands the cell its own copy).
    static func bind(host: String, port: Int, backlog: Int32) throws -> Int32 {
        guard (0...65535).contains(port) else { throw BindError(description: "bad port \(port)") }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let name = host.isEmpty || host == "*" ? nil : host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let rc = getaddrinfo(name, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw BindError(description: "\(host):\(port): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        let ai = first.pointee
        let fd = socket(ai.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BindError(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if Glibc.bind(fd, ai.ai_addr, ai.ai_addrlen) != 0 || listen(fd, backlog) != 0 {
            let e = errno
            close(fd)
            throw BindError(description: "bind \(host):\(port): \(String(cString: strerror(e)))")
        }
        return fd
    }

    /// The port a socket is bound to (tests bind port 0).
    static func localPort(_ fd: Int32) -> Int? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { return nil }
        return withUnsafePointer(to: &storage) { p -> Int? in
            switch Int32(p.pointee.ss_family) {
            case AF_INET: return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            case AF_INET6: return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            default: return nil
            }
        }
    }
}
