import DNS
import NIOCore
import SMTP

/// One server to try for a destination: an MX host and its addresses.
public struct MXHost: Sendable, Hashable {
    public var name: String
    public var preference: UInt16
    public var addresses: [SocketAddress]
    /// Both the MX answer and this host's address answers were DNSSEC-validated (DANE needs both).
    public var secure: Bool
}

/// Where mail for a domain goes, or why it cannot.
public enum MXRoute: Sendable, Hashable {
    case hosts([MXHost])
    /// A 5xx when no delivery can ever work (no such domain, null MX), else 4xx.
    case failed(SMTPReply)
}

/// MX resolution of RFC 5321 §5.1: MX records by preference (equal ones in
/// random order), the domain itself when it has none (the implicit MX), a
/// null MX (RFC 7505) refusing mail, then each host's addresses.
public struct MXResolver: Sendable {
    public let resolver: DNSResolver
    public var port: Int
    public var ipv6: Bool
    /// Addresses tried per attempt at most, over all hosts.
    public var maxAddresses: Int

    public init(resolver: DNSResolver, port: Int = 25, ipv6: Bool = true, maxAddresses: Int = 5) {
        self.resolver = resolver
        self.port = port
        self.ipv6 = ipv6
        self.maxAddresses = maxAddresses
    }

    public func route(_ domain: String, on loop: EventLoop, shuffle: @escaping @Sendable ([MXHost]) -> [MXHost] = { $0.shuffled() }) -> EventLoopFuture<MXRoute> {
        // An address literal (RFC 5321 §4.1.3) is its own host.
        if domain.hasPrefix("["), domain.hasSuffix("]") {
            var text = String(domain.dropFirst().dropLast())
            if text.lowercased().hasPrefix("ipv6:") { text = String(text.dropFirst(5)) }
            guard let a = try? SocketAddress(ipAddress: text, port: port) else {
                return loop.makeSucceededFuture(.failed(SMTPReply(553, "5.1.3", "bad address literal \(domain)")))
            }
            return loop.makeSucceededFuture(.hosts([MXHost(name: text, preference: 0, addresses: [a], secure: false)]))
        }
        guard let name = DNSName(domain), !name.labels.isEmpty else {
            return loop.makeSucceededFuture(.failed(SMTPReply(553, "5.1.2", "bad destination domain \(domain)")))
        }
        return resolver.query(name, .mx, on: loop).flatMap { answer -> EventLoopFuture<MXRoute> in
            switch answer.rcode {
            case .nxDomain:
                return loop.makeSucceededFuture(.failed(SMTPReply(550, "5.1.2", "domain \(domain) does not exist")))
            case .noError: break
            default:
                return loop.makeSucceededFuture(.failed(SMTPReply(451, "4.4.3", "DNS error looking up MX of \(domain): \(answer.rcode)")))
            }
            var mx: [(UInt16, DNSName)] = []
            for r in answer.records(.mx) { if case .mx(let p, let x) = r.data { mx.append((p, x)) } }
            // RFC 7505 §3: a single MX whose exchange is "." says no mail is accepted.
            if mx.count == 1, mx[0].1.labels.isEmpty {
                return loop.makeSucceededFuture(.failed(SMTPReply(556, "5.1.10", "domain \(domain) accepts no mail (null MX)")))
            }
            let implicit = mx.isEmpty
            if implicit { mx = [(0, name)] }
            let hosts = mx.filter { !$0.1.labels.isEmpty }.map { MXHost(name: $0.1.text, preference: $0.0, addresses: [], secure: answer.authenticated) }
            // Random order within one preference (RFC 5321 §5.1).
            var ordered: [MXHost] = []
            for p in Set(hosts.map(\.preference)).sorted() { ordered += shuffle(hosts.filter { $0.preference == p }) }
            return addresses(ordered, on: loop).map { resolved, temporary in
                let usable = resolved.filter { !$0.addresses.isEmpty }
                if usable.isEmpty {
                    if let t = temporary { return .failed(SMTPReply(451, "4.4.3", t)) }
                    if implicit { return .failed(SMTPReply(550, "5.1.2", "domain \(domain) has no MX and no address")) }
                    return .failed(SMTPReply(451, "4.4.4", "no MX host of \(domain) has an address"))
                }
                return .hosts(trim(usable))
            }
        }.flatMapErrorThrowing { error in
            .failed(SMTPReply(451, "4.4.3", "DNS error looking up MX of \(domain): \(error)"))
        }
    }

    /// Looks up each host's A (and AAAA) records together.
    func addresses(_ hosts: [MXHost], on loop: EventLoop) -> EventLoopFuture<([MXHost], String?)> {
        let types: [DNSType] = ipv6 ? [.a, .aaaa] : [.a]
        var lookups: [EventLoopFuture<(Int, DNSAnswer?, String?)>] = []
        for (i, h) in hosts.enumerated() {
            guard let n = DNSName(h.name) else { continue }
            for t in types {
                lookups.append(resolver.query(n, t, on: loop).map { (i, $0, nil) }.recover { (i, nil, "\(h.name) \(t): \($0)") })
            }
        }
        let port = self.port
        return EventLoopFuture.whenAllSucceed(lookups, on: loop).map { results in
            var out = hosts
            var temporary: String?
            var validated = Array(repeating: true, count: hosts.count)
            for (i, answer, error) in results {
                guard let answer else { temporary = error; validated[i] = false; continue }
                if answer.rcode != .noError && answer.rcode != .nxDomain {
                    temporary = "\(hosts[i].name) \(answer.question.type): \(answer.rcode)"
                    validated[i] = false
                    continue
                }
                if !answer.authenticated { validated[i] = false }
                for r in answer.records() {
                    switch r.data {
                    case .a(let b), .aaaa(let b):
                        var buf = ByteBuffer(); buf.writeBytes(b)
                        if let a = try? SocketAddress(packedIPAddress: buf, port: port) { out[i].addresses.append(a) }
                    default: break
                    }
                }
            }
            for i in out.indices { out[i].secure = out[i].secure && validated[i] }
            return (out, temporary)
        }
    }

    /// At most `maxAddresses` addresses over the hosts, IPv4 before IPv6 for each.
    func trim(_ hosts: [MXHost]) -> [MXHost] {
        var left = maxAddresses
        var out: [MXHost] = []
        for var h in hosts where left > 0 {
            h.addresses = Array(h.addresses.sorted { a, _ in a.protocol == .inet }.prefix(left))
            left -= h.addresses.count
            out.append(h)
        }
        return out
    }
}

extension DNSName {
    /// Presentation form without the final dot.
    var text: String {
        let d = description
        return d.hasSuffix(".") ? String(d.dropLast()) : d
    }
}
