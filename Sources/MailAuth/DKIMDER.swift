/// Just enough DER (ITU-T X.690) to read the key structures DKIM meets:
/// an RSA public key as SubjectPublicKeyInfo (RFC 5280 §4.1, what RFC 6376
/// §3.6.1 puts in p=) or as a bare RSAPublicKey (RFC 8017 §A.1.1, which some
/// publishers use), and an Ed25519 private key in PKCS#8 (RFC 8410 §7).
/// Definite lengths only; anything else is nil.
struct DERReader {
    let bytes: [UInt8]
    var position: Int
    let end: Int

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.position = 0
        self.end = bytes.count
    }

    init(_ bytes: [UInt8], _ range: Range<Int>) {
        self.bytes = bytes
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    var atEnd: Bool { position == end }

    /// Reads one element: its tag and the range of its contents.
    mutating func read() -> (tag: UInt8, contents: Range<Int>)? {
        guard position + 2 <= end else { return nil }
        let tag = bytes[position]
        var length = Int(bytes[position + 1])
        var p = position + 2
        if length & 0x80 != 0 {
            let count = length & 0x7F
            guard count >= 1, count <= 3, p + count <= end else { return nil }
            length = 0
            for _ in 0..<count { length = length << 8 | Int(bytes[p]); p += 1 }
        }
        guard length <= end - p else { return nil }
        position = p + length
        return (tag, p..<(p + length))
    }

    mutating func read(_ expected: UInt8) -> Range<Int>? {
        let saved = position
        guard let e = read(), e.tag == expected else { position = saved; return nil }
        return e.contents
    }

    static let sequence: UInt8 = 0x30
    static let integer: UInt8 = 0x02
    static let bitString: UInt8 = 0x03
    static let octetString: UInt8 = 0x04
    static let oid: UInt8 = 0x06

    /// 1.2.840.113549.1.1.1 rsaEncryption (RFC 8017 §A.1).
    static let rsaEncryption: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]
    /// 1.3.101.112 id-Ed25519 (RFC 8410 §3).
    static let ed25519: [UInt8] = [0x2B, 0x65, 0x70]

    /// The modulus and exponent of an RSA public key in either form, with
    /// leading zero octets of the modulus removed.
    static func rsaPublicKey(_ der: [UInt8], allowSPKI: Bool = true) -> (n: [UInt8], e: [UInt8])? {
        var outer = DERReader(der)
        guard let seq = outer.read(sequence), outer.atEnd else { return nil }
        var inner = DERReader(der, seq)
        if allowSPKI, let algorithm = inner.read(sequence) {
            // SubjectPublicKeyInfo: AlgorithmIdentifier, BIT STRING.
            var alg = DERReader(der, algorithm)
            guard let oid = alg.read(oid), Array(der[oid]) == rsaEncryption,
                  let bits = inner.read(bitString), inner.atEnd,
                  bits.count > 1, der[bits.lowerBound] == 0 else { return nil }
            return rsaPublicKey(Array(der[(bits.lowerBound + 1)..<bits.upperBound]), allowSPKI: false)
        }
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        guard let n = inner.read(integer), let e = inner.read(integer), inner.atEnd else { return nil }
        let modulus = Array(der[n].drop(while: { $0 == 0 }))
        let exponent = Array(der[e].drop(while: { $0 == 0 }))
        guard !modulus.isEmpty, !exponent.isEmpty, der[n].first.map({ $0 & 0x80 == 0 }) == true else { return nil }
        return (modulus, exponent)
    }

    /// Bits in a big-endian unsigned number without leading zero octets.
    static func bitCount(_ n: [UInt8]) -> Int {
        guard let first = n.first else { return 0 }
        return (n.count - 1) * 8 + (8 - first.leadingZeroBitCount)
    }

    /// The 32-octet seed of a PKCS#8 Ed25519 private key (RFC 8410 §7):
    /// SEQUENCE { INTEGER 0|1, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } ... }
    static func ed25519Seed(_ der: [UInt8]) -> [UInt8]? {
        var outer = DERReader(der)
        guard let seq = outer.read(sequence) else { return nil }
        var inner = DERReader(der, seq)
        guard inner.read(integer) != nil, let algorithm = inner.read(sequence) else { return nil }
        var alg = DERReader(der, algorithm)
        guard let oid = alg.read(oid), Array(der[oid]) == ed25519,
              let wrapped = inner.read(octetString) else { return nil }
        var key = DERReader(der, wrapped)
        guard let seed = key.read(octetString), seed.count == 32 else { return nil }
        return Array(der[seed])
    }

    /// Whether a PKCS#8 structure names id-Ed25519.
    static func isEd25519PKCS8(_ der: [UInt8]) -> Bool { ed25519Seed(der) != nil }

    /// PKCS#8 for an Ed25519 seed (RFC 8410 §10.3's layout, version 0).
    static func ed25519PKCS8(seed: [UInt8]) -> [UInt8] {
        [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03] + ed25519 + [0x04, 0x22, 0x04, 0x20] + seed
    }
}
