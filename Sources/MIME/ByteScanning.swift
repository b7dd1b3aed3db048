// Small byte helpers shared by the MIME parsers. Internal on purpose: the
// public API speaks in `[UInt8]`, `Range<Int>` and `String`.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum ASCII {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let equals: UInt8 = 0x3D
    static let quote: UInt8 = 0x22
    static let backslash: UInt8 = 0x5C
    static let hyphen: UInt8 = 0x2D
    static let slash: UInt8 = 0x2F
    static let question: UInt8 = 0x3F
    static let underscore: UInt8 = 0x5F
    static let asterisk: UInt8 = 0x2A
    static let percent: UInt8 = 0x25
    static let apostrophe: UInt8 = 0x27

    /// RFC 5234 §B.1 WSP.
    @inline(__always) static func isWSP(_ b: UInt8) -> Bool { b == space || b == tab }

    /// WSP or a line-ending byte; what unfolded header values are trimmed of.
    @inline(__always) static func isWhitespace(_ b: UInt8) -> Bool {
        b == space || b == tab || b == cr || b == lf
    }

    @inline(__always) static func lower(_ b: UInt8) -> UInt8 {
        (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
}

extension Array where Element == UInt8 {
    /// ASCII case-insensitive equality (header names, media types, charsets).
    func equalsIgnoringASCIICase(_ other: [UInt8]) -> Bool {
        guard count == other.count else { return false }
        for i in indices where ASCII.lower(self[i]) != ASCII.lower(other[i]) { return false }
        return true
    }

    func asciiLowercased() -> [UInt8] { map(ASCII.lower) }

    /// Drops leading and trailing WSP, CR and LF.
    func trimmingWhitespace() -> [UInt8] {
        var lo = startIndex, hi = endIndex
        while lo < hi, ASCII.isWhitespace(self[lo]) { lo += 1 }
        while hi > lo, ASCII.isWhitespace(self[hi - 1]) { hi -= 1 }
        return Array(self[lo..<hi])
    }
}

extension Array where Element == UInt8 {
    /// The first LF in `range` (memchr: long lines are scanned a word at a time).
    func firstLF(in range: Range<Int>) -> Int? {
        guard !range.isEmpty else { return nil }
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        return withUnsafeBufferPointer { buf -> Int? in
            guard let hit = memchr(buf.baseAddress! + range.lowerBound, Int32(ASCII.lf), range.count) else { return nil }
            return buf.baseAddress!.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// The number of LF bytes in `range` (memchr from one to the next).
    func countLF(in range: Range<Int>) -> Int {
        guard !range.isEmpty else { return 0 }
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        return withUnsafeBufferPointer { buf in
            var n = 0
            var p = UnsafeRawPointer(buf.baseAddress! + range.lowerBound)
            let end = UnsafeRawPointer(buf.baseAddress! + range.upperBound)
            while p < end, let hit = memchr(p, Int32(ASCII.lf), end - p) {
                n += 1
                p = UnsafeRawPointer(hit) + 1
            }
            return n
        }
    }
}

extension String {
    var asciiBytes: [UInt8] { Array(utf8) }
}

/// A line of `bytes` starting at `start`: `content` excludes the line ending,
/// `next` is where the following line starts (== content end when the buffer
/// ends without a line ending). CR LF and a lone LF both end a line
/// (stored mail is CR LF, but broken input is tolerated).
struct Line {
    var content: Range<Int>
    var next: Int
    var hasEnding: Bool { next > content.upperBound }

    static func at(_ start: Int, in bytes: [UInt8], limit: Int) -> Line {
        guard let i = bytes.firstLF(in: start..<limit) else { return Line(content: start..<limit, next: limit) }
        let end = (i > start && bytes[i - 1] == ASCII.cr) ? i - 1 : i
        return Line(content: start..<end, next: i + 1)
    }
}
