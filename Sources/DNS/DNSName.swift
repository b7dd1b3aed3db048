/// A domain name (RFC 1035 §3.1) as its labels, root excluded. Compared and
/// hashed without regard to ASCII case (RFC 4343); kept as given.
public struct DNSName: Hashable, Sendable, CustomStringConvertible {
    public private(set) var labels: [[UInt8]]

    public static let root = DNSName(validLabels: [])
    /// RFC 1035 §2.3.4.
    public static let maxLabel = 63, maxWire = 255

    init(validLabels: [[UInt8]]) { labels = validLabels }

    /// From labels; nil when a label is empty or too long, or the name too long.
    public init?(labels: [[UInt8]]) {
        guard labels.allSatisfy({ !$0.isEmpty && $0.count <= DNSName.maxLabel }),
              labels.reduce(1, { $0 + $1.count + 1 }) <= DNSName.maxWire else { return nil }
        self.labels = labels
    }

    /// From presentation form: dot-separated labels, `\.` and `\DDD`
    /// escapes, an optional final dot. "." and "" are the root.
    public init?(_ text: String) {
        var labels: [[UInt8]] = []
        var current: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\") {
                guard i + 1 < bytes.count else { return nil }
                if i + 3 < bytes.count, (1...3).allSatisfy({ bytes[i + $0] >= 48 && bytes[i + $0] <= 57 }) {
                    let v = Int(bytes[i + 1] - 48) * 100 + Int(bytes[i + 2] - 48) * 10 + Int(bytes[i + 3] - 48)
                    guard v <= 255 else { return nil }
                    current.append(UInt8(v))
                    i += 4
                } else {
                    current.append(bytes[i + 1])
                    i += 2
                }
                continue
            }
            if b == UInt8(ascii: ".") {
                // A dot ends a label; a lone final dot (or the whole name ".") is the root.
                guard !current.isEmpty else {
                    if labels.isEmpty && i == bytes.count - 1 { break }
                    return nil
                }
                labels.append(current)
                current = []
            } else {
                current.append(b)
            }
            i += 1
        }
        if !current.isEmpty { labels.append(current) }
        self.init(labels: labels)
    }

    /// Presentation form with the final dot; bytes outside printable ASCII
    /// and the special characters escaped (RFC 4343 §2.1).
    public var description: String {
        if labels.isEmpty { return "." }
        var out = ""
        for label in labels {
            for b in label {
                switch b {
                case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "("), UInt8(ascii: ")"),
                     UInt8(ascii: ";"), UInt8(ascii: "@"), UInt8(ascii: "$"):
                    out += "\\" + String(UnicodeScalar(b))
                case 0x21...0x7E:
                    out.unicodeScalars.append(UnicodeScalar(b))
                default:
                    out += "\\" + DNSName.threeDigits(b)
                }
            }
            out += "."
        }
        return out
    }

    static func threeDigits(_ b: UInt8) -> String {
        let s = String(b)
        return String(repeating: "0", count: 3 - s.count) + s
    }

    /// The labels lowercased (ASCII): what equality and hashing use.
    public var key: [[UInt8]] { labels.map { $0.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 } } }

    public static func == (a: DNSName, b: DNSName) -> Bool {
        guard a.labels.count == b.labels.count else { return false }
        for (x, y) in zip(a.labels, b.labels) {
            guard x.count == y.count else { return false }
            for (p, q) in zip(x, y) where p != q {
                let lp = p >= 65 && p <= 90 ? p | 0x20 : p, lq = q >= 65 && q <= 90 ? q | 0x20 : q
                if lp != lq { return false }
            }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    /// Whether this name is `other` or below it.
    public func isSubdomain(of other: DNSName) -> Bool {
        guard labels.count >= other.labels.count else { return false }
        return DNSName(validLabels: Array(labels.suffix(other.labels.count))) == other
    }

    /// `label.` + this name; nil when too long.
    public func prepending(_ label: [UInt8]) -> DNSName? { DNSName(labels: [label] + labels) }

    /// The name with its first `n` labels removed.
    public func dropping(_ n: Int) -> DNSName { DNSName(validLabels: Array(labels.dropFirst(n))) }

    /// Length in wire form, uncompressed.
    public var wireLength: Int { labels.reduce(1) { $0 + $1.count + 1 } }
}
