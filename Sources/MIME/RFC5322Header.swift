/// A parsed header section (RFC 5322 §2.1, §2.2): the fields in order plus
/// where the section and the body start.
///
/// Parsing is tolerant, as stored mail is whatever arrived:
/// - a bare LF ends a line like CR LF;
/// - 8-bit bytes in names or values are kept (RFC 6532 allows UTF-8 values);
/// - a line that is neither a field nor a continuation ("garbage") is skipped
///   but stays inside the header range;
/// - if the very first line is not a field, the section is empty and the body
///   starts at the first byte (a part whose header was lost);
/// - a missing empty line ends the header at the end of the buffer;
/// - an mbox "From " line at the very start is skipped as garbage.
public struct RFC5322Header: Hashable, Sendable {
    public var fields: [HeaderField]
    /// The header section including the empty line that ends it, if present.
    public var range: Range<Int>
    /// Where the body starts (== `range.upperBound`).
    public var bodyStart: Int { range.upperBound }
    /// False when the section ended without an empty line (end of buffer).
    public var hasSeparator: Bool

    public init(fields: [HeaderField], range: Range<Int>, hasSeparator: Bool) {
        self.fields = fields
        self.range = range
        self.hasSeparator = hasSeparator
    }

    /// Parses the header section of `bytes[range]`. Offsets in the result are
    /// offsets into `bytes`.
    public static func parse(_ bytes: [UInt8], in range: Range<Int>) -> RFC5322Header {
        var fields: [HeaderField] = []
        var position = range.lowerBound
        let limit = range.upperBound
        var current: (nameEnd: Int, valueStart: Int, start: Int)? = nil
        var currentEnd = position
        var first = true

        func closeCurrent() {
            guard let c = current else { return }
            let name = Array(bytes[c.start..<c.nameEnd])
            // Value ends before the final line ending of the field.
            var valueEnd = currentEnd
            if valueEnd > c.valueStart, bytes[valueEnd - 1] == ASCII.lf { valueEnd -= 1 }
            if valueEnd > c.valueStart, bytes[valueEnd - 1] == ASCII.cr { valueEnd -= 1 }
            let value = Array(bytes[c.valueStart..<max(c.valueStart, valueEnd)])
            fields.append(HeaderField(name: name, rawValue: value, range: c.start..<currentEnd))
            current = nil
        }

        while position < limit {
            let line = Line.at(position, in: bytes, limit: limit)
            if line.content.isEmpty {
                // RFC 5322 §2.1: the empty line separates header from body.
                if line.hasEnding {
                    closeCurrent()
                    return RFC5322Header(fields: fields, range: range.lowerBound..<line.next, hasSeparator: true)
                }
                break
            }
            let lead = bytes[line.content.lowerBound]
            if ASCII.isWSP(lead) {
                // RFC 5322 §2.2.3 folding: continuation of the previous field.
                if current != nil { currentEnd = line.next }
                else if first { return empty(range) }
                position = line.next
                first = false
                continue
            }
            closeCurrent()
            if let nameEnd = fieldNameEnd(bytes, line.content) {
                current = (nameEnd.name, nameEnd.colon + 1, line.content.lowerBound)
                currentEnd = line.next
            } else if first && !isMboxFromLine(bytes, line.content) {
                return empty(range)
            }
            position = line.next
            first = false
        }
        closeCurrent()
        return RFC5322Header(fields: fields, range: range.lowerBound..<position, hasSeparator: false)
    }

    public static func parse(_ bytes: [UInt8]) -> RFC5322Header {
        parse(bytes, in: 0..<bytes.count)
    }

    private static func empty(_ range: Range<Int>) -> RFC5322Header {
        RFC5322Header(fields: [], range: range.lowerBound..<range.lowerBound, hasSeparator: false)
    }

    /// RFC 5322 §2.2 field-name = 1*ftext (printable US-ASCII except ":");
    /// §4.5 (obsolete syntax) allows WSP before the colon. 8-bit bytes are
    /// tolerated in names. Returns the end of the name and the colon offset.
    private static func fieldNameEnd(_ bytes: [UInt8], _ line: Range<Int>) -> (name: Int, colon: Int)? {
        var i = line.lowerBound
        while i < line.upperBound {
            let b = bytes[i]
            if b == ASCII.colon { break }
            if b < 0x21 || b == 0x7F {
                // Only WSP (then the colon) may follow the name.
                var j = i
                while j < line.upperBound, ASCII.isWSP(bytes[j]) { j += 1 }
                guard j < line.upperBound, bytes[j] == ASCII.colon, j > i, i > line.lowerBound else { return nil }
                return (i, j)
            }
            i += 1
        }
        guard i < line.upperBound, i > line.lowerBound else { return nil }
        return (i, i)
    }

    private static func isMboxFromLine(_ bytes: [UInt8], _ line: Range<Int>) -> Bool {
        line.count >= 5 && Array(bytes[line.lowerBound..<line.lowerBound + 5]) == "From ".asciiBytes
    }
}

extension RFC5322Header {
    /// The first field named `name` (ASCII case-insensitive, RFC 5322 §1.2.2).
    public func field(_ name: String) -> HeaderField? {
        let n = name.asciiBytes
        return fields.first { $0.name.equalsIgnoringASCIICase(n) }
    }

    /// Every field named `name`, in order.
    public func fields(named name: String) -> [HeaderField] {
        let n = name.asciiBytes
        return fields.filter { $0.name.equalsIgnoringASCIICase(n) }
    }

    /// The unfolded value of the first field named `name`.
    public subscript(_ name: String) -> [UInt8]? { field(name)?.unfoldedValue }
}
