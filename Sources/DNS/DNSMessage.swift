/// A resource record type (RFC 1035 §3.2.2 and later RFCs).
public struct DNSType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DNSType(rawValue: 1), ns = DNSType(rawValue: 2), cname = DNSType(rawValue: 5)
    public static let soa = DNSType(rawValue: 6), ptr = DNSType(rawValue: 12), mx = DNSType(rawValue: 15)
    public static let txt = DNSType(rawValue: 16), aaaa = DNSType(rawValue: 28), opt = DNSType(rawValue: 41)
    public static let tlsa = DNSType(rawValue: 52)

    static let names: [(String, DNSType)] = [("A", .a), ("NS", .ns), ("CNAME", .cname), ("SOA", .soa), ("PTR", .ptr),
                                             ("MX", .mx), ("TXT", .txt), ("AAAA", .aaaa), ("OPT", .opt), ("TLSA", .tlsa)]

    /// By mnemonic (case-insensitive) or RFC 3597 `TYPEnnn`.
    public init?(name: String) {
        let upper = name.uppercased()
        if let t = DNSType.names.first(where: { $0.0 == upper }) { self = t.1; return }
        guard upper.hasPrefix("TYPE"), let n = UInt16(upper.dropFirst(4)) else { return nil }
        self.init(rawValue: n)
    }

    public var description: String { DNSType.names.first { $0.1 == self }?.0 ?? "TYPE\(rawValue)" }
}

/// A response code (RFC 1035 §4.1.1, RFC 6891 extended codes).
public struct DNSRcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let noError = DNSRcode(rawValue: 0), formErr = DNSRcode(rawValue: 1), servFail = DNSRcode(rawValue: 2)
    public static let nxDomain = DNSRcode(rawValue: 3), notImp = DNSRcode(rawValue: 4), refused = DNSRcode(rawValue: 5)
    public static let badVers = DNSRcode(rawValue: 16)

    public var description: String {
        ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"].indices.contains(Int(rawValue))
            ? ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"][Int(rawValue)]
            : rawValue == 16 ? "BADVERS" : "RCODE\(rawValue)"
    }
}

/// Record data of the types the engine reads; others are kept as bytes.
public enum DNSRData: Hashable, Sendable {
    case a([UInt8])                    // 4 octets
    case aaaa([UInt8])                 // 16 octets
    case ns(DNSName)
    case cname(DNSName)
    case ptr(DNSName)
    case mx(preference: UInt16, exchange: DNSName)
    /// The character-strings, each up to 255 octets.
    case txt([[UInt8]])
    case soa(SOA)
    case tlsa(usage: UInt8, selector: UInt8, matchingType: UInt8, data: [UInt8])
    case other([UInt8])

    public struct SOA: Hashable, Sendable {
        public var mname: DNSName, rname: DNSName
        public var serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32
    }

    /// TXT strings joined, as SPF, DKIM and DMARC read them (RFC 7208 §3.3).
    public var joinedText: [UInt8]? {
        if case .txt(let strings) = self { return strings.flatMap { $0 } }
        return nil
    }
}

public struct DNSRecord: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSType
    public var dnsClass: UInt16
    public var ttl: UInt32
    public var data: DNSRData
    public init(name: DNSName, type: DNSType, dnsClass: UInt16 = 1, ttl: UInt32, data: DNSRData) {
        self.name = name; self.type = type; self.dnsClass = dnsClass; self.ttl = ttl; self.data = data
    }
}

public struct DNSQuestion: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSType
    public var dnsClass: UInt16 = 1
    public init(name: DNSName, type: DNSType, dnsClass: UInt16 = 1) { self.name = name; self.type = type; self.dnsClass = dnsClass }
}

/// The OPT pseudo-record's fields (RFC 6891 §6.1.3).
public struct DNSEDNS: Hashable, Sendable {
    public var udpPayloadSize: UInt16
    public var extendedRcode: UInt8 = 0
    public var version: UInt8 = 0
    public var dnssecOK = false
    public var options: [UInt8] = []
    public init(udpPayloadSize: UInt16, dnssecOK: Bool = false) { self.udpPayloadSize = udpPayloadSize; self.dnssecOK = dnssecOK }
}

/// A DNS message (RFC 1035 §4.1). The OPT record, when present, is in
/// `edns` and not in `additional`.
public struct DNSMessage: Hashable, Sendable {
    public var id: UInt16
    public var flags: UInt16
    public var questions: [DNSQuestion] = []
    public var answers: [DNSRecord] = []
    public var authority: [DNSRecord] = []
    public var additional: [DNSRecord] = []
    public var edns: DNSEDNS?

    public init(id: UInt16, flags: UInt16) { self.id = id; self.flags = flags }

    func bit(_ n: UInt16) -> Bool { flags & (1 << n) != 0 }
    mutating func set(_ n: UInt16, _ on: Bool) { if on { flags |= 1 << n } else { flags &= ~(1 << n) } }

