import NIOCore

/// Reads SMTP replies from a server (RFC 5321 §4.2), line by line, as the
/// client side needs them: `250-…` continues, `250 …` ends; the enhanced
/// status code (RFC 3463) is taken from the last line when every line starts
/// with the same one.
///
/// ```
/// S: 250-mx.example.test greets client.example.test
/// S: 250-PIPELINING
/// S: 250 8BITMIME
/// ```
public struct SMTPReplyParser: Sendable {
    /// RFC 5321 §4.5.3.1.5 says 512 octets; servers send longer, so allow more.
    public static let maxLine = 8192
    /// Lines in one reply; a server sending more is broken or hostile.
    public static let maxLines = 256

    public enum Failure: Error, Hashable, Sendable {
        case lineTooLong
        case tooManyLines
        /// Not `DDD`, `DDD-` or `DDD ` at the start of a line, or codes that change mid-reply.
        case malformed(String)
    }

    var code: Int?
    var lines: [String] = []

    public init() {}

    /// The next complete reply in `buffer`, consuming it; nil when more input is needed.
    public mutating func parse(_ buffer: inout ByteBuffer) throws(Failure) -> SMTPReply? {
        while true {
            let view = buffer.readableBytesView
            guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
                if view.count > SMTPReplyParser.maxLine { throw .lineTooLong }
                return nil
            }
            let length = lf - view.startIndex
            if length > SMTPReplyParser.maxLine { throw .lineTooLong }
            var line = Array(view[view.startIndex..<lf])
            buffer.moveReaderIndex(forwardBy: length + 1)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if let reply = try take(line) { return reply }
        }
    }

    mutating func take(_ line: [UInt8]) throws(Failure) -> SMTPReply? {
        let text = String(decoding: line, as: UTF8.self)
        guard line.count >= 3, line[0...2].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let value = Int(String(decoding: line[0...2], as: UTF8.self)), (200...599).contains(value) || (100...199).contains(value)
        else { throw .malformed(text) }
        let separator = line.count > 3 ? line[3] : UInt8(ascii: " ")
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else { throw .malformed(text) }
        if let c = code, c != value { throw .malformed(text) }
        code = value
        lines.append(line.count > 4 ? String(decoding: line[4...], as: UTF8.self) : "")
        if lines.count > SMTPReplyParser.maxLines { throw .tooManyLines }
        guard separator == UInt8(ascii: " ") else { return nil }
        defer { code = nil; lines = [] }
        return SMTPReplyParser.reply(value, lines)
    }

    /// Splits an enhanced code off the lines when all of them carry the same
    /// one whose class matches the reply's (RFC 3463 §2, RFC 2034 §4).
    static func reply(_ code: Int, _ lines: [String]) -> SMTPReply {
        guard let first = lines.first, let enhanced = enhancedCode(first, code: code),
              lines.allSatisfy({ $0 == enhanced || $0.hasPrefix(enhanced + " ") }) else {
            return SMTPReply(code, nil, lines)
        }
        return SMTPReply(code, enhanced, lines.map { $0 == enhanced ? "" : String($0.dropFirst(enhanced.count + 1)) })
    }

    static func enhancedCode(_ text: String, code: Int) -> String? {
        let word = text.prefix { $0 != " " }
        let parts = word.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 1, String(parts[0]) == String(code / 100),
              (1...3).contains(parts[1].count), (1...3).contains(parts[2].count),
              parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }) else { return nil }
        return String(word)
    }
}

extension SMTPReply {
    /// The reply as one line for logs, DSNs and queue listings: `550 5.1.1 User unknown`.
    public var oneLine: String {
        var s = String(code)
        if let e = enhanced { s += " " + e }
        let text = lines.joined(separator: " ").trimmingCharacters(in: " ")
        if !text.isEmpty { s += " " + text }
        return s
    }

    /// The enhanced status to report for this reply: its own, else one made
    /// from the reply's class (RFC 3463 §3.1, X.0.0).
    public var status: String { enhanced ?? "\(code / 100).0.0" }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}
