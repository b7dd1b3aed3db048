/// Finds the parts of a multipart body (RFC 2046 §5.1.1).
///
/// A delimiter is a line that starts with "--" boundary followed by the end
/// of the line, by WSP (transport padding; junk after it is tolerated), or
/// by "--" for the close delimiter (anything after it is tolerated). The CR LF (or bare LF)
/// before a delimiter belongs to the delimiter, not to the part.
/// Like widespread servers: the preamble and epilogue are kept apart, a
/// missing close delimiter ends the last part at the end of the body, a
/// boundary that is a prefix of another ("abc" vs "abc-1") does not match.
struct MultipartSplit {
    var preamble: Range<Int>?
    var parts: [Range<Int>]
    var epilogue: Range<Int>?
    var closed: Bool

    static func split(_ bytes: [UInt8], body: Range<Int>, boundary: [UInt8], maximumParts: Int) -> MultipartSplit {
        var result = MultipartSplit(preamble: nil, parts: [], epilogue: nil, closed: false)
        var position = body.lowerBound
        var partStart: Int? = nil
        while position < body.upperBound {
            let line = Line.at(position, in: bytes, limit: body.upperBound)
            if let kind = delimiterKind(bytes, line.content, boundary) {
                // The line ending before the delimiter is the delimiter's.
                var contentEnd = line.content.lowerBound
                if contentEnd > body.lowerBound, bytes[contentEnd - 1] == ASCII.lf { contentEnd -= 1 }
                if contentEnd > body.lowerBound, bytes[contentEnd - 1] == ASCII.cr { contentEnd -= 1 }
                if let start = partStart {
                    result.parts.append(start..<max(start, contentEnd))
                } else if line.content.lowerBound > body.lowerBound {
                    result.preamble = body.lowerBound..<contentEnd
                }
                if kind == .close || result.parts.count >= maximumParts {
                    result.closed = kind == .close
                    if line.next < body.upperBound { result.epilogue = line.next..<body.upperBound }
                    return result
                }
                partStart = line.next
            }
            position = line.next
        }
        if let start = partStart {
            result.parts.append(start..<body.upperBound)
        } else if !body.isEmpty {
            result.preamble = body
        }
        return result
    }

    enum DelimiterKind { case open, close }

    static func delimiterKind(_ bytes: [UInt8], _ line: Range<Int>, _ boundary: [UInt8]) -> DelimiterKind? {
        let need = 2 + boundary.count
        guard line.count >= need, bytes[line.lowerBound] == ASCII.hyphen, bytes[line.lowerBound + 1] == ASCII.hyphen
        else { return nil }
        var i = line.lowerBound + 2
        for b in boundary {
            guard bytes[i] == b else { return nil }
            i += 1
        }
        if i + 1 < line.upperBound, bytes[i] == ASCII.hyphen, bytes[i + 1] == ASCII.hyphen { return .close }
        // Transport padding, or WSP then junk ("--b ignored text"), which
        // widespread parsers accept; "--b-1" (a longer boundary) is no match.
        guard i == line.upperBound || ASCII.isWSP(bytes[i]) else { return nil }
        return .open
    }
}
