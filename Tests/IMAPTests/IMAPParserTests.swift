import IMAP
import Testing

/// Command examples from RFC 9051 §6 (and RFC 5258, RFC 2971, RFC 7162).
@Suite struct IMAPParserTests {
    func parse(_ text: String) -> Result<(tag: String, command: IMAPCommand), IMAPParser.Failure> {
        var a = IMAPCommandAssembler()
        let events = a.feed(Array((text + "\r\n").utf8))
        guard case .command(let pieces)? = events.last else { return .failure(.init(tag: nil, text: "no command")) }
        return IMAPParser.parse(pieces)
    }

    func command(_ text: String) -> IMAPCommand? { try? parse(text).get().command }

    @Test func simpleCommands() {
        #expect(command("a001 LOGIN SMITH SESAME") == .login(user: "SMITH", password: "SESAME"))
        #expect(command("a001 login \"smith\" \"se\\\"same\"") == .login(user: "smith", password: "se\"same"))
        #expect(command("A142 SELECT INBOX") == .select("INBOX", condstore: false))
        #expect(command("A142 select inbox") == .select("INBOX", condstore: false))
        #expect(command("A932 EXAMINE blurdybloop") == .examine("blurdybloop", condstore: false))
        #expect(command("a SELECT INBOX (CONDSTORE)") == .select("INBOX", condstore: true))
        #expect(command("A003 CREATE owatagusiam/") == .create("owatagusiam/"))
        #expect(command("A683 RENAME blurdybloop sarasoop") == .rename(from: "blurdybloop", to: "sarasoop"))
        #expect(command("A042 STATUS blurdybloop (UIDNEXT MESSAGES)") == .status("blurdybloop", ["UIDNEXT", "MESSAGES"]))
        #expect(command("a ENABLE CONDSTORE UTF8=ACCEPT") == .enable(["CONDSTORE", "UTF8=ACCEPT"]))
        #expect(command("a023 ID (\"name\" \"sodr\" \"version\" \"19.34\")") == .id(["name": "sodr", "version": "19.34"]))
        #expect(command("a ID NIL") == .id(nil))
        #expect(command("A341 CLOSE") == .close)
        #expect(command("a IDLE") == .idle)
        #expect(command("a AUTHENTICATE PLAIN AGFsaWNlAHB3") == .authenticate(mechanism: "PLAIN", initialResponse: "AGFsaWNlAHB3"))
    }

    @Test func list() {
        #expect(command("A682 LIST \"\" *") == .list(reference: "", patterns: ["*"], selection: [], returnOptions: []))
        #expect(command("A02 LIST (SUBSCRIBED) \"\" \"*\" RETURN (CHILDREN)")
                == .list(reference: "", patterns: ["*"], selection: ["SUBSCRIBED"], returnOptions: [.children]))
        #expect(command("A03 LIST \"\" (\"INBOX\" \"Drafts\") RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))")
                == .list(reference: "", patterns: ["INBOX", "Drafts"], selection: [], returnOptions: [.specialUse, .status(["MESSAGES", "UNSEEN"])]))
        #expect(command("A202 LIST ~/Mail/ %") == .list(reference: "~/Mail/", patterns: ["%"], selection: [], returnOptions: []))
    }

    @Test func fetch() {
        #expect(command("a002 fetch 12 full") == .fetch(IMAPSequenceSet(ranges: [(.number(12), .number(12))]),
                                                        [.flags, .internalDate, .rfc822Size, .envelope, .body], uid: false, changedSince: nil))
        let f = command("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])")
        #expect(f == .fetch(IMAPSequenceSet(ranges: [(.number(2), .number(4))]),
                            [.flags, .bodySection(IMAPSection(text: .headerFields(["DATE", "FROM"])), partial: nil, peek: false)],
                            uid: false, changedSince: nil))
        #expect(command("A999 UID FETCH 4827313:* FLAGS") == .fetch(IMAPSequenceSet(ranges: [(.number(4827313), .star)]), [.flags], uid: true, changedSince: nil))
        #expect(command("a FETCH 1 (BODY.PEEK[1.2.MIME] BINARY.PEEK[1]<0.100> BINARY.SIZE[2] BODY[]<10.5>)") == .fetch(
            IMAPSequenceSet(ranges: [(.number(1), .number(1))]),
            [.bodySection(IMAPSection(part: [1, 2], text: .mime), partial: nil, peek: true),
             .binary([1], partial: 0...99, peek: true), .binarySize([2]),
             .bodySection(IMAPSection(), partial: 10...14, peek: false)], uid: false, changedSince: nil))
        #expect(command("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)")
                == .fetch(IMAPSequenceSet(ranges: [(.number(1), .star)]), [.flags], uid: true, changedSince: 12345))
        #expect(command("a FETCH 1,3:5,7 RFC822.SIZE") == .fetch(IMAPSequenceSet(ranges: [(.number(1), .number(1)), (.number(3), .number(5)), (.number(7), .number(7))]), [.rfc822Size], uid: false, changedSince: nil))
    }

    @Test func storeCopyMove() {
        #expect(command("A003 STORE 2:4 +FLAGS (\\Deleted)") == .store(IMAPSequenceSet(ranges: [(.number(2), .number(4))]), .add, silent: false, flags: ["\\Deleted"], uid: false, unchangedSince: nil))
        #expect(command("a UID STORE 5 -FLAGS.SILENT \\Seen $Label1") == .store(IMAPSequenceSet(ranges: [(.number(5), .number(5))]), .remove, silent: true, flags: ["\\Seen", "$Label1"], uid: true, unchangedSince: nil))
        #expect(command("d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)") == .store(
            IMAPSequenceSet(ranges: [(.number(7), .number(7)), (.number(5), .number(5)), (.number(9), .number(9))]), .add, silent: true, flags: ["\\Deleted"], uid: false, unchangedSince: 320162338))
        #expect(command("A003 COPY 2:4 MEETING") == .copy(IMAPSequenceSet(ranges: [(.number(2), .number(4))]), "MEETING", uid: false))
        #expect(command("a UID MOVE 42:69 foo") == .move(IMAPSequenceSet(ranges: [(.number(42), .number(69))]), "foo", uid: true))
        #expect(command("a UID EXPUNGE 3000:3002") == .uidExpunge(IMAPSequenceSet(ranges: [(.number(3000), .number(3002))])))
    }

    @Test func search() {
        #expect(command("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"") ==
            .search(.and([.flag("\\Flagged", set: true), .since("1-Feb-1994"), .not(.header("From", "Smith"))]), uid: false, returnOptions: ["MIN", "COUNT"], charset: nil))
        #expect(command("A283 SEARCH TEXT \"string not in mailbox\"") == .search(.text("string not in mailbox"), uid: false, returnOptions: nil, charset: nil))
        #expect(command("A284 SEARCH CHARSET UTF-8 TEXT {12+}\r\nXXXXXXXXXXXX") == .search(.text("XXXXXXXXXXXX"), uid: false, returnOptions: nil, charset: "UTF-8"))
        #expect(command("a UID SEARCH OR (UNSEEN LARGER 100) HEADER X-Spam yes 1:5")
                == .search(.and([.or(.and([.flag("\\Seen", set: false), .larger(100)]), .header("X-Spam", "yes")), .sequence(IMAPSequenceSet(ranges: [(.number(1), .number(5))]))]), uid: true, returnOptions: nil, charset: nil))
        let deep = "a SEARCH " + String(repeating: "NOT ", count: 100) + "ALL"
        #expect(command(deep) == nil)
    }

    @Test(arguments: ["", "a", "a NOOP extra", "* NOOP", "a FROB", "a LOGIN smith", "a FETCH 0 FLAGS", "a FETCH 1 (FLAGS",
                      "a STORE 1 FLAGZ (\\Seen)", "a SELECT \"unterminated", "a FETCH 1 BODY.PEEK", "a SEARCH FROB",
                      "a APPEND INBOX \"x\"", "a FETCH 1:2:3 FLAGS", "a LIST \"\" \"*\" RETURN (BOGUS)"])
    func malformed(_ text: String) {
        #expect(command(text) == nil)
    }

    @Test func badReplyKeepsTheTag() {
        guard case .failure(let f) = parse("x17 FETCH 1 (BOGUS)") else { Issue.record("parsed"); return }
        #expect(f.tag == "x17")
    }
}

