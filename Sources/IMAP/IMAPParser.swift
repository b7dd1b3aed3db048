/// Parses an assembled command (`IMAPCommandAssembler`) into a tag and an
/// `IMAPCommand` (RFC 9051 §9 grammar, with RFC 3501 forms still in use).
/// Errors carry the text of the tagged BAD reply.
public struct IMAPParser {
    public struct Failure: Error, Hashable, Sendable {
        public var tag: String?
        public var text: String
        public init(tag: String?, text: String) { self.tag = tag; self.text = text }
    }

    enum Unit {
        case byte(UInt8)
        case literal([UInt8])
    }
    var units: [Unit] = []
    var i = 0
    var tag: String?

    public static func parse(_ pieces: [IMAPToken.Piece]) -> Result<(tag: String, command: IMAPCommand), Failure> {
        var p = IMAPParser()
        for piece in pieces {
            switch piece {
            case .text(let t): p.units += t.map { .byte($0) }
            case .literal(let l): p.units.append(.literal(l))
            }
        }
        do {
            let tag = try p.tagToken()
            p.tag = tag
            try p.space()
            let command = try p.command()
            guard p.i == p.units.count else { throw p.fail("Unexpected text after the command") }
            return .success((tag, command))
        } catch let f as Failure {
            return .failure(Failure(tag: p.tag, text: f.text))
        } catch {
            return .failure(Failure(tag: p.tag, text: "Syntax error"))
        }
    }

    // MARK: Characters (RFC 9051 §9)

    /// ATOM-CHAR: any CHAR except atom-specials.
    static func isAtomChar(_ b: UInt8) -> Bool {
        guard b > 0x20 && b < 0x7F else { return false }
        switch b {
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"), UInt8(ascii: "%"), UInt8(ascii: "*"),
             UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "]"):
            return false
        default:
            return true
        }
    }
    static func isAstringChar(_ b: UInt8) -> Bool { isAtomChar(b) || b == UInt8(ascii: "]") }
    static func isListChar(_ b: UInt8) -> Bool { isAstringChar(b) || b == UInt8(ascii: "%") || b == UInt8(ascii: "*") }

    func fail(_ text: String) -> Failure { Failure(tag: tag, text: text) }

    var peekByte: UInt8? {
        guard i < units.count, case .byte(let b) = units[i] else { return nil }
        return b
    }
    var atEnd: Bool { i == units.count }

    mutating func take(_ b: UInt8) -> Bool {
        if peekByte == b { i += 1; return true }
        return false
    }
    mutating func expect(_ b: UInt8, _ what: String) throws {
        guard take(b) else { throw fail("Expected \(what)") }
    }
    mutating func space() throws { try expect(32, "a space") }

    mutating func run(while pred: (UInt8) -> Bool) -> [UInt8] {
        var out: [UInt8] = []
        while let b = peekByte, pred(b) { out.append(b); i += 1 }
        return out
    }

    mutating func tagToken() throws -> String {
        let t = run { IMAPParser.isAstringChar($0) && $0 != UInt8(ascii: "+") }
        guard !t.isEmpty else { throw fail("Missing tag") }
        return String(decoding: t, as: UTF8.self)
    }

    mutating func atom() throws -> String {
        let a = run(while: IMAPParser.isAtomChar)
        guard !a.isEmpty else { throw fail("Expected an atom") }
        return String(decoding: a, as: UTF8.self)
    }

    /// quoted / literal
    mutating func string() throws -> [UInt8] {
        if i < units.count, case .literal(let l) = units[i] { i += 1; return l }
        guard take(UInt8(ascii: "\"")) else { throw fail("Expected a string") }
        var out: [UInt8] = []
        while let b = peekByte {
            i += 1
            if b == UInt8(ascii: "\"") { return out }
            if b == UInt8(ascii: "\\") {
                guard let n = peekByte, n == UInt8(ascii: "\"") || n == UInt8(ascii: "\\") else { throw fail("Bad escape in quoted string") }
                out.append(n); i += 1
                continue
            }
            guard b != 13 && b != 10 && b != 0 else { throw fail("Bad character in quoted string") }
            out.append(b)
        }
        throw fail("Unterminated quoted string")
    }

    var startsString: Bool {
        if i < units.count, case .literal = units[i] { return true }
        return peekByte == UInt8(ascii: "\"")
    }

    /// Unquoted UTF-8 is accepted too (RFC 9051 wants it quoted; clients
    /// send it bare, and widespread servers take it).
    mutating func astring() throws -> String {
        if startsString { return String(decoding: try string(), as: UTF8.self) }
        let a = run { IMAPParser.isAstringChar($0) || $0 >= 0x80 }
        guard !a.isEmpty else { throw fail("Expected a string or atom") }
        return String(decoding: a, as: UTF8.self)
    }

    /// `mailbox = "INBOX" / astring`; INBOX is case-insensitive (RFC 9051 §5.1).
    mutating func mailbox() throws -> String {
        let m = try astring()
        return m.uppercased() == "INBOX" ? "INBOX" : m
    }

    mutating func listMailbox() throws -> String {
        if startsString { return String(decoding: try string(), as: UTF8.self) }
        let a = run(while: IMAPParser.isListChar)
        guard !a.isEmpty else { throw fail("Expected a mailbox pattern") }
        return String(decoding: a, as: UTF8.self)
    }

    mutating func number() throws -> Int {
        let d = run { $0 >= 48 && $0 <= 57 }
        guard !d.isEmpty, d.count <= 19, let v = Int(String(decoding: d, as: UTF8.self)) else { throw fail("Expected a number") }
        return v
    }

    mutating func nzNumber() throws -> UInt32 {
        let v = try number()
        guard v > 0, v <= Int(UInt32.max) else { throw fail("Expected a non-zero 32-bit number") }
        return UInt32(v)
    }

    mutating func sequenceSet() throws -> IMAPSequenceSet {
        if take(UInt8(ascii: "$")) { return .savedResult }
        var ranges: [(IMAPSequenceSet.Bound, IMAPSequenceSet.Bound)] = []
        repeat {
            let a = try seqNumber()
            let b = take(UInt8(ascii: ":")) ? try seqNumber() : a
            ranges.append((a, b))
        } while take(UInt8(ascii: ","))
        return IMAPSequenceSet(ranges: ranges)
    }

    mutating func seqNumber() throws -> IMAPSequenceSet.Bound {
        if take(UInt8(ascii: "*")) { return .star }
        return .number(try nzNumber())
    }

    mutating func flagList() throws -> [String] {
        try expect(UInt8(ascii: "("), "(")
        var flags: [String] = []
        while !take(UInt8(ascii: ")")) {
            if !flags.isEmpty { try space() }
            flags.append(try flag())
        }
        return flags
    }

    /// `flag = "\Answered" / ... / keyword / flag-extension`
    mutating func flag() throws -> String {
        let backslash = take(UInt8(ascii: "\\"))
        let a = try atom()
        return backslash ? "\\" + a : a
    }

    /// A parenthesised list of atoms, or one atom.
    mutating func atomList() throws -> [String] {
        if take(UInt8(ascii: "(")) {
            var out: [String] = []
            while !take(UInt8(ascii: ")")) {
                if !out.isEmpty { try space() }
                out.append(try atom())
            }
            return out
        }
        return [try atom()]
    }
}
