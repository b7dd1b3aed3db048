/// Reads server responses (RFC 9051 §7) from a byte stream, for a client.
/// Untrusted input: everything a server (or whoever sits in its place)
/// sends. Incremental: feed bytes as they arrive, in pieces of any size;
/// a response split across reads, inside a literal or not, waits for the
/// rest, and nothing is parsed twice.
///
/// ```
/// var p = IMAPResponseParser()
/// try p.feed(Array("* 12 FETCH (BODY[HEADER] {5}\r\nab".utf8))   // []
/// try p.feed(Array("cde)\r\nA1 OK done\r\n".utf8))               // [.untagged(.fetch(...)), .tagged("A1", ...)]
/// ```
///
/// Framing first, grammar second: a response is a line, and where a line of
/// a data response ends in a literal announcement (`{n}`, or `~{n}` for
/// literal8, RFC 3516) the literal and the rest of the response follow.
/// Status responses (`tag OK ...`, `* BYE ...`, `+ ...`) are a single line
/// of text even when that text happens to end in `{5}`.
///
/// Strict where a wrong guess would misread data, tolerant where servers
/// commonly stray: extra spaces between tokens, a bare LF as line end, a
/// status without text, a `+` without a space, unknown response codes,
/// FETCH items and untagged responses (kept, not rejected).
public struct IMAPResponseParser: Sendable {
    /// One line of a response, literals excluded. A SEARCH or ESEARCH of a
    /// large mailbox lists its numbers on one line, hence the size.
    public var maxLineLength = 16 << 20
    /// One literal: a whole message fetched with BODY[] (RFC 9051 §4.3 leaves
    /// the size to the peers).
    public var maxLiteralLength = 256 << 20
    /// One response, literals included.
    public var maxResponseLength = 512 << 20
    /// Literals in one response (a FETCH of many sections).
    public var maxLiteralCount = 10_000
    /// Nesting of parentheses: body structures, thread lists, extension data.
    public var maxDepth = 64

    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public enum Code: Hashable, Sendable {
            /// The response does not follow the grammar, or nests deeper
            /// than `maxDepth`; it was skipped.
            case syntax, tooDeep
            /// A framing limit was passed; the stream cannot be trusted any more.
            case lineTooLong, literalTooLarge, responseTooLarge, tooManyLiterals
            /// The stream ended inside a response (`finish()`).
            case truncated
        }
        public var code: Code
        /// What was wrong, without the response's content.
        public var detail: String
        /// Responses completed before the failure, in the same `feed` call.
        public var parsed: [IMAPResponse]
        /// Whether parsing can go on after this failure (`feed([])` continues).
        public var recoverable: Bool { code == .syntax || code == .tooDeep }

