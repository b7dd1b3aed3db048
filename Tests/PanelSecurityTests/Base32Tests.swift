import Testing
@testable import PanelSecurity

@Suite struct Base32Tests {
    // RFC 4648 §10 test vectors (BASE32).
    static let vectors: [(String, String)] = [
        ("", ""),
        ("f", "MY======"),
        ("fo", "MZXQ===="),
        ("foo", "MZXW6==="),
        ("foob", "MZXW6YQ="),
        ("fooba", "MZXW6YTB"),
        ("foobar", "MZXW6YTBOI======"),
    ]

    @Test(arguments: vectors)
    func rfc4648Vectors(plain: String, encoded: String) {
        #expect(Base32.encode(Array(plain.utf8)) == encoded)
        #expect(Base32.decode(encoded) == Array(plain.utf8))
    }

    @Test func unpaddedEncoding() {
        #expect(Base32.encode(Array("foobar".utf8), padding: false) == "MZXW6YTBOI")
        #expect(Base32.encode(Array("f".utf8), padding: false) == "MY")
    }

    @Test func decodingToleratesWhatPeopleType() {
        let foobar = Array("foobar".utf8)
        #expect(Base32.decode("mzxw6ytboi") == foobar)          // lower case, no padding
        #expect(Base32.decode("MZXW 6YTB OI") == foobar)        // grouped with spaces
        #expect(Base32.decode("mzxw-6ytb-oi======") == foobar)  // hyphens, padding
        #expect(Base32.decode("MzXw6YtBoI") == foobar)          // mixed case
    }

    @Test func decodingRefusesGarbage() {
        #expect(Base32.decode("MZXW1===") == nil)   // '1' is not in the alphabet
        #expect(Base32.decode("MZXW0") == nil)      // nor '0'
        #expect(Base32.decode("M") == nil)          // 1 symbol cannot come from whole bytes
        #expect(Base32.decode("MZX") == nil)        // nor 3
        #expect(Base32.decode("MZXW6Y") == nil)     // nor 6
        #expect(Base32.decode("MY==MY==") == nil)   // padding in the middle
        #expect(Base32.decode("MZXW6YTB\n") == nil) // a line break is not a space
    }

    @Test func roundTripsEveryLength() {
        var bytes: [UInt8] = []
        for n in 0..<64 {
            #expect(Base32.decode(Base32.encode(bytes)) == bytes)
            #expect(Base32.decode(Base32.encode(bytes, padding: false).lowercased()) == bytes)
            bytes.append(UInt8(truncatingIfNeeded: n &* 37 &+ 11))
        }
    }
}
