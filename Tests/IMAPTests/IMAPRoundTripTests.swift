import Foundation
@testable import IMAP
import Testing

/// Codec round trips: every command and response example of RFC 9051,
/// RFC 3501 and the extensions (Tests/Vectors/IMAP, see its README) parses,
/// encodes and parses again to the same value, byte for byte where the
/// example is canonical; generated values from a fixed seed do the same;
/// malformed input gives errors, never a crash.
@Suite struct IMAPRoundTripTests {
    // MARK: Vectors

    struct Vector {
        var file: String
        var line: Int
        var section: String
        var client: Bool
        var canonical: Bool
        var lines: [String]
        var bytes: [UInt8] { Array((lines.joined(separator: "\r\n") + "\r\n").utf8) }
        var label: String { "\(file):\(line) (\(section)) \(lines[0])" }
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors/IMAP")
    static let files = ["rfc9051.txt", "rfc3501.txt", "extensions.txt"]

    static func load(_ file: String) -> [Vector] {
        let data = [UInt8]((try? Data(contentsOf: root.appendingPathComponent(file))) ?? Data())
        var out: [Vector] = []
        var section = ""
        for (n, raw) in data.split(separator: 10, omittingEmptySubsequences: false).enumerated() {
            var line = String(decoding: raw, as: UTF8.self)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.hasPrefix("#") { section = String(line.dropFirst(2)); continue }
            if line.hasPrefix("|") {
                if !out.isEmpty { out[out.count - 1].lines.append(String(line.dropFirst(line.hasPrefix("| ") ? 2 : 1))) }
                continue
            }
            let kind = line.prefix(2)
            guard ["C:", "C~", "S:", "S~"].contains(kind), line.count > 3 else { continue }
            out.append(Vector(file: file, line: n + 1, section: section, client: kind.hasPrefix("C"),
                              canonical: kind.hasSuffix(":"), lines: [String(line.dropFirst(3))]))
        }
        return out
    }

    static let vectors: [Vector] = files.flatMap(load)

    static func assemble(_ bytes: [UInt8]) -> [IMAPToken.Piece]? {
        var a = IMAPCommandAssembler()
        a.maxLineLength = 1 << 20
        let commands = a.feed(bytes).compactMap { e -> [IMAPToken.Piece]? in
            if case .command(let p) = e { return p }
            return nil
        }
        return commands.count == 1 ? commands[0] : nil
    }

    static func parseCommand(_ bytes: [UInt8]) -> (tag: String, command: IMAPCommand)? {
        guard let pieces = assemble(bytes) else { return nil }
        return try? IMAPParser.parse(pieces).get()
    }

    /// Parse, encode, assemble, parse again; nil when all is well.
    static func commandProblem(_ v: Vector) -> String? {
        guard let pieces = assemble(v.bytes) else { return "does not assemble" }
        let parsed: (tag: String, command: IMAPCommand)
        switch IMAPParser.parse(pieces) {
        case .success(let p): parsed = p
        case .failure(let f): return "does not parse: \(f.text)"
        }
        let encoded = IMAPCommandEncoder.encode(tag: parsed.tag, parsed.command)
        let mode: IMAPCommandEncoder.LiteralMode = v.lines.joined().contains("+}") ? .nonSynchronizing : .synchronizing
        let wire = IMAPCommandEncoder.wire(encoded, literals: mode).flatMap { $0 }
        guard let again = assemble(wire) else { return "encoding does not assemble: \(String(decoding: wire, as: UTF8.self))" }
        guard again == encoded else { return "encoder pieces differ from the assembler's" }
        guard let reparsed = try? IMAPParser.parse(again).get() else { return "encoding does not parse: \(String(decoding: wire, as: UTF8.self))" }
        guard reparsed.tag == parsed.tag, reparsed.command == parsed.command else { return "re-parsed value differs" }
        if v.canonical && wire != v.bytes { return "not canonical, encoded as \(String(decoding: wire, as: UTF8.self))" }
        if !v.canonical && wire == v.bytes { return "marked ~ but canonical" }
        return nil
    }

    static func responseProblem(_ v: Vector) -> String? {
        let r: IMAPResponse
        do { r = try IMAPResponseParser.parse(v.bytes) } catch { return "does not parse: \(error)" }
        let encoded = r.encode()
        guard let again = try? IMAPResponseParser.parse(encoded) else { return "encoding does not parse: \(String(decoding: encoded, as: UTF8.self))" }
        guard again == r else { return "re-parsed value differs" }
        if v.canonical && encoded != v.bytes { return "not canonical, encoded as \(String(decoding: encoded, as: UTF8.self))" }
        if !v.canonical && encoded == v.bytes { return "marked ~ but canonical" }
        return nil
    }