    public var isResponse: Bool { get { bit(15) } set { set(15, newValue) } }
    public var opcode: UInt8 { UInt8((flags >> 11) & 0xF) }
    public var authoritative: Bool { get { bit(10) } set { set(10, newValue) } }
    public var truncated: Bool { get { bit(9) } set { set(9, newValue) } }
    public var recursionDesired: Bool { get { bit(8) } set { set(8, newValue) } }
    public var recursionAvailable: Bool { get { bit(7) } set { set(7, newValue) } }
    /// AD (RFC 4035 §3.2.3): the resolver validated the answer.
    public var authenticData: Bool { get { bit(5) } set { set(5, newValue) } }
    public var checkingDisabled: Bool { get { bit(4) } set { set(4, newValue) } }
    /// The full response code: header bits and, with EDNS, the extended bits.
    public var rcode: DNSRcode {
        DNSRcode(rawValue: UInt16(flags & 0xF) | UInt16(edns?.extendedRcode ?? 0) << 4)
    }

    /// A recursive query for one name and type, with EDNS0 and the AD bit set
    /// (RFC 6840 §5.7: asks the resolver to report validation).
    public static func query(id: UInt16, name: DNSName, type: DNSType, udpPayloadSize: UInt16 = 1232) -> DNSMessage {
        var m = DNSMessage(id: id, flags: 0)
        m.recursionDesired = true
        m.authenticData = true
        m.questions = [DNSQuestion(name: name, type: type)]
        m.edns = DNSEDNS(udpPayloadSize: udpPayloadSize)
        return m
    }
}

public struct DNSWireError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    init(_ text: String) { description = text }
}

// MARK: Encoding

extension DNSMessage {
    /// Wire form, names compressed (RFC 1035 §4.1.4) where RFC 3597 §4
    /// allows: owner names and the names inside NS, CNAME, PTR, MX and SOA.
    public func encode() -> [UInt8] {
        var w = DNSWriter()
        w.u16(id); w.u16(flags)
        w.u16(UInt16(questions.count)); w.u16(UInt16(answers.count)); w.u16(UInt16(authority.count))
        w.u16(UInt16(additional.count + (edns == nil ? 0 : 1)))
        for q in questions { w.name(q.name); w.u16(q.type.rawValue); w.u16(q.dnsClass) }
        for r in answers + authority + additional { w.record(r) }
        if let e = edns {
            w.bytes.append(0)  // root
            w.u16(DNSType.opt.rawValue); w.u16(e.udpPayloadSize)
            w.bytes += [e.extendedRcode, e.version, e.dnssecOK ? 0x80 : 0, 0]
            w.u16(UInt16(e.options.count)); w.bytes += e.options
        }
        return w.bytes
    }
}

struct DNSWriter {
    var bytes: [UInt8] = []
    /// Offsets of names already written, by their lowercased labels.
    var offsets: [[[UInt8]]: Int] = [:]

    mutating func u16(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(v & 0xFF)] }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(v & 0xFFFF)) }

    mutating func name(_ n: DNSName, compress: Bool = true) {
        let key = n.key
        for i in 0..<n.labels.count {
            let suffix = Array(key[i...])
            if compress, let at = offsets[suffix] {
                u16(0xC000 | UInt16(at))
                return
            }
            if bytes.count < 0x3FFF { offsets[suffix] = bytes.count }
            bytes.append(UInt8(n.labels[i].count))
            bytes += n.labels[i]
        }
        bytes.append(0)
    }

    mutating func record(_ r: DNSRecord) {
        name(r.name)
        u16(r.type.rawValue); u16(r.dnsClass); u32(r.ttl)
        let lengthAt = bytes.count
        u16(0)
        switch r.data {
        case .a(let b), .aaaa(let b), .other(let b): bytes += b
        case .ns(let n), .cname(let n), .ptr(let n): name(n)
        case .mx(let p, let n): u16(p); name(n)
        case .txt(let strings):
            for s in strings { bytes.append(UInt8(min(s.count, 255))); bytes += s.prefix(255) }
        case .soa(let s):
            name(s.mname); name(s.rname)
            for v in [s.serial, s.refresh, s.retry, s.expire, s.minimum] { u32(v) }
        case .tlsa(let u, let s, let m, let d): bytes += [u, s, m] + d
        }
        let length = bytes.count - lengthAt - 2
        bytes[lengthAt] = UInt8(length >> 8); bytes[lengthAt + 1] = UInt8(length & 0xFF)
    }
}

// MARK: Decoding

