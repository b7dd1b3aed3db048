import NIOCore
import NIOPosix
import Synchronization

/// Where and how the engine asks: the recursive resolvers it trusts (in a
/// cell, a resolver of the host or the provider; in tests, one on loopback).
public struct DNSResolverConfiguration: Sendable {
    public var servers: [SocketAddress]
    /// How long one server has to answer one try.
    public var timeout: TimeAmount = .seconds(2)
    /// Rounds over the servers before giving up.
    public var attempts = 2
    /// The EDNS0 UDP payload size offered (RFC 6891 §6.2.5; 1232 avoids fragmentation).
    public var udpPayloadSize: UInt16 = 1232
    /// Whether the servers validate DNSSEC and the path to them is trusted,
    /// so their AD bit means the answer was validated (RFC 6698 §4.1 and
    /// RFC 7672 §2.1 depend on it). Off: no answer counts as validated.
    public var trustAD = false
    /// Answers kept in the cache at most.
    public var cacheEntries = 2048
    /// The longest a positive answer is kept; negative ones at most 1 hour (RFC 2308 §5).
    public var maxTTL: UInt32 = 86_400

    public init(servers: [SocketAddress]) { self.servers = servers }

    /// A server's address: `HOST:PORT`, `[IPv6]:PORT`, or an address alone
    /// (port 53); nil when it is not one.
    public static func server(_ text: String) -> SocketAddress? {
        var host = text, port = 53
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()) else { return nil }
                port = p
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            guard let p = Int(text[text.index(after: colon)...]) else { return nil }
            host = String(text[..<colon]); port = p
        }
        guard (0...65535).contains(port) else { return nil }
        return try? SocketAddress(ipAddress: host, port: port)
    }

    /// The `nameserver` lines of a resolv.conf(5) text, in order.
    public static func servers(resolvConf text: String) -> [SocketAddress] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { return nil }
            return server(String(words[1]))
        }
    }
}

public enum DNSError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No server answered in time (a temporary error for SPF, DKIM, DMARC and the queue).
    case timeout
    case network(String)
    /// The server's answer could not be read.
    case malformed(String)

    public var description: String {
        switch self {
        case .timeout: return "DNS timeout"
        case .network(let s): return "DNS network error: \(s)"
        case .malformed(let s): return "malformed DNS answer: \(s)"
        }
    }
}

/// An answer to one question: the response code and sections as the server
/// gave them, whether it was validated (`authenticated`), and how it came.
public struct DNSAnswer: Sendable {
    public var question: DNSQuestion
    public var rcode: DNSRcode
    public var answers: [DNSRecord]
    public var authority: [DNSRecord]
    /// The AD bit of a trusted validating resolver (never true without `trustAD`).
    public var authenticated: Bool
    /// The UDP answer was truncated and this one came over TCP.
    public var overTCP: Bool
    public var fromCache = false

    /// The records of `type` for the question's name, following the CNAME
    /// chain the answer holds (at most 16 links; RFC 1034 §3.6.2).
    public func records(_ type: DNSType? = nil) -> [DNSRecord] {
        let wanted = type ?? question.type
        var name = question.name
        for _ in 0..<16 {
            let direct = answers.filter { $0.type == wanted && $0.name == name }
            if !direct.isEmpty || wanted == .cname { return direct }
            guard let link = answers.first(where: { $0.type == .cname && $0.name == name }),
                  case .cname(let target) = link.data else { return [] }
            name = target
        }
        return []
    }

    /// NXDOMAIN, or NOERROR without records of the asked type (NODATA).
    public var isNegative: Bool { rcode == .nxDomain || (rcode == .noError && records().isEmpty) }
}

/// A stub resolver for the engine's event loops: UDP with EDNS0, TCP when
/// the answer is truncated, each server tried in turn with a timeout, and a
/// TTL cache (negative answers per RFC 2308).
public final class DNSResolver: Sendable {
    public let configuration: DNSResolverConfiguration
    let cache: Mutex<DNSCache>

    public init(configuration: DNSResolverConfiguration) {
        self.configuration = configuration
        cache = Mutex(DNSCache(capacity: configuration.cacheEntries))
    }

    /// Asks for `name`/`type`; completes on `eventLoop`. Fails only when no
    /// server gave any answer (`DNSError`); SERVFAIL and the like are answers.
    public func query(_ name: DNSName, _ type: DNSType, on eventLoop: EventLoop) -> EventLoopFuture<DNSAnswer> {
        let question = DNSQuestion(name: name, type: type)
        let now = NIODeadline.now().uptimeNanoseconds
        if let hit = cache.withLock({ $0.lookup(question, now: now) }) { return eventLoop.makeSucceededFuture(hit) }
        guard !configuration.servers.isEmpty else { return eventLoop.makeFailedFuture(DNSError.network("no DNS servers configured")) }
        let promise = eventLoop.makePromise(of: DNSAnswer.self)
        attempt(question, try: 0, fallback: nil, error: .timeout, on: eventLoop, promise)
        return promise.futureResult
    }

    /// The cached answer for `name`/`type`, if any: a caller that is not on
    /// the event loop gets it without a hop there.
    public func cached(_ name: DNSName, _ type: DNSType) -> DNSAnswer? {
        let now = NIODeadline.now().uptimeNanoseconds
        return cache.withLock { $0.lookup(DNSQuestion(name: name, type: type), now: now) }
    }

