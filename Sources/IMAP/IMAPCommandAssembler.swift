/// Gathers one IMAP command from the wire: a line, and where the line ends
/// in a literal announcement (`{n}`, `{n+}`, `{n-}`; RFC 9051 §4.3, RFC 7888),
/// the literal's bytes and the rest of the command. Incremental: feed bytes,
/// get events; a synchronizing literal asks the driver to send `+ Ready`.
public struct IMAPCommandAssembler: Sendable {
    public enum Event: Hashable, Sendable {
        /// A whole command: the bytes with literals inline, ready for `IMAPParser`.
        case command([IMAPToken.Piece])
        /// Send a continuation request before the client sends the literal.
        case continuationNeeded
        /// A line or literal over the limits: answer BAD with this text; the
        /// command is dropped (its remaining bytes are skipped).
        case tooLong(tag: String?, text: String)
    }

    /// RFC 9051 §4.3 leaves lengths to servers; 8 KiB of line is plenty for
    /// commands without literals.
    public var maxLineLength = 8192
    /// Literals larger than this are refused (APPEND of a large message is
    /// bounded by the engine's message size limit).
    public var maxLiteralLength = 64 << 20
    /// Total bytes of one command, literals included.
    public var maxCommandLength = 64 << 20 + 65536

    enum State: Hashable, Sendable {
        case line
        case literal(remaining: Int)
        case skippingLine
        case skippingLiteral(remaining: Int, thenLine: Bool)
    }
    var state = State.line
    var pieces: [IMAPToken.Piece] = []
    var current: [UInt8] = []
    var total = 0

    public init() {}

    /// The text of `tooLong` for a refused literal (the driver answers NO [TOOBIG]).
    public static let literalTooLarge = "Literal too large"

    /// Consumes bytes from `input` (starting at `index`) and returns the
    /// events; bytes not yet forming a whole line stay buffered here.
    public mutating func feed(_ input: [UInt8]) -> [Event] {
        var events: [Event] = []
        var i = 0
        while i < input.count {
            switch state {
            case .line, .skippingLine:
                guard let lf = input[i...].firstIndex(of: 10) else {
                    if case .line = state {
                        current += input[i...]
                        if current.count > maxLineLength {
                            events.append(.tooLong(tag: tag(), text: "Command line too long"))
                            reset(); state = .skippingLine
                        }
                    }
                    return events
                }
                if case .skippingLine = state {
                    state = .line
                    i = lf + 1
                    continue
                }
                current += input[i..<lf]
                i = lf + 1
                if current.last == 13 { current.removeLast() }
                if current.count > maxLineLength {
                    events.append(.tooLong(tag: tag(), text: "Command line too long"))
                    reset()
                    continue
                }
                total += current.count
                if let (n, sync) = literalAnnouncement(current) {
                    let cut = current.lastIndex(of: UInt8(ascii: "{"))!
                    pieces.append(.text(Array(current[..<cut])))
                    current = []
                    if n > maxLiteralLength || total + n > maxCommandLength {
                        let t = tag()
                        reset()
                        if sync {
                            // The client waits for our answer and will not send the literal.
                            state = .line
                        } else {
                            state = .skippingLiteral(remaining: n, thenLine: true)
                        }
                        events.append(.tooLong(tag: t, text: IMAPCommandAssembler.literalTooLarge))
                        continue
                    }
                    state = .literal(remaining: n)
                    pieces.append(.literal([]))
                    if sync { events.append(.continuationNeeded) }
                    if n == 0 { state = .line }
                } else {
                    pieces.append(.text(current))
                    events.append(.command(pieces))
                    reset()
                }
            case .literal(let remaining):
                let take = min(remaining, input.count - i)
                if case .literal(var bytes) = pieces.removeLast() {
                    bytes += input[i..<(i + take)]
                    pieces.append(.literal(bytes))
                }
                i += take
                total += take
                state = remaining - take == 0 ? .line : .literal(remaining: remaining - take)
            case .skippingLiteral(let remaining, let thenLine):
                let take = min(remaining, input.count - i)
                i += take
                state = remaining - take > 0 ? .skippingLiteral(remaining: remaining - take, thenLine: thenLine) : (thenLine ? .skippingLine : .line)
            }
        }
        return events
    }

    /// Whether a literal is being received (the driver must not time out
    /// differently, and must not treat the bytes as commands).
    public var inLiteral: Bool {
        if case .literal = state { return true }
        return false
    }

    mutating func reset() {
        pieces = []
        current = []
        total = 0
        state = .line
    }

    /// The tag of the command being gathered, for a BAD reply.
    func tag() -> String? {
        var first: [UInt8] = []
        if case .text(let t)? = pieces.first { first = t } else { first = current }
        guard let sp = first.firstIndex(of: 32), sp > 0 else { return nil }
        let t = first[..<sp]
        guard t.allSatisfy({ IMAPParser.isAstringChar($0) && $0 != UInt8(ascii: "+") }) else { return nil }
        return String(decoding: t, as: UTF8.self)
    }

    /// `{n}` (synchronizing), `{n+}` / `{n-}` (non-synchronizing, RFC 7888) at the end of a line.
    func literalAnnouncement(_ line: [UInt8]) -> (Int, Bool)? {
        guard line.last == UInt8(ascii: "}"), let open = line.lastIndex(of: UInt8(ascii: "{")) else { return nil }
        var digits = Array(line[(open + 1)..<(line.count - 1)])
        var sync = true
        if digits.last == UInt8(ascii: "+") || digits.last == UInt8(ascii: "-") { digits.removeLast(); sync = false }
        guard !digits.isEmpty, digits.count <= 10, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return (Int(String(decoding: digits, as: UTF8.self))!, sync)
    }
}