        public init(_ code: Code, _ detail: String, parsed: [IMAPResponse] = []) {
            self.code = code; self.detail = detail; self.parsed = parsed
        }
        public var description: String { "IMAP response \(code): \(detail)" }
    }

    /// A literal inside a frame: where it sits in the text, its octets, and
    /// whether it was announced as literal8.
    struct Literal: Hashable, Sendable {
        var at: Int
        var bytes: [UInt8]
        var binary: Bool
    }

    enum Mode: Hashable, Sendable {
        case line
        case literal(remaining: Int)
    }

    var mode = Mode.line
    /// The frame so far: text without literal announcements or line ends.
    var text: [UInt8] = []
    var literals: [Literal] = []
    /// Where the current line starts in `text`.
    var lineStart = 0
    var total = 0
    /// Bytes fed but not looked at, kept after a syntax error.
    var pending: [UInt8] = []
    /// Set after a limit error: the stream position is lost.
    var broken: Failure?

    public init() {}

    /// Whether a response has begun but not ended.
    public var hasPartialResponse: Bool { !text.isEmpty || !literals.isEmpty || mode != .line }

    /// Consumes `bytes` and returns the responses they complete. On a
    /// malformed response, throws a recoverable `Failure` carrying the
    /// responses completed before it; the bad response is dropped and the
    /// bytes after it wait for the next `feed` (which may be empty).
    public mutating func feed(_ bytes: [UInt8]) throws -> [IMAPResponse] {
        if let broken { throw Failure(broken.code, broken.detail) }
        var input = bytes
        if !pending.isEmpty {
            input = pending + bytes
            pending = []
        }
        var out: [IMAPResponse] = []
        var i = 0
        while i < input.count {
            switch mode {
            case .literal(let remaining):
                let n = min(remaining, input.count - i)
                literals[literals.count - 1].bytes += input[i..<(i + n)]
                i += n
                total += n
                if remaining == n {
                    mode = .line
                    lineStart = text.count
                } else {
                    mode = .literal(remaining: remaining - n)
                }
            case .line:
                guard let lf = input[i...].firstIndex(of: 10) else {
                    text += input[i...]
                    total += input.count - i
                    try checkLine(parsed: out)
                    return out
                }
                text += input[i..<lf]
                total += lf - i + 1
                i = lf + 1
                if text.count > lineStart, text.last == 13 { text.removeLast() }
                try checkLine(parsed: out)
                if text.isEmpty && literals.isEmpty {
                    // A stray empty line between responses: nothing to parse.
                    total = 0
                    continue
                }
                if lineStart == 0 && IMAPResponseParser.isStatusLine(text) {
                    try complete(into: &out, rest: input[i...])
                } else if let (n, binary, cut) = IMAPResponseParser.literalAnnouncement(text, from: lineStart) {
                    guard n <= maxLiteralLength else { throw limit(.literalTooLarge, "literal of \(n) octets", out) }
                    guard total + n <= maxResponseLength else { throw limit(.responseTooLarge, "response over \(maxResponseLength) octets", out) }
                    guard literals.count < maxLiteralCount else { throw limit(.tooManyLiterals, "more than \(maxLiteralCount) literals", out) }
                    text.removeSubrange(cut...)
                    literals.append(Literal(at: text.count, bytes: [], binary: binary))
                    literals[literals.count - 1].bytes.reserveCapacity(min(n, 1 << 20))
                    mode = n == 0 ? .line : .literal(remaining: n)
                    lineStart = text.count
                } else {
                    try complete(into: &out, rest: input[i...])
                }
            }
        }
        return out
    }

    /// The connection closed: returns what is still waiting after a
    /// recoverable failure, and throws `.truncated` if a response was cut off.
    @discardableResult
    public mutating func finish() throws -> [IMAPResponse] {
        if let broken { throw Failure(broken.code, broken.detail) }
        let rest = pending.isEmpty ? [] : try feed([])
        if hasPartialResponse {
            let what = mode == .line ? "a line" : "a literal"
            reset()
            throw Failure(.truncated, "the stream ended inside \(what)", parsed: rest)
        }
        return rest
    }

    /// Parses one complete response (the bytes of a single response, line
    /// end included). For tests and one-off use.
    public static func parse(_ bytes: [UInt8]) throws -> IMAPResponse {
        var p = IMAPResponseParser()
        let r = try p.feed(bytes) + p.finish()
        guard r.count == 1 else { throw Failure(.syntax, "expected one response, found \(r.count)") }
        return r[0]
    }

    mutating func checkLine(parsed: [IMAPResponse]) throws {
        if text.count - lineStart > maxLineLength { throw limit(.lineTooLong, "line over \(maxLineLength) octets", parsed) }
        if total > maxResponseLength { throw limit(.responseTooLarge, "response over \(maxResponseLength) octets", parsed) }
    }

    mutating func limit(_ code: Failure.Code, _ detail: String, _ parsed: [IMAPResponse]) -> Failure {
        let f = Failure(code, detail, parsed: parsed)
        broken = f
        reset()
        return f
    }

    mutating func complete(into out: inout [IMAPResponse], rest: ArraySlice<UInt8>) throws {
        var g = IMAPResponseGrammar(text: text, literals: literals, maxDepth: maxDepth)
        reset()
        do {
            out.append(try g.response())
        } catch let f as Failure {
            pending = Array(rest)
            throw Failure(f.code, f.detail, parsed: out)
        }
    }

    mutating func reset() {
        mode = .line
        text = []
        literals = []
        lineStart = 0
        total = 0
    }

    /// A first line that is a whole response: a continuation request, a
    /// tagged status, or an untagged OK/NO/BAD/PREAUTH/BYE (RFC 9051 §7.1,
    /// §7.5); their text may end in "{5}" without announcing anything.
    static func isStatusLine(_ line: [UInt8]) -> Bool {
        guard let first = line.first else { return true }
        if first != UInt8(ascii: "*") { return true }
        var k = 1
        while k < line.count, line[k] == 32 { k += 1 }
        var word: [UInt8] = []
        while k < line.count, line[k] != 32, line[k] != UInt8(ascii: "["), word.count < 8 { word.append(line[k] & 0xDF); k += 1 }
        switch String(decoding: word, as: UTF8.self) {
        case "OK", "NO", "BAD", "BYE", "PREAUTH": return true
        default: return false
        }
    }

    /// `literal = "{" number "}" CRLF`, `literal8 = "~{" number "}" CRLF` at
    /// the end of the line starting at `from`: (length, binary, where the
    /// announcement starts).
    static func literalAnnouncement(_ text: [UInt8], from: Int) -> (Int, Bool, Int)? {
        guard text.count > from, text.last == UInt8(ascii: "}") else { return nil }
        var k = text.count - 2
        while k >= from, text[k] >= 48 && text[k] <= 57 { k -= 1 }
        let digits = text.count - 2 - k
        guard digits >= 1, digits <= 10, k >= from, text[k] == UInt8(ascii: "{") else { return nil }
        guard let n = Int(String(decoding: text[(k + 1)..<(text.count - 1)], as: UTF8.self)) else { return nil }
        if k > from, text[k - 1] == UInt8(ascii: "~") { return (n, true, k - 1) }
        return (n, false, k)
    }
}
