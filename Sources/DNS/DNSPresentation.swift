/// Record data in zone-file presentation form (RFC 1035 §5.1, RFC 3597 for
/// unknown types), as `dig +short` and `kdig +short` print it: for logs, the
/// `resolve` command and comparing with other tools.
extension DNSRData {
    public var presentation: String {
        switch self {
        case .a(let b): return b.map(String.init).joined(separator: ".")
        case .aaaa(let b): return DNSRData.ipv6(b)
        case .ns(let n), .cname(let n), .ptr(let n): return n.description
        case .mx(let p, let n): return "\(p) \(n)"
        case .txt(let strings): return strings.map(DNSRData.quoted).joined(separator: " ")
        case .soa(let s): return "\(s.mname) \(s.rname) \(s.serial) \(s.refresh) \(s.retry) \(s.expire) \(s.minimum)"
        case .tlsa(let u, let s, let m, let d): return "\(u) \(s) \(m) " + DNSRData.hex(d)
        case .other(let b): return "\\# \(b.count)" + (b.isEmpty ? "" : " " + DNSRData.hex(b))
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out += [digits[Int(b >> 4)], digits[Int(b & 0xF)]] }
        return String(decoding: out, as: UTF8.self)
    }

    /// A character-string in quotes: `"` and `\` escaped, bytes outside
    /// printable ASCII as `\DDD`.
    static func quoted(_ s: [UInt8]) -> String {
        var out = "\""
        for b in s {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += "\\" + String(UnicodeScalar(b))
            case 0x20...0x7E: out.unicodeScalars.append(UnicodeScalar(b))
            default: out += "\\" + DNSName.threeDigits(b)
            }
        }
        return out + "\""
    }

    /// RFC 5952: lowercase hex, leading zeros dropped, the longest run of
    /// two or more zero groups (the first of equals) as `::`.
    static func ipv6(_ b: [UInt8]) -> String {
        guard b.count == 16 else { return hex(b) }
        let groups = (0..<8).map { UInt16(b[$0 * 2]) << 8 | UInt16(b[$0 * 2 + 1]) }
        var bestStart = -1, bestLength = 1, i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLength { bestStart = i; bestLength = j - i }
                i = j
            } else {
                i += 1
            }
        }
        func text(_ r: Range<Int>) -> String { r.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        guard bestStart >= 0 else { return text(0..<8) }
        return text(0..<bestStart) + "::" + text(bestStart + bestLength..<8)
    }
}