extension DNSMessage {
    /// Parses a message. Untrusted input: every length and pointer is
    /// checked; compression pointers may only point backwards.
    public static func decode(_ bytes: [UInt8]) throws -> DNSMessage {
        var r = DNSReader(bytes: bytes)
        var m = DNSMessage(id: try r.u16(), flags: try r.u16())
        let qd = try r.u16(), an = try r.u16(), ns = try r.u16(), ar = try r.u16()
        for _ in 0..<qd {
            m.questions.append(DNSQuestion(name: try r.name(), type: DNSType(rawValue: try r.u16()), dnsClass: try r.u16()))
        }
        for _ in 0..<an { m.answers.append(try r.record()) }
        for _ in 0..<ns { m.authority.append(try r.record()) }
        for _ in 0..<ar {
            let start = r.position
            let owner = try r.name()
            let type = DNSType(rawValue: try r.u16())
            if type == .opt {
                // RFC 6891 §6.1.1: one OPT, owned by the root.
                guard m.edns == nil, owner == .root else { throw DNSWireError("bad OPT record") }
                var e = DNSEDNS(udpPayloadSize: try r.u16())
                e.extendedRcode = try r.u8(); e.version = try r.u8()
                e.dnssecOK = try r.u8() & 0x80 != 0
                _ = try r.u8()
                let length = Int(try r.u16())
                e.options = try r.take(length)
                m.edns = e
            } else {
                r.position = start
                m.additional.append(try r.record())
            }
        }
        return m
    }
}

struct DNSReader {
    let bytes: [UInt8]
    var position = 0

    mutating func u8() throws -> UInt8 {
        guard position < bytes.count else { throw DNSWireError("message ends early") }
        defer { position += 1 }
        return bytes[position]
    }
    mutating func u16() throws -> UInt16 { UInt16(try u8()) << 8 | UInt16(try u8()) }
    mutating func u32() throws -> UInt32 { UInt32(try u16()) << 16 | UInt32(try u16()) }
    mutating func take(_ n: Int) throws -> [UInt8] {
        guard n >= 0, position + n <= bytes.count else { throw DNSWireError("message ends early") }
        defer { position += n }
        return Array(bytes[position..<position + n])
    }

    /// A name, following compression pointers (each must point before the
    /// place it was read from, so they cannot loop).
    mutating func name() throws -> DNSName {
        var labels: [[UInt8]] = []
        var length = 1
        var at = position
        var resume: Int? = nil
        var limit = at  // pointers must go below this
        while true {
            guard at < bytes.count else { throw DNSWireError("name runs past the end") }
            let b = bytes[at]
            switch b & 0xC0 {
            case 0x00:
                if b == 0 {
                    position = resume ?? at + 1
                    guard let n = DNSName(labels: labels) else { throw DNSWireError("bad name") }
                    return n
                }
                let n = Int(b)
                guard at + 1 + n <= bytes.count else { throw DNSWireError("label runs past the end") }
                length += n + 1
                guard length <= DNSName.maxWire else { throw DNSWireError("name longer than 255 octets") }
                labels.append(Array(bytes[at + 1..<at + 1 + n]))
                at += 1 + n
            case 0xC0:
                guard at + 1 < bytes.count else { throw DNSWireError("pointer runs past the end") }
                let target = Int(b & 0x3F) << 8 | Int(bytes[at + 1])
                guard target < limit else { throw DNSWireError("compression pointer does not point backwards") }
                if resume == nil { resume = at + 2 }
                limit = target
                at = target
            default:
                throw DNSWireError("unknown label type")
            }
        }
    }

    mutating func record() throws -> DNSRecord {
        let owner = try name()
        let type = DNSType(rawValue: try u16())
        let dnsClass = try u16()
        let ttl = try u32()
        let length = Int(try u16())
        let end = position + length
        guard end <= bytes.count else { throw DNSWireError("record data runs past the end") }
        let data: DNSRData
        switch type {
        case .a:
            guard length == 4 else { throw DNSWireError("A record of \(length) octets") }
            data = .a(try take(4))
        case .aaaa:
            guard length == 16 else { throw DNSWireError("AAAA record of \(length) octets") }
            data = .aaaa(try take(16))
        case .ns: data = .ns(try name())
        case .cname: data = .cname(try name())
        case .ptr: data = .ptr(try name())
        case .mx: data = .mx(preference: try u16(), exchange: try name())
        case .txt:
            var strings: [[UInt8]] = []
            while position < end { strings.append(try take(Int(try u8()))) }
            data = .txt(strings)
        case .soa:
            let m = try name(), r = try name()
            data = .soa(.init(mname: m, rname: r, serial: try u32(), refresh: try u32(), retry: try u32(), expire: try u32(),
                              minimum: try u32()))
        case .tlsa:
            guard length >= 3 else { throw DNSWireError("TLSA record of \(length) octets") }
            data = .tlsa(usage: try u8(), selector: try u8(), matchingType: try u8(), data: try take(length - 3))
        default:
            data = .other(try take(length))
        }
        guard position == end else { throw DNSWireError("\(type) record data of the wrong length") }
        return DNSRecord(name: owner, type: type, dnsClass: dnsClass, ttl: ttl, data: data)
    }
}
