/// The character sets this target decodes to `String` (RFC 2047 §3 and
/// RFC 2231 §4 name them by IANA charset name, case-insensitive).
public enum Charset: Hashable, Sendable {
    case utf8
    case usASCII
    case iso8859_1
    case windows1252

    /// Looks up an IANA name or a common alias; nil when unsupported.
    public init?(name: String) {
        var lowered = String(decoding: name.asciiBytes.asciiLowercased(), as: UTF8.self)
        // RFC 2231 §5: a language may follow the charset in an encoded word ("us-ascii*en").
        if let star = lowered.firstIndex(of: "*") { lowered = String(lowered[..<star]) }
        switch lowered {
        case "utf-8", "utf8": self = .utf8
        case "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us": self = .usASCII
        case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "iso-ir-100", "cp819": self = .iso8859_1
        case "windows-1252", "cp1252", "x-cp1252": self = .windows1252
        default: return nil
        }
    }

    /// Decodes `bytes`; bytes that are invalid in the charset become U+FFFD.
    public func decode(_ bytes: [UInt8]) -> String {
        switch self {
        case .utf8:
            return String(decoding: bytes, as: UTF8.self)
        case .usASCII, .iso8859_1, .windows1252:
            // ASCII text (most of it) is already UTF-8.
            if !bytes.contains(where: { $0 >= 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count + bytes.count / 8)
            for b in bytes {
                if b < 0x80 { out.append(b); continue }
                let scalar: Unicode.Scalar = switch self {
                case .usASCII: "\u{FFFD}"
                case .windows1252: Charset.windows1252Scalar(b)
                default: Unicode.Scalar(b)
                }
                out.append(contentsOf: UTF8.encode(scalar)!)
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// windows-1252 differs from ISO-8859-1 only in 0x80–0x9F
    /// (per the WHATWG Encoding Standard index; five bytes are undefined).
    private static func windows1252Scalar(_ b: UInt8) -> Unicode.Scalar {
        guard b >= 0x80 && b <= 0x9F else { return Unicode.Scalar(b) }
        let table: [UInt32] = [
            0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
            0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
            0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
            0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
        ]
        return Unicode.Scalar(table[Int(b - 0x80)]) ?? "\u{FFFD}"
    }
}
