import DNS
import NIOCore

/// What one DNS question gave, as SPF (RFC 7208 §2.6, §4.4), DKIM (RFC 6376
/// §6.1.2) and DMARC (RFC 7489 §6.6.3) read it.
public enum DNSLookup<Value: Sendable>: Sendable {
    case found(Value)
    /// NOERROR with no record of the type (NODATA).
    case noData
    /// The name does not exist (NXDOMAIN).
    case nxDomain
    /// No usable answer: timeout, SERVFAIL, a malformed answer (each
    /// check's "temperror").
    case temporary(String)

    /// The value when found, else nil.
    public var value: Value? { if case .found(let v) = self { return v } else { return nil } }
    /// NXDOMAIN or NODATA: a "void lookup" (RFC 7208 §4.6.4).
    public var isVoid: Bool {
        switch self {
        case .noData, .nxDomain: return true
        default: return false
        }
    }
}

/// The DNS questions mail authentication asks. The engine answers them with
/// `ResolverMailAuthDNS` (its stub resolver); tests answer them from zone
/// data (`StaticMailAuthDNS`), as the RFC 7208 suite defines its zones.
/// Names are in presentation form without the final dot.
public protocol MailAuthDNS: Sendable {
    /// The TXT records of `name`, each one's character-strings joined (RFC 7208 §3.3).
    func txt(_ name: String) async -> DNSLookup<[[UInt8]]>
    /// IPv4 addresses (4 octets each) of `name`.
    func a(_ name: String) async -> DNSLookup<[[UInt8]]>
    /// IPv6 addresses (16 octets each) of `name`.
    func aaaa(_ name: String) async -> DNSLookup<[[UInt8]]>
    /// MX records of `name`: preference and exchange (no final dot).
    func mx(_ name: String) async -> DNSLookup<[(preference: UInt16, exchange: String)]>
    /// PTR records of the reverse name of `address` (4 or 16 octets).
    func ptr(_ address: [UInt8]) async -> DNSLookup<[String]>
}

/// `MailAuthDNS` over the engine's stub resolver.
public struct ResolverMailAuthDNS: MailAuthDNS {
    public let resolver: DNSResolver
    public let eventLoop: EventLoop

    public init(resolver: DNSResolver, eventLoop: EventLoop) {
        self.resolver = resolver
        self.eventLoop = eventLoop
    }

    func ask<T: Sendable>(_ text: String, _ type: DNSType, _ pick: @escaping @Sendable (DNSRData) -> T?) async -> DNSLookup<[T]> {
        guard let name = DNSName(text) else { return .nxDomain }
        do {
            // A cached answer needs no trip through the event loop.
            let answer: DNSAnswer
            if let hit = resolver.cached(name, type) { answer = hit } else { answer = try await resolver.query(name, type, on: eventLoop).get() }
            switch answer.rcode {
            case .nxDomain: return .nxDomain
            case .noError:
                let values = answer.records(type).compactMap { pick($0.data) }
                return values.isEmpty ? .noData : .found(values)
            default: return .temporary("\(text) \(type): \(answer.rcode)")
            }
        } catch {
            return .temporary("\(text) \(type): \(error)")
        }
    }

    public func txt(_ name: String) async -> DNSLookup<[[UInt8]]> { await ask(name, .txt) { $0.joinedText } }
    public func a(_ name: String) async -> DNSLookup<[[UInt8]]> {
        await ask(name, .a) { if case .a(let b) = $0 { return b } else { return nil } }
    }
    public func aaaa(_ name: String) async -> DNSLookup<[[UInt8]]> {
        await ask(name, .aaaa) { if case .aaaa(let b) = $0 { return b } else { return nil } }
    }
    public func mx(_ name: String) async -> DNSLookup<[(preference: UInt16, exchange: String)]> {
        let r = await ask(name, .mx) { d -> MXValue? in
            if case .mx(let p, let x) = d { return MXValue(preference: p, exchange: x.text) } else { return nil }
        }
        return r.tuples
    }
    public func ptr(_ address: [UInt8]) async -> DNSLookup<[String]> {
        await ask(ReverseName.of(address), .ptr) { if case .ptr(let n) = $0 { return n.text } else { return nil } }
    }
}

struct MXValue: Sendable { var preference: UInt16; var exchange: String }

extension DNSLookup where Value == [MXValue] {
    /// The MX values as the protocol's tuples, the outcome kept.
    var tuples: DNSLookup<[(preference: UInt16, exchange: String)]> {
        switch self {
        case .found(let v): return .found(v.map { ($0.preference, $0.exchange) })
        case .noData: return .noData
        case .nxDomain: return .nxDomain
        case .temporary(let s): return .temporary(s)
        }
    }
}

extension DNSName {
    /// Presentation form without the final dot ("" for the root).
    var text: String {
        let d = description
        return d.hasSuffix(".") ? String(d.dropLast()) : d
    }
}

/// The reverse-lookup name of an address (RFC 1035 §3.5, RFC 3596 §2.5).
public enum ReverseName {
    public static func of(_ address: [UInt8]) -> String {
        if address.count == 4 { return address.reversed().map { String($0) }.joined(separator: ".") + ".in-addr.arpa" }
        let hex = Array("0123456789abcdef")
        var nibbles: [String] = []
        for b in address.reversed() {
            nibbles.append(String(hex[Int(b & 0xF)]))
            nibbles.append(String(hex[Int(b >> 4)]))
        }
        return nibbles.joined(separator: ".") + ".ip6.arpa"
    }
}
