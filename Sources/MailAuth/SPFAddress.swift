/// An IPv4 or IPv6 address as mail authentication reads it: the SMTP
/// client's address (RFC 7208 §4.1 <ip>) and the networks of `ip4:` and
/// `ip6:` (RFC 7208 §5.6). Four or sixteen octets in network order.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public let octets: [UInt8]

    /// Four or sixteen octets; nil for any other length.
    public init?(octets: [UInt8]) {
        guard octets.count == 4 || octets.count == 16 else { return nil }
        self.octets = octets
    }

    /// Dotted-quad IPv4 or RFC 4291 §2.2 IPv6 text (with `::` and an embedded
    /// dotted quad); nil for anything else.
    public init?(_ text: String) {
        if let v4 = IPAddress.parseIPv4(Substring(text)) {
            octets = v4
        } else if let v6 = IPAddress.parseIPv6(Substring(text)) {
            octets = v6
        } else {
            return nil
        }
    }

    public var isIPv4: Bool { octets.count == 4 }

    /// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) as the
    /// IPv4 address it carries; RFC 7208 §5 has SPF treat it as IPv4.
    public var unmapped: IPAddress {
        guard octets.count == 16, octets[0..<10].allSatisfy({ $0 == 0 }),
              octets[10] == 0xFF, octets[11] == 0xFF else { return self }
        return IPAddress(octets: Array(octets[12...]))!
    }

    /// True when the first `prefix` bits equal those of `network` (same family).
    public func matches(_ network: IPAddress, prefix: Int) -> Bool {
        guard network.octets.count == octets.count else { return false }
        var bits = max(0, min(prefix, octets.count * 8))
        var i = 0
        while bits >= 8 {
            if octets[i] != network.octets[i] { return false }
            bits -= 8
            i += 1
        }
        if bits == 0 { return true }
        let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        return octets[i] & mask == network.octets[i] & mask
    }

    /// Dotted quad, or RFC 5952 text for IPv6 (lowercase, longest zero run as `::`).
    public var description: String {
        if isIPv4 { return octets.map(String.init).joined(separator: ".") }
        let groups = (0..<8).map { UInt16(octets[$0 * 2]) << 8 | UInt16(octets[$0 * 2 + 1]) }
        var best = (start: -1, length: 1)
        var i = 0
        while i < 8 {
            guard groups[i] == 0 else { i += 1; continue }
            var j = i
            while j < 8 && groups[j] == 0 { j += 1 }
            if j - i > best.length { best = (i, j - i) }
            i = j
        }
        func text(_ r: Range<Int>) -> String { r.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        guard best.start >= 0 else { return text(0..<8) }
        return text(0..<best.start) + "::" + text(best.start + best.length..<8)
    }

    /// The `i` macro's form (RFC 7208 §7.3): the dotted quad, or for IPv6 the
    /// 32 nibbles in lowercase hex separated by dots, most significant first.
    public var dottedForm: String {
        if isIPv4 { return description }
        let hex = Array("0123456789abcdef")
        return octets.flatMap { [String(hex[Int($0 >> 4)]), String(hex[Int($0 & 0xF)])] }.joined(separator: ".")
    }

    // RFC 7208 §12 ip4-network: four qnums, no leading zeros.
    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  p.count == 1 || p.first != "0", let v = UInt8(p) else { return nil }
            out.append(v)
        }
        return out
    }

    // RFC 4291 §2.2: x:x:x:x:x:x:x:x, one `::`, optionally a final dotted quad.
    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.count >= 2, text.allSatisfy({ $0.isASCII }) else { return nil }
        func groups(_ s: Substring) -> [UInt8]? {
            if s.isEmpty { return [] }
            var out: [UInt8] = []
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            for (n, p) in parts.enumerated() {
                if n == parts.count - 1, p.contains(".") {
                    guard let v4 = parseIPv4(p) else { return nil }
                    out += v4
                    continue
                }
                guard (1...4).contains(p.count), let v = UInt16(p, radix: 16) else { return nil }
                out += [UInt8(v >> 8), UInt8(v & 0xFF)]
            }
            return out
        }
        let chars = Array(text)
        let doubles = (0..<chars.count - 1).filter { chars[$0] == ":" && chars[$0 + 1] == ":" }
        guard let at = doubles.first else {
            guard let all = groups(text), all.count == 16 else { return nil }
            return all
        }
        // One "::" only (":::" would show as two overlapping ones).
        guard doubles.count == 1 else { return nil }
        let head = Substring(String(chars[..<at])), tail = Substring(String(chars[(at + 2)...]))
        guard !head.contains("."), let h = groups(head), let t = groups(tail), h.count + t.count <= 14 else { return nil }
        return h + [UInt8](repeating: 0, count: 16 - h.count - t.count) + t
    }
}