    @Test func vectorFilesLoad() {
        let commands = Self.vectors.filter(\.client)
        let responses = Self.vectors.filter { !$0.client }
        #expect(commands.count >= 250)
        #expect(responses.count >= 500)
        for file in Self.files { #expect(Self.vectors.contains { $0.file == file }, "\(file) missing") }
    }

    /// (a) Every client command example.
    @Test func commandVectorsRoundTrip() {
        for v in Self.vectors where v.client {
            let problem = Self.commandProblem(v)
            #expect(problem == nil, "\(v.label): \(problem ?? "")")
        }
    }

    /// (b) Every server response example.
    @Test func responseVectorsRoundTrip() {
        for v in Self.vectors where !v.client {
            let problem = Self.responseProblem(v)
            #expect(problem == nil, "\(v.label): \(problem ?? "")")
        }
    }

    /// Each file's responses as one stream, fed an octet at a time.
    @Test func responseVectorsDripFed() throws {
        for file in Self.files {
            let vs = Self.vectors.filter { $0.file == file && !$0.client }
            let expected = try vs.map { try IMAPResponseParser.parse($0.bytes) }
            var p = IMAPResponseParser()
            var got: [IMAPResponse] = []
            for b in vs.flatMap(\.bytes) { got += try p.feed([b]) }
            try p.finish()
            #expect(got == expected, "\(file)")
        }
    }

    /// A response with literals, cut at every offset into two reads.
    @Test func responseSplitAnywhere() throws {
        for v in Self.vectors where !v.client && v.lines.count > 1 {
            let whole = try IMAPResponseParser.parse(v.bytes)
            let bytes = v.bytes
            for cut in 0...bytes.count {
                var p = IMAPResponseParser()
                let r = try p.feed(Array(bytes[..<cut])) + p.feed(Array(bytes[cut...]))
                #expect(r == [whole], "\(v.label) cut at \(cut)")
            }
        }
    }

    // MARK: Encoder details

    @Test func commandStringForms() {
        func wire(_ c: IMAPCommand, _ o: IMAPCommandEncoder.Options = .init()) -> String {
            String(decoding: IMAPCommandEncoder.bytes(tag: "a", c, options: o), as: UTF8.self)
        }
        #expect(wire(.login(user: "fred", password: "fat man")) == "a LOGIN fred \"fat man\"\r\n")
        #expect(wire(.login(user: "NIL", password: "")) == "a LOGIN \"NIL\" \"\"\r\n")
        #expect(wire(.login(user: "a\"b\\c", password: "x\r\ny")) == "a LOGIN \"a\\\"b\\\\c\" {4+}\r\nx\r\ny\r\n")
        #expect(wire(.create("Entwürfe")) == "a CREATE {9+}\r\nEntwürfe\r\n")
        #expect(wire(.create("Entwürfe"), .init(utf8Quoted: true)) == "a CREATE \"Entwürfe\"\r\n")
        #expect(wire(.create(String(repeating: "x ", count: 501))).hasPrefix("a CREATE {1002+}\r\n"))
        #expect(wire(.create(String(repeating: "x", count: 1001))).hasPrefix("a CREATE xxx"))
        #expect(wire(.select("INBOX", condstore: true, qresync: IMAPQResync(uidValidity: 1, modseq: 2, knownUIDs: IMAPSequenceSet(ranges: [(.number(1), .star)]))))
                == "a SELECT INBOX (CONDSTORE QRESYNC (1 2 1:*))\r\n")
        #expect(wire(.fetch(IMAPSequenceSet(ranges: [(.number(1), .number(1))]), [.flags, .internalDate, .rfc822Size], uid: true, changedSince: 7, vanished: true))
                == "a UID FETCH 1 FAST (CHANGEDSINCE 7 VANISHED)\r\n")
        #expect(wire(.search(.and([.flag("\\Recent", set: true), .flag("\\Seen", set: false), .not(.flag("\\Recent", set: false))]), uid: false, returnOptions: nil, charset: nil))
                == "a SEARCH RECENT UNSEEN NOT OLD\r\n")
    }

    @Test func synchronizingLiteralsAreChunked() {
        let c = IMAPCommand.append(mailbox: "saved-messages", flags: ["\\Seen"], date: nil, message: Array("hi\r\n".utf8))
        let chunks = IMAPCommandEncoder.wire(IMAPCommandEncoder.encode(tag: "A003", c))
        #expect(chunks.map { String(decoding: $0, as: UTF8.self) } == ["A003 APPEND saved-messages (\\Seen) {4}\r\n", "hi\r\n\r\n"])
        let utf8 = IMAPCommand.append(mailbox: "INBOX", flags: [], date: nil, message: [0, 1], binary: true, utf8: true)
        #expect(IMAPCommandEncoder.bytes(tag: "A4", utf8) == Array("A4 APPEND INBOX UTF8 (~{2+}\r\n".utf8) + [0, 1] + Array(")\r\n".utf8))
    }

    @Test func literalMinusSynchronizesOnlyLargeLiterals() {
        let c = IMAPCommand.login(user: String(repeating: "u\r\n", count: 2000), password: "p\r\n")
        let chunks = IMAPCommandEncoder.wire(IMAPCommandEncoder.encode(tag: "L", c), literals: .literalMinus)
        #expect(chunks.count == 2)
        #expect(chunks.first.map { String(decoding: $0, as: UTF8.self) } == "L LOGIN {6000}\r\n")
        #expect(chunks.last.map { String(decoding: $0, as: UTF8.self).hasSuffix("\r\n {3+}\r\np\r\n\r\n") } == true)
    }

    @Test func responseModelHelpers() throws {
        let r = try IMAPResponseParser.parse(Array("* LIST (\\Subscribed) \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\") \"OLDNAME\" (\"Bar\"))\r\n".utf8))
        guard case .untagged(.list(let l)) = r else { Issue.record("not a LIST: \(r)"); return }
        #expect(l.childInfo == ["SUBSCRIBED"])
        #expect(l.oldName == "Bar")
        let b = try IMAPResponseParser.parse(Array(("* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"8BIT\" 12 1 NIL "
            + "(\"attachment\" (\"FILENAME\" \"a.txt\")) (\"de\" \"en\") \"http://x/\"))\r\n").utf8))
        guard case .untagged(.fetch(1, let atts)) = b, atts.count == 1, case .bodyStructure(.single(let p)) = atts[0] else { Issue.record("not a body: \(b)"); return }
        #expect(p.kind == .text(lines: 1))
        #expect(p.md5 == nil)
        #expect(p.disposition == IMAPBodyDisposition("attachment", parameters: [IMAPBodyParameter("FILENAME", "a.txt")]))
        #expect(p.language == ["de", "en"])
        #expect(p.location == "http://x/")
    }

    // MARK: (c) Generated values

    @Test func generatedCommandsRoundTrip() {
        var g = Generator(seed: 0x1A2B_3C4D)
        for n in 0..<3000 {
            let c = g.command()
            let tag = "g\(n)"
            for mode in [IMAPCommandEncoder.LiteralMode.synchronizing, .nonSynchronizing] {
                let bytes = IMAPCommandEncoder.wire(IMAPCommandEncoder.encode(tag: tag, c), literals: mode).flatMap { $0 }
                let back = Self.parseCommand(bytes)
                #expect(back?.tag == tag && back?.command == c, "\(c) as \(String(decoding: bytes, as: UTF8.self))")
            }
        }
    }

    @Test func generatedResponsesRoundTrip() throws {
        var g = Generator(seed: 0x5EED_F00D)
        for _ in 0..<3000 {
            let r = g.response()
            let bytes = r.encode()
            let back = try? IMAPResponseParser.parse(bytes)
            #expect(back == r, "\(r) as \(String(decoding: bytes, as: UTF8.self))")
        }
    }

    // MARK: (d) Malformed input

    static let malformed: [String] = [
        "* 1 FETCH (FLAGS (\\Seen)\r\n", "* 1 FETCH (FLAGS (\\Seen)))\r\n", "* 1 FETCH FLAGS (\\Seen)\r\n",
        "* LIST (\\Noselect \"/\" foo\r\n", "* LIST () \"//\" foo\r\n", "* 0 FETCH (FLAGS ())\r\n", "* 12 FETCH (UID 0)\r\n",
        "* 3 EXPUNGE extra\r\n", "* STATUS INBOX (MESSAGES)\r\n", "* SEARCH 1 x\r\n", "* SEARCH 0\r\n",
        "* ESEARCH (TAG \"x\" MIN 1\r\n", "* ESEARCH MIN x\r\n", "* THREAD (1 2\r\n", "* THREAD ()\r\n", "* THREAD (1)(\r\n",
        "* NAMESPACE ((\"\" \"/\"))\r\n", "* NAMESPACE () NIL NIL\r\n", "* QUOTA \"\" (STORAGE 1)\r\n", "* VANISHED (LATER) 1\r\n",
        "* VANISHED 1:\r\n", "* 1 FETCH (ENVELOPE (NIL NIL))\r\n", "* 1 FETCH (BODYSTRUCTURE (\"TEXT\"))\r\n",
        "* 1 FETCH (BODYSTRUCTURE (\"A\" \"B\" (\"x\") NIL NIL \"7BIT\" 1))\r\n", "* 1 FETCH (BODY[HEADER.FIELDS ()] NIL)\r\n",
        "* 1 FETCH (BODY[4.FOO] NIL)\r\n", "* 1 FETCH (INTERNALDATE \"unterminated)\r\n", "* 99999999999 EXISTS\r\n",
        "* 1 FETCH (RFC822.SIZE 99999999999999999999999)\r\n", "A1 MAYBE done\r\n", "A1 BYE done\r\n", "A1\r\n",
        "\u{1}\u{2}garbage\r\n", ")))\r\n", "* 1 FETCH (MODSEQ (x))\r\n", "* FLAGS (\\Seen\r\n", "* ID (\"a\")\r\n", "*\r\n",
        "* 1 FETCH (BODY[] {3}\r\nabc\r\n", "* CAPABILITY IMAP4rev1 {3}\r\nabc\r\n", "* LIST () NIL {3}\r\nabc extra\r\n",
    ]

    @Test func malformedResponsesThrowAndRecover() throws {
        for text in Self.malformed {
            var p = IMAPResponseParser()
            var threw = false
            do {
                let r = try p.feed(Array(text.utf8))
                try p.finish()
                Issue.record("parsed \(text.debugDescription) as \(r)")
            } catch let f as IMAPResponseParser.Failure {
                threw = true
                if f.recoverable {
                    let next = try p.feed(Array("A1 OK done\r\n".utf8))
                    #expect(next == [.tagged("A1", IMAPStatusResponse(.ok, "done"))], "\(text.debugDescription)")
                }
            }
            #expect(threw, "\(text.debugDescription)")
        }
    }

    static let malformedCommands: [String] = [
        "a FETCH 1 BODY[]<9223372036854775807.2>", "a FETCH 1 BINARY[1]<99999999999.1>", "a SEARCH LARGER 99999999999999999999",
        "a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 99999999999999999999)", "a SELECT INBOX (QRESYNC (0 1))",
        "a STORE 1 +FLAGS.SILENT", "a APPEND INBOX UTF8 ({3}\r\nabc)", "a SORT () UTF-8 ALL", "a THREAD REFERENCES",
    ]

    /// Commands the server must refuse without trapping (an offset past 32
    /// bits once overflowed in `IMAPParser.partial`).
    @Test func malformedCommandsFail() {
        for text in Self.malformedCommands {
            #expect(Self.parseCommand(Array((text + "\r\n").utf8)) == nil, "\(text.debugDescription)")
        }
    }

    @Test func literalLongerThanTheDataIsTruncated() throws {
        var p = IMAPResponseParser()
        #expect(try p.feed(Array("* 1 FETCH (BODY[] {100}\r\nshort)\r\n".utf8)) == [])
        #expect(p.hasPartialResponse)
        #expect(Self.failure { try p.finish() }?.code == .truncated)
    }

    static func failure(_ body: () throws -> Void) -> IMAPResponseParser.Failure? {
        do { try body() } catch let f as IMAPResponseParser.Failure { return f } catch { return nil }
        return nil
    }

    @Test func limits() throws {
        var p = IMAPResponseParser()
        p.maxLiteralLength = 10
        #expect(Self.failure { _ = try p.feed(Array("* 1 FETCH (BODY[] {11}\r\n".utf8)) }?.code == .literalTooLarge)
        #expect(Self.failure { _ = try p.feed(Array("A1 OK done\r\n".utf8)) }?.code == .literalTooLarge)
        var q = IMAPResponseParser()
        q.maxLineLength = 64
        #expect(Self.failure { _ = try q.feed(Array(("* SEARCH" + String(repeating: " 1", count: 40)).utf8)) }?.code == .lineTooLong)
        var d = IMAPResponseParser()
        let deep = "* 1 FETCH (BODYSTRUCTURE " + String(repeating: "(", count: 200) + String(repeating: ")", count: 200) + ")\r\nA1 OK done\r\n"
        #expect(Self.failure { _ = try d.feed(Array(deep.utf8)) }?.code == .tooDeep)
        #expect(try d.feed([]) == [.tagged("A1", IMAPStatusResponse(.ok, "done"))])
    }

    @Test func responsesBeforeAFailureAreKept() throws {
        var p = IMAPResponseParser()
        do {
            _ = try p.feed(Array("* 1 EXISTS\r\n* 1 FETCH (\r\n* 2 EXISTS\r\n".utf8))
            Issue.record("no failure")
        } catch let f as IMAPResponseParser.Failure {
            #expect(f.parsed == [.untagged(.exists(1))])
        }
        #expect(try p.feed([]) == [.untagged(.exists(2))])
    }

    /// Random octets and damaged vectors: errors or values that round-trip.
    @Test func fuzzedInputNeverCrashes() throws {
        var g = Generator(seed: 0xF022)
        let samples = Self.vectors.map(\.bytes)
        for n in 0..<4000 {
            var bytes = samples[n % samples.count]
            switch n % 4 {
            case 0: bytes = (0..<g.int(0...80)).map { _ in UInt8(g.int(0...255)) } + [13, 10]
            case 1: for _ in 0...g.int(0...3) { bytes[g.int(0...(bytes.count - 1))] = UInt8(g.int(0...255)) }
            case 2: bytes.removeSubrange(g.int(0...(bytes.count - 1))..<bytes.count); bytes += [13, 10]
            default: bytes.insert(contentsOf: g.pick(["(", ")", "\"", "{5}\r\n", " ", "\\", "[", "]", "~{2}\r\n"]).utf8, at: g.int(0...bytes.count))
            }
            var p = IMAPResponseParser()
            if let rs = try? p.feed(bytes) {
                for r in rs { #expect(try IMAPResponseParser.parse(r.encode()) == r, "\(bytes)") }
            }
            if let c = Self.parseCommand(bytes) {
                let again = Self.parseCommand(IMAPCommandEncoder.bytes(tag: c.tag, c.command))
                #expect(again?.command == c.command, "\(String(decoding: bytes, as: UTF8.self).debugDescription)")
            }
        }
    }
}