    /// Forgets every cached answer.
    public func flush() { cache.withLock { $0.removeAll() } }

    func attempt(_ q: DNSQuestion, try n: Int, fallback: DNSAnswer?, error: DNSError, on el: EventLoop,
                 _ promise: EventLoopPromise<DNSAnswer>) {
        let servers = configuration.servers
        guard n < servers.count * max(configuration.attempts, 1) else {
            if let fallback { promise.succeed(fallback) } else { promise.fail(error) }
            return
        }
        let server = servers[n % servers.count]
        exchange(q, server: server, on: el).whenComplete { result in
            switch result {
            case .success(let answer):
                // RFC 1035 §7.2 / RFC 8499: a server failure is worth asking the next one.
                if [.servFail, .refused, .notImp, .formErr].contains(answer.rcode) {
                    self.attempt(q, try: n + 1, fallback: answer, error: error, on: el, promise)
                    return
                }
                let now = NIODeadline.now().uptimeNanoseconds
                self.cache.withLock { $0.store(answer, now: now, maxTTL: self.configuration.maxTTL) }
                promise.succeed(answer)
            case .failure(let e):
                self.attempt(q, try: n + 1, fallback: fallback, error: (e as? DNSError) ?? .network("\(e)"), on: el, promise)
            }
        }
    }

    /// One try at one server: UDP, then TCP if the UDP answer was truncated.
    func exchange(_ q: DNSQuestion, server: SocketAddress, on el: EventLoop) -> EventLoopFuture<DNSAnswer> {
        let id = UInt16.random(in: 0...UInt16.max)
        let query = DNSMessage.query(id: id, name: q.name, type: q.type, udpPayloadSize: configuration.udpPayloadSize).encode()
        let trustAD = configuration.trustAD
        @Sendable func answer(_ m: DNSMessage, tcp: Bool) -> DNSAnswer {
            DNSAnswer(question: q, rcode: m.rcode, answers: m.answers, authority: m.authority,
                      authenticated: trustAD && m.authenticData && m.rcode == .noError, overTCP: tcp)
        }
        return DNSTransport.udp(query, id: id, question: q, server: server, timeout: configuration.timeout, on: el)
            .flatMap { m in
                guard m.truncated else { return el.makeSucceededFuture(answer(m, tcp: false)) }
                return DNSTransport.tcp(query, id: id, question: q, server: server, timeout: self.configuration.timeout, on: el)
                    .map { answer($0, tcp: true) }
            }
    }
}

/// The answers of recent questions, by question, until their TTL runs out.
struct DNSCache {
    struct Entry {
        var answer: DNSAnswer
        var stored: UInt64
        var expires: UInt64
    }
    struct Key: Hashable {
        var name: [[UInt8]]
        var type: UInt16
        init(_ q: DNSQuestion) { name = q.name.key; type = q.type.rawValue }
    }
    let capacity: Int
    var entries: [Key: Entry] = [:]

    init(capacity: Int) { self.capacity = capacity }

    /// A live answer, its TTLs lowered by the time it has been kept.
    mutating func lookup(_ q: DNSQuestion, now: UInt64) -> DNSAnswer? {
        let key = Key(q)
        guard let e = entries[key] else { return nil }
        guard now < e.expires else { entries[key] = nil; return nil }
        let elapsed = UInt32(min((now - e.stored) / 1_000_000_000, UInt64(UInt32.max)))
        var a = e.answer
        a.fromCache = true
        a.answers = a.answers.map { var r = $0; r.ttl = r.ttl > elapsed ? r.ttl - elapsed : 0; return r }
        a.authority = a.authority.map { var r = $0; r.ttl = r.ttl > elapsed ? r.ttl - elapsed : 0; return r }
        return a
    }

    /// Keeps an answer for its TTL: the smallest of its records' for a
    /// positive answer; for a negative one the SOA's TTL and MINIMUM, the
    /// smaller (RFC 2308 §5), and nothing without an SOA. Failures are not kept.
    mutating func store(_ a: DNSAnswer, now: UInt64, maxTTL: UInt32) {
        guard a.rcode == .noError || a.rcode == .nxDomain else { return }
        var ttl: UInt32
        if a.isNegative {
            guard let soa = a.authority.first(where: { $0.type == .soa }), case .soa(let s) = soa.data else { return }
            ttl = min(soa.ttl, s.minimum, 3600)
        } else {
            ttl = a.answers.map(\.ttl).min() ?? 0
        }
        ttl = min(ttl, maxTTL)
        guard ttl > 0 else { return }
        if entries.count >= capacity {
            entries = entries.filter { now < $0.value.expires }
            if entries.count >= capacity {
                // Still full of live answers: drop the quarter closest to expiry.
                let drop = entries.sorted { $0.value.expires < $1.value.expires }.prefix(max(capacity / 4, 1)).map(\.key)
                for k in drop { entries[k] = nil }
            }
        }
        entries[Key(a.question)] = Entry(answer: a, stored: now, expires: now + UInt64(ttl) * 1_000_000_000)
    }

    mutating func removeAll() { entries = [:] }
}