/// Literal framing (RFC 9051 §4.3, §7.5; RFC 7888 LITERAL+/LITERAL-).
@Suite struct IMAPAssemblerTests {
    let append = Array("A003 APPEND saved-messages (\\Seen) {23}\r\n".utf8)
    let message = Array("Subject: hi\r\n\r\nhello\r\n\r\n".utf8).prefix(23)

    @Test func synchronizingLiteralAsksToContinue() throws {
        var a = IMAPCommandAssembler()
        #expect(a.feed(append) == [.continuationNeeded])
        #expect(a.inLiteral)
        let events = a.feed(Array(message) + [13, 10])
        guard case .command(let pieces)? = events.first else { Issue.record("\(events)"); return }
        let parsed = try IMAPParser.parse(pieces).get()
        #expect(parsed.command == .append(mailbox: "saved-messages", flags: ["\\Seen"], date: nil, message: Array(message)))
    }

    @Test func nonSynchronizingLiteralAndDripFeed() throws {
        let text = Array("a1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n".utf8)
        var a = IMAPCommandAssembler()
        var events: [IMAPCommandAssembler.Event] = []
        for b in text { events += a.feed([b]) }
        #expect(events.count == 1)
        guard case .command(let pieces) = events[0] else { return }
        #expect(try IMAPParser.parse(pieces).get().command == .login(user: "alice", password: "secret"))
    }

    @Test func literalLimits() {
        var a = IMAPCommandAssembler()
        a.maxLiteralLength = 10
        // A synchronizing literal over the limit is refused before the client sends it.
        #expect(a.feed(Array("t1 APPEND INBOX {11}\r\n".utf8)) == [.tooLong(tag: "t1", text: "Literal too large")])
        #expect(a.feed(Array("t2 NOOP\r\n".utf8)) == [.command([.text(Array("t2 NOOP".utf8))])])
        // A non-synchronizing one is skipped, with the rest of its command.
        #expect(a.feed(Array("t3 APPEND INBOX {11+}\r\n0123456789A\r\nt4 NOOP\r\n".utf8))
                == [.tooLong(tag: "t3", text: "Literal too large"), .command([.text(Array("t4 NOOP".utf8))])])
        var b = IMAPCommandAssembler()
        b.maxLineLength = 20
        #expect(b.feed(Array("t5 NOOP xxxxxxxxxxxxxxxxxxxxxxxxxx\r\nt6 NOOP\r\n".utf8)) == [.tooLong(tag: "t5", text: "Command line too long"), .command([.text(Array("t6 NOOP".utf8))])])
    }
}