/// Seeded generator of commands and responses (SplitMix64).
struct Generator {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(next() % UInt64(r.count)) }
    mutating func bool() -> Bool { next() & 1 == 1 }
    mutating func pick<T>(_ a: [T]) -> T { a[int(0...(a.count - 1))] }
    mutating func many<T>(_ r: ClosedRange<Int>, _ f: (inout Generator) -> T) -> [T] { (0..<int(r)).map { _ in f(&self) } }
    mutating func maybe<T>(_ f: (inout Generator) -> T) -> T? { bool() ? f(&self) : nil }

    mutating func atom() -> String {
        let first = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ$")
        let rest = first + Array("0123456789-_.")
        return String(pick(first)) + String((0..<int(0...7)).map { _ in pick(rest) })
    }
    mutating func upperAtom() -> String { atom().uppercased() }
    mutating func flag() -> String {
        pick(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$Forwarded", "\\" + atom(), atom()])
    }
    mutating func number32() -> UInt32 { pick([1, 2, 17, 4392, UInt32.max, UInt32(int(1...100_000))]) }
    mutating func number64() -> Int64 { pick([0, 1, 715194045007, Int64.max, Int64(int(0...1_000_000))]) }

    /// Text needing every form: atoms, quoting, escapes, literals (CR LF, 8-bit, NUL, long).
    mutating func text() -> String {
        switch int(0...9) {
        case 0: return ""
        case 1: return String(repeating: pick(["a", "é", " "]), count: int(990...1100))
        case 2: return atom()
        default:
            let parts = ["a", "Z", "0", " ", "\"", "\\", "(", ")", "{", "}", "%", "*", "[", "]", "é", "日本", "😀", "\r\n", "\u{0}", "NIL", "+", "~"]
            return (0..<int(1...12)).map { _ in pick(parts) }.joined()
        }
    }
    /// Text for a status or continuation line: no line end, no leading space, no brackets.
    mutating func lineText() -> String {
        let parts = ["a", "Z", "0", " ", "\"", "\\", "(", ")", "{5}", "%", "é", "done", "NIL", "+"]
        let t = (0..<int(0...10)).map { _ in pick(parts) }.joined()
        return t.hasPrefix(" ") ? "x" + t : t
    }
    mutating func mailbox() -> String {
        let m = bool() ? pick(["INBOX", "Drafts", "Sent Items", "a/b", "&ZeVnLIqe-", "inbox.x"]) : text()
        return m.uppercased() == "INBOX" ? "INBOX" : m
    }
    mutating func bytes() -> [UInt8] { (0..<int(0...40)).map { _ in UInt8(int(0...255)) } }
    mutating func date() -> String { "\(int(1...28))-\(pick(["Jan", "Feb", "Dec"]))-\(int(1990...2030))" }

    mutating func sequenceSet() -> IMAPSequenceSet {
        if int(0...15) == 0 { return .savedResult }
        return IMAPSequenceSet(ranges: many(1...4) { g in
            let a: IMAPSequenceSet.Bound = g.int(0...5) == 0 ? .star : .number(g.number32())
            return (a, g.bool() ? a : (g.int(0...3) == 0 ? .star : .number(g.number32())))
        })
    }

    mutating func searchKey(depth: Int) -> IMAPSearchKey {
        if depth > 0, int(0...2) == 0 {
            switch int(0...2) {
            case 0: return .or(searchKey(depth: depth - 1), searchKey(depth: depth - 1))
            case 1: return .not(searchKey(depth: depth - 1))
            default: return .and(many(2...3) { $0.searchKey(depth: depth - 1) })
            }
        }
        switch int(0...15) {
        case 0: return .all
        case 1: return .flag(pick(["\\Answered", "\\Deleted", "\\Draft", "\\Flagged", "\\Seen", "\\Recent"]), set: bool())
        case 2: return .keyword(flag(), set: bool())
        case 3: return .header(pick(["From", "To", "Cc", "Bcc", "Subject", "X-" + atom(), text()]), text())
        case 4: return .body(text())
        case 5: return .text(text())
        case 6: return .before(date())
        case 7: return .on(date())
        case 8: return .since(date())
        case 9: return pick([.sentBefore(date()), .sentOn(date()), .sentSince(date())])
        case 10: return .larger(int(0...1_000_000))
        case 11: return .smaller(int(0...1_000_000))
        case 12: return .uid(sequenceSet())
        case 13: return .sequence(sequenceSet())
        default: return .modseq(number64())
        }
    }

    mutating func program() -> IMAPSearchKey {
        bool() ? searchKey(depth: 3) : .and(many(2...4) { $0.searchKey(depth: 2) })
    }

    mutating func section() -> IMAPSection {
        let part = bool() ? [] : many(1...3) { $0.int(1...30) }
        var texts: [IMAPSection.Text] = [.whole, .header, .text, .headerFields(many(1...3) { $0.atom() }),
                                         .headerFieldsNot(many(1...3) { $0.atom() })]
        if !part.isEmpty { texts.append(.mime) }
        return IMAPSection(part: part, text: pick(texts))
    }

    mutating func partial() -> ClosedRange<Int>? {
        maybe { g in let a = g.int(0...10_000); return a...(a + g.int(0...5000)) }
    }

    mutating func fetchItem() -> IMAPFetchItem {
        switch int(0...14) {
        case 0...9: return pick([.uid, .flags, .internalDate, .rfc822Size, .envelope, .bodyStructure, .body, .modseq,
                                 .rfc822, .rfc822Header])
        case 10: return .rfc822Text
        case 11: return .bodySection(section(), partial: partial(), peek: bool())
        case 12: return .binary(bool() ? [] : many(1...3) { $0.int(1...9) }, partial: partial(), peek: bool())
        case 13: return .binarySize(bool() ? [] : many(1...3) { $0.int(1...9) })
        default: return .bodySection(IMAPSection(), partial: nil, peek: false)
        }
    }

    mutating func command() -> IMAPCommand {
        switch int(0...37) {
        case 0: return pick([.capability, .noop, .logout, .startTLS, .idle, .check, .close, .unselect, .expunge, .namespace])
        case 1: return .login(user: text(), password: text())
        case 2: return .authenticate(mechanism: upperAtom(), initialResponse: pick([nil, "=", "dGVzdAB0ZXN0AHRlc3Q="]))
        case 3: return .enable(many(1...3) { $0.upperAtom() })
        case 4: return .id(maybe { g in Dictionary(g.many(0...3) { ($0.text(), $0.text()) }, uniquingKeysWith: { a, _ in a }) })
        case 5, 6:
            let q: IMAPQResync? = maybe { g in
                var q = IMAPQResync(uidValidity: g.number32(), modseq: max(1, g.number64()), knownUIDs: g.maybe { $0.sequenceSet() })
                if g.bool() { q.knownSequences = g.sequenceSet(); q.knownSequenceUIDs = g.sequenceSet() }
                return q
            }
            return bool() ? .select(mailbox(), condstore: bool(), qresync: q) : .examine(mailbox(), condstore: bool(), qresync: q)
        case 7: return pick([.create(mailbox()), .delete(mailbox()), .subscribe(mailbox()), .unsubscribe(mailbox())])
        case 8: return .rename(from: mailbox(), to: mailbox())
        case 9, 10:
            return .list(reference: mailbox(), patterns: many(0...3) { g in g.pick(["*", "%", "INBOX/%", g.text()]) },
                         selection: many(0...2) { g in g.pick(["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"]) },
                         returnOptions: many(0...3) { g in
                             g.pick([.subscribed, .children, .specialUse, .status(g.many(1...3) { $0.pick(["MESSAGES", "UNSEEN", "SIZE"]) })])
                         })
        case 11: return .lsub(reference: mailbox(), pattern: pick(["*", "%", text()]))
        case 12: return .status(mailbox(), many(1...4) { $0.pick(["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "HIGHESTMODSEQ"]) })
        case 13, 14:
            let utf8 = int(0...3) == 0
            return .append(mailbox: mailbox(), flags: many(0...3) { $0.flag() },
                           date: maybe { g in IMAPDate.formatDateTime(Int64(g.int(0...2_000_000_000)), zoneMinutes: g.pick([0, -480, 330])) },
                           message: bytes(), binary: utf8 || bool(), utf8: utf8)
        case 15: return .uidExpunge(sequenceSet())
        case 16...20:
            let uid = bool()
            let changed: Int64? = maybe { $0.number64() }
            return .fetch(sequenceSet(), many(1...5) { $0.fetchItem() }, uid: uid, changedSince: changed,
                          vanished: uid && changed != nil && bool())
        case 21, 22:
            return .store(sequenceSet(), pick([.replace, .add, .remove]), silent: bool(), flags: many(0...3) { $0.flag() },
                          uid: bool(), unchangedSince: maybe { $0.number64() })
        case 23: return .copy(sequenceSet(), mailbox(), uid: bool())
        case 24: return .move(sequenceSet(), mailbox(), uid: bool())
        case 25...29:
            return .search(program(), uid: bool(), returnOptions: maybe { g in g.many(0...3) { $0.pick(["MIN", "MAX", "ALL", "COUNT", "SAVE"]) } },
                           charset: maybe { $0.pick(["UTF-8", "US-ASCII"]) })
        case 30, 31:
            return .sort(many(1...3) { g in IMAPSortCriterion(g.pick(IMAPSortCriterion.Key.allCases), reverse: g.bool()) },
                         charset: pick(["UTF-8", "US-ASCII"]), program(), uid: bool())
        case 32: return .thread(pick(["REFERENCES", "ORDEREDSUBJECT"]), charset: "UTF-8", program(), uid: bool())
        case 33: return .getQuota(text())
        case 34: return .getQuotaRoot(mailbox())
        case 35: return .setQuota(text(), many(0...2) { g in IMAPQuotaLimit(resource: g.pick(["STORAGE", "MESSAGE"]), limit: g.number64()) })
        case 36: return .compress("DEFLATE")
        default: return .search(.and([.flag("\\Recent", set: true), .flag("\\Seen", set: false)]), uid: false, returnOptions: nil, charset: nil)
        }
    }

    // Responses

    mutating func value(depth: Int) -> IMAPExtensionValue {
        switch int(0...(depth > 0 ? 4 : 3)) {
        case 0: return .nilValue
        case 1: return .number(Int64(int(0...1_000_000)))
        case 2: return .atom(pick(["a", "\\Seen", "1:5,7", "X-Y", "$Junk", "M6d99ac3275bb4e", "*"]))
        case 3: return .string(text())
        default: return .list(many(0...3) { $0.value(depth: depth - 1) })
        }
    }

    mutating func code() -> IMAPResponseCode {
        switch int(0...14) {
        case 0...3: return pick(Array(IMAPResponseCode.simple.values))
        case 4: return .badCharset(many(0...2) { g in g.pick(["UTF-8", "US-ASCII", g.atom()]) })
        case 5: return .capability(many(0...4) { g in g.pick(["IMAP4rev1", "AUTH=PLAIN", "LITERAL+", g.upperAtom()]) })
        case 6: return .permanentFlags(many(0...4) { g in g.pick(["\\*", g.flag()]) })
        case 7: return pick([.uidNext(number32()), .uidValidity(number32()), .unseen(number32())])
        case 8: return .appendUID(uidValidity: number32(), uids: sequenceSet())
        case 9: return .copyUID(uidValidity: number32(), source: sequenceSet(), destination: sequenceSet())
        case 10: return .highestModSeq(number64())
        case 11: return .modified(sequenceSet())
        default: return .other("X-" + upperAtom(), maybe { g in "a" + g.lineText() })
        }
    }

    mutating func status(_ kinds: [IMAPStatusResponse.Kind]) -> IMAPStatusResponse {
        IMAPStatusResponse(pick(kinds), code: maybe { $0.code() }, lineText())
    }

    mutating func nbytes() -> [UInt8]? { maybe { g in g.bool() ? Array(g.text().utf8) : g.bytes() } }

    mutating func envelope() -> IMAPEnvelope {
        func addresses(_ g: inout Generator) -> [IMAPAddress] {
            g.many(0...2) { g in IMAPAddress(name: g.nbytes(), adl: g.nbytes(), mailbox: g.nbytes(), host: g.nbytes()) }
        }
        return IMAPEnvelope(date: nbytes(), subject: nbytes(), from: addresses(&self), sender: addresses(&self),
                            replyTo: addresses(&self), to: addresses(&self), cc: addresses(&self), bcc: addresses(&self),
                            inReplyTo: nbytes(), messageID: nbytes())
    }

    mutating func body(depth: Int) -> IMAPBodyStructure {
        if depth > 0, int(0...2) == 0 {
            return .multipart(IMAPMultipartBody(parts: many(1...3) { $0.body(depth: depth - 1) }, subtype: pick(["MIXED", "alternative", text()]),
                                                extensions: many(0...4) { $0.value(depth: 2) }))
        }
        let params = many(0...2) { g in IMAPBodyParameter(g.pick(["CHARSET", "NAME", g.text()]), g.text()) }
        var part = IMAPBodyPart(type: pick(["IMAGE", "APPLICATION", "audio", "X-" + atom()]), subtype: pick(["GIF", "octet-stream", text()]),
                                parameters: params, contentID: maybe { $0.text() }, contentDescription: maybe { $0.text() },
                                encoding: pick(["7BIT", "BASE64", "quoted-printable", ""]), size: number64(),
                                extensions: many(0...5) { $0.value(depth: 2) })
        switch int(0...2) {
        case 0: break
        case 1: part.type = pick(["TEXT", "text"]); part.kind = .text(lines: number64())
        default:
            if depth > 0 {
                part.type = "MESSAGE"
                part.subtype = pick(["RFC822", "global"])
                part.kind = .message(envelope: envelope(), body: body(depth: depth - 1), lines: number64())
            }
        }
        return .single(part)
    }

    mutating func attribute() -> IMAPMessageAttribute {
        switch int(0...15) {
        case 0: return .flags(many(0...4) { g in g.pick(["\\Recent", g.flag()]) })
        case 1: return .uid(number32())
        case 2: return .internalDate(IMAPDate.formatDateTime(Int64(int(0...2_000_000_000)), zoneMinutes: pick([0, -420, 60])))
        case 3: return .rfc822Size(number64())
        case 4: return .envelope(envelope())
        case 5: return .body(body(depth: 2))
        case 6: return .bodyStructure(body(depth: 3))
        case 7, 8: return .bodySection(section(), origin: maybe { $0.number64() }, data: nbytes())
        case 9: return .binary(bool() ? [] : many(1...3) { $0.int(1...9) }, origin: maybe { $0.number64() }, data: nbytes())
        case 10: return .binarySize(bool() ? [] : many(1...3) { $0.int(1...9) }, number64())
        case 11: return .modseq(number64())
        case 12: return pick([.rfc822(nbytes()), .rfc822Header(nbytes()), .rfc822Text(nbytes())])
        default: return .other("X-GM-" + upperAtom(), value(depth: 2))
        }
    }

    mutating func thread(depth: Int) -> IMAPThreadList {
        let members = many(0...3) { $0.number32() }
        var branches: [IMAPThreadList] = []
        if depth > 0, members.isEmpty || bool() { branches = many(2...3) { $0.thread(depth: depth - 1) } }
        return members.isEmpty && branches.isEmpty ? IMAPThreadList([number32()]) : IMAPThreadList(members, branches: branches)
    }

    mutating func delimiter() -> Character? { pick([nil, "/", ".", "\\", "\"", "é"]) }

    mutating func namespaces() -> [IMAPNamespace] {
        many(0...2) { g in
            IMAPNamespace(g.text(), g.delimiter(), extensions: g.many(0...1) { g in
                IMAPNamespace.Extension(g.pick(["X-PARAM", g.text()]), g.many(1...2) { $0.text() })
            })
        }
    }

    mutating func untagged() -> IMAPUntaggedResponse {
        switch int(0...21) {
        case 0, 1: return .status(status(IMAPStatusResponse.Kind.allCases))
        case 2: return .capability(many(0...5) { g in g.pick(["IMAP4rev2", "AUTH=PLAIN", "LITERAL+", g.upperAtom()]) })
        case 3: return .enabled(many(0...3) { $0.upperAtom() })
        case 4: return .flags(many(0...5) { $0.flag() })
        case 5, 6:
            let l = IMAPListResponse(attributes: many(0...3) { g in g.pick(["\\Noselect", "\\HasChildren", "\\Sent", g.flag()]) },
                                     delimiter: delimiter(), mailbox: mailbox(),
                                     extended: many(0...2) { g in
                                         g.pick([.childInfo(["SUBSCRIBED"]), .oldName(g.mailbox()), IMAPListExtendedItem(g.text(), g.value(depth: 2))])
                                     })
            return bool() ? .list(l) : .lsub(l)
        case 7: return .mailboxStatus(mailbox(), many(0...4) { g in IMAPStatusAttribute(g.pick(["MESSAGES", "UIDNEXT", g.upperAtom()]), g.number64()) })
        case 8: return pick([.exists(UInt32(int(0...100))), .recent(UInt32(int(0...100))), .expunge(number32())])
        case 9...12: return .fetch(number32(), many(0...4) { $0.attribute() })
        case 13: return .search(many(0...6) { $0.number32() }, modseq: maybe { $0.number64() })
        case 14: return .sort(many(0...6) { $0.number32() }, modseq: maybe { $0.number64() })
        case 15:
            return .esearch(IMAPESearchResponse(tag: maybe { $0.text() }, uid: bool(), items: many(0...4) { g in
                switch g.int(0...5) {
                case 0: return .min(g.number32())
                case 1: return .max(g.number32())
                case 2: return .count(g.number64())
                case 3: return .modseq(g.number64())
                case 4: return .all(g.sequenceSet())
                default: return .other("X-" + g.upperAtom(), g.value(depth: 2))
                }
            }))
        case 16: return .thread(many(0...4) { $0.thread(depth: 3) })
        case 17: return .id(maybe { g in g.many(0...3) { IMAPIDParameter($0.text(), $0.maybe { $0.text() }) } })
        case 18: return .namespace(personal: namespaces(), otherUsers: namespaces(), shared: namespaces())
        case 19: return .quota(root: text(), many(0...2) { g in IMAPQuotaResource(g.pick(["STORAGE", "MESSAGE"]), usage: g.number64(), limit: g.number64()) })
        case 20: return .quotaRoot(mailbox: mailbox(), roots: many(0...3) { $0.text() })
        default: return bool() ? .vanished(earlier: bool(), sequenceSet()) : .unknown(Array(("XPIG-LATIN " + atom()).utf8))
        }
    }

    mutating func response() -> IMAPResponse {
        switch int(0...9) {
        case 0: return .continuation(code: maybe { $0.code() }, text: lineText())
        case 1, 2: return .tagged(atom(), status([.ok, .no, .bad]))
        default: return .untagged(untagged())
        }
    }
}
