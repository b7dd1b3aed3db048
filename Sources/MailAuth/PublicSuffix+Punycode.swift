/// Punycode (RFC 3492), the encoding of internationalised labels as
/// A-labels, so that Public Suffix List rules written in Unicode match
/// names written in ASCII and the other way round. Encoding only.
enum Punycode {
    // RFC 3492 §5: parameter values for Punycode.
    static let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700
    static let initialBias = 72, initialN: UInt32 = 0x80

    /// RFC 3492 §6.3: the encoding procedure (no "xn--" prefix).
    static func encode(_ input: [Unicode.Scalar]) -> String {
        let codes = input.map(\.value)
        var output = String(String.UnicodeScalarView(input.filter(\.isASCII)))
        let basicCount = output.unicodeScalars.count
        var handled = basicCount
        if basicCount > 0 { output.append("-") }
        var n = initialN, delta = 0, bias = initialBias
        while handled < codes.count {
            let m = codes.filter { $0 >= n }.min()!
            delta += Int(m - n) * (handled + 1)
            n = m
            for c in codes {
                if c < n { delta += 1 }
                guard c == n else { continue }
                var q = delta
                var k = base
                while true {
                    let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                    if q < t { break }
                    output.append(digit(t + (q - t) % (base - t)))
                    q = (q - t) / (base - t)
                    k += base
                }
                output.append(digit(q))
                bias = adapt(delta, handled + 1, first: handled == basicCount)
                delta = 0
                handled += 1
            }
            delta += 1
            n += 1
        }
        return output
    }

    /// RFC 3492 §6.1: bias adaptation.
    static func adapt(_ delta: Int, _ count: Int, first: Bool) -> Int {
        var d = first ? delta / damp : delta / 2
        d += d / count
        var k = 0
        while d > ((base - tMin) * tMax) / 2 {
            d /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * d / (d + skew)
    }

    /// 0–25 are "a"–"z", 26–35 are "0"–"9".
    static func digit(_ d: Int) -> Character {
        Character(Unicode.Scalar(UInt8(d < 26 ? 0x61 + d : 0x30 + d - 26)))
    }
}
