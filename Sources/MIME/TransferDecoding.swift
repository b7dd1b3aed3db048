/// Content-Transfer-Encoding decoders (RFC 2045 §6.7, §6.8) and the
/// RFC 2047 §4.2 "Q" variant. All are lenient the way mail readers are:
/// they never fail, they skip what they cannot read.
public enum TransferDecoding {
    /// RFC 2045 §6.8 base64. Characters outside the alphabet (line breaks,
    /// spaces, stray garbage) are ignored, as §6.8 asks; decoding stops at the
    /// first "=" pad; a trailing partial quantum of 2 or 3 symbols is kept.
    public static func base64(_ input: some Collection<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        var acc: UInt32 = 0
        var n = 0
        for c in input {
            guard let v = base64Value(c) else {
                if c == ASCII.equals { break }
                continue
            }
            acc = acc << 6 | UInt32(v)
            n += 1
            if n == 4 {
                out.append(UInt8(truncatingIfNeeded: acc >> 16))
                out.append(UInt8(truncatingIfNeeded: acc >> 8))
                out.append(UInt8(truncatingIfNeeded: acc))
                acc = 0; n = 0
            }
        }
        if n == 2 { out.append(UInt8(truncatingIfNeeded: acc >> 4)) }
        if n == 3 {
            out.append(UInt8(truncatingIfNeeded: acc >> 10))
            out.append(UInt8(truncatingIfNeeded: acc >> 2))
        }
        return out
    }

    @inline(__always) static func base64Value(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x41...0x5A: return c - 0x41
        case 0x61...0x7A: return c - 0x61 + 26
        case 0x30...0x39: return c - 0x30 + 52
        case 0x2B: return 62
        case 0x2F: return 63
        default: return nil
        }
    }

    /// RFC 2045 §6.7 quoted-printable. "=XX" becomes the octet; "=" before a
    /// line ending is a soft break (§6.7 rule 5); trailing WSP on a line is
    /// dropped (rule 3); a malformed "=" is kept literally (§6.7 note 1).
    /// Line endings in the input (CR LF or bare LF) come out as CR LF.
    public static func quotedPrintable(_ input: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var lineStart = 0
        while lineStart < input.count {
            let line = Line.at(lineStart, in: input, limit: input.count)
            var end = line.content.upperBound
            while end > line.content.lowerBound, ASCII.isWSP(input[end - 1]) { end -= 1 }
            var i = line.content.lowerBound
            var softBreak = false
            while i < end {
                let b = input[i]
                if b == ASCII.equals {
                    if i + 1 == end { softBreak = true; break }
                    if i + 2 < end,
                       let hi = ASCII.hexValue(input[i + 1]),
                       let lo = ASCII.hexValue(input[i + 2]) {
                        out.append(hi << 4 | lo)
                        i += 3
                        continue
                    }
                }
                out.append(b)
                i += 1
            }
            if line.hasEnding && !softBreak { out.append(contentsOf: [ASCII.cr, ASCII.lf]) }
            lineStart = line.next
        }
        return out
    }

    /// RFC 2047 §4.2 "Q" encoding: like quoted-printable, but "_" is a space
    /// and there are no line breaks.
    public static func qEncoding(_ input: some Collection<UInt8>) -> [UInt8] {
        let bytes = Array(input)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == ASCII.underscore { out.append(ASCII.space); i += 1; continue }
            if b == ASCII.equals, i + 2 < bytes.count,
               let hi = ASCII.hexValue(bytes[i + 1]), let lo = ASCII.hexValue(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
                continue
            }
            out.append(b)
            i += 1
        }
        return out
    }
}
