import Foundation
import Testing
@testable import PanelSecurity

/// The symbol's structure against ISO/IEC 18004 (sizes, byte-mode
/// capacities, finder and timing patterns) and the SVG drawing of it. That a
/// scanner reads it back is shown by the browser test, which decodes the
/// set-up page's code with zbarimg.
@Suite struct QRCodeTests {
    // Byte-mode capacities from the standard's capacity table: version 1 holds
    // 14 bytes at level M and 17 at L; version 40 holds 2953 at L, 1273 at H.
    @Test(arguments: [(14, QRCode.Level.medium, 1), (15, .medium, 2), (17, .low, 1), (18, .low, 2), (2953, .low, 40), (1273, .high, 40)])
    func smallestVersionThatHoldsTheBytes(bytes: Int, level: QRCode.Level, version: Int) throws {
        let code = try QRCode(encoding: String(repeating: "a", count: bytes), level: level)
        #expect(code.version == version)
        #expect(code.size == 17 + 4 * version)
        #expect(code.modules.count == code.size * code.size)
    }

    @Test(arguments: [(2954, QRCode.Level.low), (1274, .high)])
    func moreThanVersion40HoldsIsRefused(bytes: Int, level: QRCode.Level) {
        #expect(throws: QRCode.Failure.tooLong(bytes: bytes)) {
            try QRCode(encoding: String(repeating: "a", count: bytes), level: level)
        }
    }

    @Test func finderAndTimingPatterns() throws {
        let code = try QRCode(encoding: "otpauth://totp/postcell.test:owner%40example.org?secret=JBSWY3DPEHPK3PXP&issuer=postcell.test")
        let n = code.size
        // A finder pattern: a dark 7×7 ring, a light ring, a dark 3×3 core,
        // with a light separator outside it.
        func finder(at ox: Int, _ oy: Int) -> Bool {
            for y in 0..<7 {
                for x in 0..<7 {
                    let ring = max(abs(x - 3), abs(y - 3))
                    if code[ox + x, oy + y] != (ring != 2) { return false }
                }
            }
            return true
        }
        #expect(finder(at: 0, 0))
        #expect(finder(at: n - 7, 0))
        #expect(finder(at: 0, n - 7))
        #expect(!finder(at: n - 7, n - 7))
        for i in 0..<8 {
            #expect(!code[7, i] && !code[i, 7], "separator of the top-left pattern")
        }
        // Timing patterns on row 6 and column 6 alternate, dark on even indices.
        for i in 8..<(n - 8) {
            #expect(code[i, 6] == (i % 2 == 0))
            #expect(code[6, i] == (i % 2 == 0))
        }
        // The dark module beside the bottom-left finder pattern.
        #expect(code[8, n - 8])
        // Outside the symbol is light (the quiet zone).
        #expect(!code[-1, 0] && !code[n, n])
    }

    @Test func nonASCIIAndNULBytesAreEncoded() throws {
        let a = try QRCode(encoding: "owner@bücher.example\u{0}x")
        let b = try QRCode(encoding: "owner@bucher.example\u{0}x")
        #expect(a.modules != b.modules)
    }

    @Test func svgDrawsEveryDarkModuleOnceInsideTheQuietZone() throws {
        let code = try QRCode(encoding: "https://postcell.test/")
        let svg = code.svg(pixelsPerModule: 3, quietZone: 4, label: "A \"code\" <for> you & me", id: "qr")
        let side = code.size + 8
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"qr\" role=\"img\""))
        #expect(svg.contains("viewBox=\"0 0 \(side) \(side)\""))
        #expect(svg.contains("width=\"\(side * 3)\" height=\"\(side * 3)\""))
        #expect(svg.contains("aria-label=\"A &quot;code&quot; &lt;for&gt; you &amp; me\""))
        #expect(svg.hasSuffix("</svg>"))

        // Read the runs back ("M x y h run v1 h-run z") into a matrix.
        let d = try #require(svg.split(separator: " d=\"").last?.split(separator: "\"").first)
        var drawn = Array(repeating: false, count: code.size * code.size)
        for run in d.split(separator: "z") {
            let numbers = run.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            try #require(numbers.count == 5 && numbers[3] == 1 && numbers[2] == numbers[4], "\(run)")
            let (x, y, length) = (numbers[0] - 4, numbers[1] - 4, numbers[2])
            #expect(x >= 0 && y >= 0 && x + length <= code.size && y < code.size)
            for i in x..<(x + length) {
                #expect(!drawn[y * code.size + i], "drawn twice")
                drawn[y * code.size + i] = true
            }
        }
        #expect(drawn == code.modules)
    }
}
