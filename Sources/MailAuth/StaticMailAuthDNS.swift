/// `MailAuthDNS` answered from zone data held in memory: what the RFC 7208
/// test suite specifies for its cases, and what tests and offline checks
/// (`postcell-engine dkim verify --txt`) give. Names compare without regard
/// to ASCII case; a name marked `timeout` answers every question with a
/// temporary error.
public struct StaticMailAuthDNS: MailAuthDNS {
    public enum Record: Hashable, Sendable {
        case txt([UInt8])
        case a([UInt8])
        case aaaa([UInt8])
        case mx(UInt16, String)
        case ptr(String)
        /// Every question for this name times out.
        case timeout
    }

    public var records: [String: [Record]]

    public init(_ records: [String: [Record]] = [:]) {
        self.records = [:]
        for (name, rs) in records { self.records[StaticMailAuthDNS.key(name), default: []] += rs }
    }

    public mutating func add(_ name: String, _ record: Record) {
        records[StaticMailAuthDNS.key(name), default: []].append(record)
    }

    static func key(_ name: String) -> String {
        var n = name.lowercased()
        if n.hasSuffix(".") { n.removeLast() }
        return n
    }

    func lookup<T>(_ name: String, _ pick: (Record) -> T?) -> DNSLookup<[T]> {
        guard let rs = records[StaticMailAuthDNS.key(name)] else { return .nxDomain }
        if rs.contains(.timeout) { return .temporary("\(name): timeout") }
        let values = rs.compactMap(pick)
        return values.isEmpty ? .noData : .found(values)
    }

    public func txt(_ name: String) async -> DNSLookup<[[UInt8]]> {
        lookup(name) { if case .txt(let t) = $0 { return t } else { return nil } }
    }
    public func a(_ name: String) async -> DNSLookup<[[UInt8]]> {
        lookup(name) { if case .a(let b) = $0 { return b } else { return nil } }
    }
    public func aaaa(_ name: String) async -> DNSLookup<[[UInt8]]> {
        lookup(name) { if case .aaaa(let b) = $0 { return b } else { return nil } }
    }
    public func mx(_ name: String) async -> DNSLookup<[(preference: UInt16, exchange: String)]> {
        let r: DNSLookup<[MXValue]> = lookup(name) { if case .mx(let p, let x) = $0 { return MXValue(preference: p, exchange: x) } else { return nil } }
        return r.tuples
    }
    public func ptr(_ address: [UInt8]) async -> DNSLookup<[String]> {
        lookup(ReverseName.of(address)) { if case .ptr(let n) = $0 { return n } else { return nil } }
    }
}
