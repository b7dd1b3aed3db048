import NIOCore

/// The PROXY protocol version 2 header (the HAProxy specification, §2.2):
/// a 12-byte signature, version/command, family/transport, a 16-bit length,
/// then the addresses and optional TLVs.
///
/// ```
/// \r\n\r\n\0\r\nQUIT\n  0x21 (v2, PROXY)  0x11 (INET, STREAM)  0x000C  src dst sport dport
/// ```
public struct ProxyHeader: Hashable, Sendable {
    public enum Command: Hashable, Sendable { case local, proxy }
    public var command: Command
    /// Source and destination as printable addresses, nil for LOCAL or UNSPEC.
    public var source: (host: String, port: Int)? { sourceHost.map { ($0, sourcePort) } }
    public var sourceHost: String?
    public var sourcePort: Int
    public var destinationHost: String?
    public var destinationPort: Int

    public static func == (a: Self, b: Self) -> Bool {
        a.command == b.command && a.sourceHost == b.sourceHost && a.sourcePort == b.sourcePort
            && a.destinationHost == b.destinationHost && a.destinationPort == b.destinationPort
    }
    public func hash(into h: inout Hasher) {
        h.combine(sourceHost); h.combine(sourcePort); h.combine(destinationHost); h.combine(destinationPort)
    }

    public static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// Headers longer than this are refused (addresses plus a few TLVs fit easily).
    public static let maximumLength = 16 + 536

    public enum ParseError: Error, Hashable, Sendable {
        case badSignature, unsupportedVersion, unsupportedCommand, badLength, tooLong
    }

    /// Incremental parse: `nil` when more bytes are needed (nothing consumed);
    /// consumes the header on success.
    public static func parse(_ buffer: inout ByteBuffer) throws -> ProxyHeader? {
        let available = buffer.readableBytes
        let prefix = buffer.getBytes(at: buffer.readerIndex, length: min(available, 16)) ?? []
        // Check the signature as far as we have it, so garbage fails early.
        for (i, b) in prefix.prefix(12).enumerated() where b != signature[i] { throw ParseError.badSignature }
        guard prefix.count == 16 else { return nil }
        let verCmd = prefix[12]
        guard verCmd >> 4 == 2 else { throw ParseError.unsupportedVersion }
        let command: Command
        switch verCmd & 0x0F {
        case 0: command = .local
        case 1: command = .proxy
        default: throw ParseError.unsupportedCommand
        }
        let family = prefix[13]
        let length = Int(prefix[14]) << 8 | Int(prefix[15])
        guard 16 + length <= maximumLength else { throw ParseError.tooLong }
        guard available >= 16 + length else { return nil }
        buffer.moveReaderIndex(forwardBy: 16)
        guard var body = buffer.readSlice(length: length) else { return nil }
        var header = ProxyHeader(command: command, sourceHost: nil, sourcePort: 0, destinationHost: nil, destinationPort: 0)
        guard command == .proxy else { return header }
        switch family >> 4 {
        case 1: // AF_INET: 4+4+2+2
            guard length >= 12, let s = body.readBytes(length: 4), let d = body.readBytes(length: 4),
                  let sp = body.readInteger(as: UInt16.self), let dp = body.readInteger(as: UInt16.self)
            else { throw ParseError.badLength }
            header.sourceHost = s.map(String.init).joined(separator: ".")
            header.destinationHost = d.map(String.init).joined(separator: ".")
            header.sourcePort = Int(sp)
            header.destinationPort = Int(dp)
        case 2: // AF_INET6: 16+16+2+2
            guard length >= 36, let s = body.readBytes(length: 16), let d = body.readBytes(length: 16),
                  let sp = body.readInteger(as: UInt16.self), let dp = body.readInteger(as: UInt16.self)
            else { throw ParseError.badLength }
            header.sourceHost = IPAddress.v6String(s)
            header.destinationHost = IPAddress.v6String(d)
            header.sourcePort = Int(sp)
            header.destinationPort = Int(dp)
        default:
            break // UNSPEC or AF_UNIX: the connection's own address stands
        }
        return header
    }

    /// Encodes a PROXY v2 header (for the edge and for tests).
    public static func encode(sourceHost: String, sourcePort: Int, destinationHost: String, destinationPort: Int) -> [UInt8]? {
        var out = signature
        out.append(0x21)
        if let s = IPAddress.parse(sourceHost), let d = IPAddress.parse(destinationHost), s.count == d.count {
            out.append(s.count == 4 ? 0x11 : 0x21)
            let len = s.count * 2 + 4
            out += [UInt8(len >> 8), UInt8(len & 0xFF)] + s + d
            out += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
            return out
        }
        return nil
    }
}

/// IPv4/IPv6 text <-> bytes, and CIDR matching for trusted-peer lists.
public enum IPAddress {
    public static func parse(_ text: String) -> [UInt8]? {
        if text.contains(":") { return parseV6(text) }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, let v = UInt8(p) else { return nil }
            out.append(v)
        }
        return out
    }

    static func parseV6(_ text: String) -> [UInt8]? {
        var t = Substring(text)
        if t.hasPrefix("[") && t.hasSuffix("]") { t = t.dropFirst().dropLast() }
        var halves: [String] = []
        if let r = t.firstRange(of: "::") {
            halves = [String(t[..<r.lowerBound]), String(t[r.upperBound...])]
            if halves[1].contains("::") { return nil }
        } else {
            halves = [String(t)]
        }
        func groups(_ s: String) -> [UInt8]? {
            if s.isEmpty { return [] }
            var out: [UInt8] = []
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, p) in parts.enumerated() {
                if i == parts.count - 1, p.contains("."), let v4 = parse(String(p)) {
                    out += v4
                    continue
                }
                guard !p.isEmpty, p.count <= 4, let v = UInt16(p, radix: 16) else { return nil }
                out += [UInt8(v >> 8), UInt8(v & 0xFF)]
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count < 16 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    public static func v6String(_ b: [UInt8]) -> String {
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF {
            return "::ffff:" + b[12..<16].map(String.init).joined(separator: ".")
        }
        var groups: [String] = []
        for i in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(b[i]) << 8 | UInt16(b[i + 1]), radix: 16))
        }
        return groups.joined(separator: ":")
    }
}

/// One entry of a trusted-peer list: a CIDR block or every unix-socket peer.
public enum PeerMatcher: Hashable, Sendable {
    case unixSockets
    case network(prefix: [UInt8], bits: Int)

    public init?(_ text: String) {
        if text == "unix" { self = .unixSockets; return }
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let addr = IPAddress.parse(String(parts[0])) else { return nil }
        let bits = parts.count == 2 ? Int(parts[1]) : addr.count * 8
        guard let b = bits, b >= 0, b <= addr.count * 8 else { return nil }
        self = .network(prefix: addr, bits: b)
    }

    /// `host` nil means a unix-socket peer.
    public func matches(host: String?) -> Bool {
        switch self {
        case .unixSockets:
            return host == nil
        case .network(let prefix, let bits):
            guard let h = host, var addr = IPAddress.parse(h) else { return false }
            if addr.count == 16 && prefix.count == 4, addr[0..<12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] {
                addr = Array(addr[12...])
            }
            guard addr.count == prefix.count else { return false }
            var remaining = bits
            for i in 0..<addr.count where remaining > 0 {
                let take = min(8, remaining)
                let mask: UInt8 = take == 8 ? 0xFF : ~(0xFF >> UInt8(take))
                if addr[i] & mask != prefix[i] & mask { return false }
                remaining -= take
            }
            return true
        }
    }
}
