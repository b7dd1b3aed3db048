/// Base32 (RFC 4648 §6), the encoding of TOTP secrets in otpauth URIs and
/// in the "enter this key by hand" text of the enrolment page.
///
/// Encoding is canonical (upper case, `=` padding unless asked not to).
/// Decoding is tolerant of what people type: lower case, spaces, hyphens
/// and missing padding; anything else outside the alphabet is refused.
public enum Base32 {
    // RFC 4648 §6, Table 3.
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
    static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() {
            t[Int(c)] = UInt8(i)
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") { t[Int(c + 32)] = UInt8(i) }  // lower case
        }
        return t
    }()

    public static func encode<C: Collection<UInt8>>(_ input: C, padding: Bool = true) -> String {
        let bytes = Array(input)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 4) / 5 * 8)
        var i = 0
        while i < bytes.count {
            // One quantum: up to 5 bytes (40 bits) into 8 characters (RFC 4648 §6).
            let n = min(5, bytes.count - i)
            var v: UInt64 = 0
            for j in 0..<5 { v = v << 8 | UInt64(j < n ? bytes[i + j] : 0) }
            // 1, 2, 3, 4, 5 bytes give 2, 4, 5, 7, 8 significant characters.
            let significant = (n * 8 + 4) / 5
            for j in 0..<8 {
                if j < significant {
                    out.append(alphabet[Int(v >> UInt64(35 - 5 * j) & 0x1F)])
                } else if padding {
                    out.append(UInt8(ascii: "="))
                }
            }
            i += 5
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes Base32; nil when a character is outside the alphabet, padding
    /// appears before the end, or the length cannot come from whole bytes.
    public static func decode(_ text: String) -> [UInt8]? {
        var symbols: [UInt8] = []
        symbols.reserveCapacity(text.utf8.count)
        var sawPadding = false
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "-"):
                continue
            case UInt8(ascii: "="):
                sawPadding = true
            default:
                if sawPadding { return nil }
                let d = table[Int(c)]
                if d == 0xFF { return nil }
                symbols.append(d)
            }
        }
        // A final quantum has 2, 4, 5 or 7 characters (RFC 4648 §6, cases 1-4).
        guard [0, 2, 4, 5, 7].contains(symbols.count % 8) else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(symbols.count * 5 / 8)
        var buffer: UInt32 = 0
        var bits = 0
        for d in symbols {
            buffer = buffer << 5 | UInt32(d)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(buffer >> UInt32(bits) & 0xFF))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        return out
    }
}
