/// Base64 (RFC 4648 §4) for SASL exchanges, strict: no whitespace, padding required.
public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    public static func decode(_ input: [UInt8]) -> [UInt8]? {
        guard input.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        var i = 0
        while i < input.count {
            let c = input[i..<i + 4]
            let pad = c.reversed().prefix(while: { $0 == UInt8(ascii: "=") }).count
            guard pad <= 2, i + 4 == input.count || pad == 0 else { return nil }
            var v: UInt32 = 0
            for (j, b) in c.enumerated() {
                let d: UInt8
                if j >= 4 - pad { d = 0 } else {
                    d = table[Int(b)]
                    if d == 0xFF { return nil }
                }
                v = v << 6 | UInt32(d)
            }
            out.append(UInt8(v >> 16 & 0xFF))
            if pad < 2 { out.append(UInt8(v >> 8 & 0xFF)) }
            if pad < 1 { out.append(UInt8(v & 0xFF)) }
            i += 4
        }
        return out
    }

    public static func encode(_ input: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < input.count {
            let n = min(3, input.count - i)
            var v: UInt32 = 0
            for j in 0..<3 { v = v << 8 | UInt32(j < n ? input[i + j] : 0) }
            for j in 0..<4 {
                out.append(j <= n ? alphabet[Int(v >> UInt32(18 - 6 * j) & 0x3F)] : UInt8(ascii: "="))
            }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
