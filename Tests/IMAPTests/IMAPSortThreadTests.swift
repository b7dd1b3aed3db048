@testable import IMAP
import MIME
import Testing

/// RFC 5256 SORT and THREAD, RFC 5957 DISPLAYFROM / DISPLAYTO.
@Suite struct IMAPSortThreadTests {
    /// A message from header lines; `minute` sets a Date field that many
    /// minutes after 2005-01-03 00:00 UTC (nil: no Date field).
    static func message(_ id: UInt32, minute: Int64? = nil, arrival: Int64 = 0, size: Int64 = 0,
                        _ lines: [String]) -> IMAPSortInput {
        var all = lines
        if let minute { all.append("Date: " + RFC5322Date.format(base + minute * 60, offsetMinutes: 60)) }
        let text = all.joined(separator: "\r\n") + "\r\n\r\nbody\r\n"
        return IMAPSortInput(id: id, arrival: arrival, size: size, headerBytes: Array(text.utf8))
    }

    static let base: Int64 = 1_104_710_400   // 2005-01-03 00:00:00 UTC

    // MARK: Base subject (§2.1)

    static let subjects: [(String, String, Bool)] = [
        ("foo bar", "foo bar", false),
        ("Re: foo", "foo", true),
        ("RE: re: Re:foo", "foo", true),
        ("Fwd: foo", "foo", true),
        ("FW: foo", "foo", true),
        ("fw:foo", "foo", true),
        ("Re[2]: foo", "foo", true),
        ("Re [PATCH]: foo", "foo", true),
        ("Re :  foo", "foo", true),
        ("[PATCH] foo", "foo", false),
        ("[PATCH v2] Re: foo", "foo", true),
        ("[list] [PATCH 1/3] foo", "foo", false),
        ("[a][b]foo", "foo", false),
        ("[PATCH]", "[PATCH]", false),
        ("[list] [PATCH]", "[PATCH]", false),
        ("foo (fwd)", "foo", true),
        ("foo (FWD)(fwd)  ", "foo", true),
        ("[fwd: foo]", "foo", true),
        ("[Fwd: Re: foo]", "foo", true),
        ("Re: [fwd: [PATCH] foo] (fwd)", "foo", true),
        ("Fwd: [Fwd: [fwd: foo] (fwd)]", "foo", true),
        ("[fwd: a] b", "b", false),          // a blob, not a wrapper: only the whole is unwrapped
        ("  foo \t  bar  ", "foo bar", false),
        ("foo\r\n bar", "foo bar", false),
        ("Re:", "", true),
        ("", "", false),
        ("Ref: foo", "Ref: foo", false),
        ("Reply: foo", "Reply: foo", false),
        ("Re foo", "Re foo", false),
        ("Fwd foo (fwd) bar", "Fwd foo (fwd) bar", false),
        ("=?UTF-8?Q?Re=3A_caf=C3=A9?=", "café", true),
        ("=?iso-8859-1?q?[liste]_R=E9sum=E9?=", "Résumé", false),
        ("Re: =?UTF-8?B?5pel5pys6Kqe?= (fwd)", "日本語", true),
    ]

    @Test(arguments: subjects)
    func baseSubject(_ raw: String, _ expected: String, _ replyOrForward: Bool) {
        let base = IMAPSortThread.baseSubject(Array(raw.utf8))
        #expect(base.text == expected)
        #expect(base.isReplyOrForward == replyOrForward)
        #expect(base.key == Array(expected.utf8).map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 })
    }

    // MARK: SORT (§3, RFC 5957)

    static let sortSet: [IMAPSortInput] = [
        message(1, minute: 600, arrival: 1_000, size: 300, [
            "From: Zed <zed@example.org>", "To: bob@example.org", "Cc: carol@example.org",
            "Subject: Re: apple"]),
        message(2, arrival: 1_104_746_000, size: 100, [      // no Date: INTERNALDATE is the sent date
            "From: alice@example.org", "To: \"Carol\" <carol@example.org>", "Subject: banana"]),
        message(3, arrival: 1_104_800_000, size: 300, [
            "From: =?UTF-8?Q?=C3=89mile?= <bob@example.org>", "To: Alice <ALICE@example.org>",
            "Cc: dave@example.org", "Subject: [fruit] Apple", "Date: not a date"]),
        message(4, arrival: 500, size: 200, [
            "From: \"bob\" <BOB@example.org>", "Subject: cherry", "Date: Mon, 3 Jan 2005 12:00:00 +0200"]),
        message(5, arrival: 2_000, size: 100, [
            "To: undisclosed-recipients:;", "Subject: Fwd: Banana (fwd)", "Date: Sun, 2 Jan 2005 10:00:00 -0500"]),
    ]

    static func sorted(_ criteria: [IMAPSortCriterion], _ inputs: [IMAPSortInput] = sortSet) -> [UInt32] {
        IMAPSortThread.sort(inputs, by: criteria)
    }

    @Test func sortInputFromHeader() {
        let m = Self.sortSet
        #expect(m[0].date == 1_104_746_400 && m[0].sentDate == 1_104_746_400)
        #expect(m[1].date == nil && m[1].sentDate == 1_104_746_000)
        #expect(m[2].date == nil && m[2].sentDate == 1_104_800_000)
        #expect(m[3].sentDate == 1_104_746_400)
        #expect(m[4].sentDate == 1_104_678_000)
        #expect(IMAPSortThread.firstMailbox(m[4].to) == Array("undisclosed-recipients".utf8))
        #expect(IMAPSortThread.displayValue(m[2].from) == "Émile")
        #expect(IMAPSortThread.displayValue(m[1].from) == "alice@example.org")
        #expect(IMAPSortThread.displayValue(m[4].from) == "")
    }

    @Test func sortKeys() {
        #expect(Self.sorted([.init(.arrival)]) == [4, 1, 5, 2, 3])
        #expect(Self.sorted([.init(.size)]) == [2, 5, 4, 1, 3])
        #expect(Self.sorted([.init(.date)]) == [5, 2, 1, 4, 3])          // 1 and 4: same instant
        #expect(Self.sorted([.init(.from)]) == [5, 2, 3, 4, 1])          // "", ALICE, BOB, BOB, ZED
        #expect(Self.sorted([.init(.to)]) == [4, 3, 1, 2, 5])
        #expect(Self.sorted([.init(.cc)]) == [2, 4, 5, 1, 3])
        #expect(Self.sorted([.init(.subject)]) == [1, 3, 2, 5, 4])      // apple, banana, cherry
        #expect(Self.sorted([.init(.displayFrom)]) == [5, 2, 4, 1, 3])  // "", alice@…, bob, Zed, Émile
        #expect(Self.sorted([.init(.displayTo)]) == [4, 3, 1, 2, 5])
    }

    @Test func reverseAndTies() {
        // Ties stay in mailbox order under REVERSE (1 before 4, 3 before 4).
        #expect(Self.sorted([.init(.date, reverse: true)]) == [3, 1, 4, 2, 5])
        #expect(Self.sorted([.init(.from, reverse: true)]) == [1, 3, 4, 2, 5])
        #expect(Self.sorted([.init(.size, reverse: true)]) == [1, 3, 4, 2, 5])
        #expect(Self.sorted([.init(.size), .init(.date, reverse: true)]) == [2, 5, 4, 3, 1])
        #expect(Self.sorted([.init(.subject), .init(.arrival, reverse: true)]) == [3, 1, 2, 5, 4])
        #expect(Self.sorted([]) == [1, 2, 3, 4, 5])
        let same = [3, 1, 2].map { Self.message($0, size: 7, ["Subject: x"]) }
        #expect(Self.sorted([.init(.size, reverse: true), .init(.subject)], same) == [1, 2, 3])
    }

    /// i;ascii-casemap folds to upper case, so "_" (0x5F) sorts after letters.
    @Test func asciiCasemapOrder() {
        let inputs = [Self.message(1, ["Subject: _under"]), Self.message(2, ["Subject: apple"]),
                      Self.message(3, ["Subject: Zebra"]), Self.message(4, ["Subject: éclair"])]
        #expect(Self.sorted([.init(.subject)], inputs) == [2, 3, 1, 4])
    }

    // MARK: Message IDs

    @Test func messageIDs() {
        let value = "<a@b> (comment <x@y>) \"<q@r>\" <\"quoted\"@host> junk <bad> <@nolocal> < spaced @ x > <<c@d>"
        #expect(IMAPSortThread.messageIDs(Array(value.utf8)) == ["a@b", "quoted@host", "spaced@x", "c@d"].map { Array($0.utf8) })
        #expect(IMAPSortThread.firstMessageID(Array("Your message of Monday <m@h>".utf8)) == Array("m@h".utf8))
        #expect(IMAPSortThread.firstMessageID(Array("<unclosed@x".utf8)) == nil)
        #expect(IMAPSortThread.firstMessageID(nil) == nil)
    }

    // MARK: THREAD (§3) and its response (§4)

    @Test func algorithmNames() {
        #expect(IMAPThreadAlgorithm(name: "references") == .references)
        #expect(IMAPThreadAlgorithm(name: "OrderedSubject") == .orderedSubject)
        #expect(IMAPThreadAlgorithm(name: "REFS") == nil)
    }

    /// §4's example, and the dummy forms.
    @Test func rendering() {
        func m(_ id: UInt32, _ children: [IMAPThreadNode] = []) -> IMAPThreadNode { .message(id, children: children) }
        let example = [m(2), m(3, [m(6, [m(4, [m(23)]), m(44, [m(7, [m(96)])])])])]
        #expect(IMAPSortThread.render(example) == "(2)(3 6 (4 23)(44 7 96))")
        #expect(IMAPSortThread.render([.dummy(children: [m(3), m(5)])]) == "((3)(5))")
        #expect(IMAPSortThread.render([.dummy(children: [m(3, [m(4)])]), .dummy(children: [])]) == "(3 4)")
        #expect(IMAPSortThread.render([m(1, [.dummy(children: [m(2), m(3)])])]) == "(1 (2)(3))")
        #expect(IMAPSortThread.render([m(1, [.dummy(children: [m(2), m(3)]), m(4)])]) == "(1 ((2)(3))(4))")
        #expect(IMAPSortThread.render([]) == "")
    }

    /// Seventeen messages: replies by References and by In-Reply-To, a
    /// missing parent shared by two, a References loop between two messages,
    /// a duplicate Message-ID, messages without Message-ID or subject, a
    /// self-reference, a loop inside one References field, and threads
    /// gathered by subject (reply under original, original and duplicate
    /// under a new dummy, a "[fwd: …]" under that dummy).
    static let threadSet: [IMAPSortInput] = [
        message(1, minute: 1, ["Message-ID: <a@x>", "Subject: Meeting"]),
        message(2, minute: 2, ["Message-ID: <b@x>", "References: <a@x>", "Subject: Re: Meeting"]),
        message(3, minute: 4, ["Message-ID: <c@x>", "References: <a@x>\r\n <b@x>", "In-Reply-To: <ignored@x>",
                               "Subject: Re: Meeting"]),
        message(4, minute: 3, ["Message-ID: <d@x>", "In-Reply-To: <b@x> (Bob's message)", "Subject: RE: Meeting"]),
        message(5, minute: 5, ["Message-ID: <e@x>", "References: <missing@x>", "Subject: Lunch"]),
        message(6, minute: 6, ["Message-ID: <f@x>", "References: <missing@x>", "Subject: Re: Lunch"]),
        message(7, minute: 7, ["Message-ID: <g@x>", "References: <h@x>", "Subject: Loop"]),
        message(8, minute: 8, ["Message-ID: <h@x>", "References: <g@x>", "Subject: Re: Loop"]),
        message(9, minute: 9, ["Message-ID: <a@x>", "Subject: Meeting"]),
        message(10, minute: 10, ["References: <c@x>", "Subject: Re: Meeting"]),
        message(11, minute: 11, ["Message-ID: <k@x>", "Subject: Re: lunch"]),
        message(12, minute: 12, ["Message-ID: <l@x>", "References: <l@x>", "Subject: Self"]),
        message(13, minute: 13, ["Message-ID: <m@x>", "References: <p@x> <q@x> <p@x>", "Subject: Chain"]),
        message(14, minute: 14, ["Message-ID: <r@x>", "Subject: Re: Other"]),
        message(15, minute: 15, ["Message-ID: <s@x>", "Subject: Other"]),
        message(16, arrival: base + 16 * 60, ["Message-ID: <u@x>"]),
        message(17, minute: 17, ["Message-ID: <t@x>", "Subject: [fwd: Meeting]"]),
    ]

    @Test func references() {
        let threads = IMAPSortThread.thread(Self.threadSet, algorithm: .references)
        #expect(IMAPSortThread.render(threads)
                == "((1 2 (4)(3 10))(9)(17))((5)(6)(11))(8 7)(12)(13)(15 14)(16)")
        // The input order does not matter.
        let shuffled = Self.threadSet.enumerated().sorted { ($0.offset * 7) % 17 < ($1.offset * 7) % 17 }.map(\.element)
        #expect(IMAPSortThread.thread(shuffled, algorithm: .references) == threads)
        guard case .dummy(let meeting)? = threads.first else { Issue.record("expected a dummy first"); return }
        #expect(meeting.count == 3)
    }

    @Test func orderedSubject() {
        let threads = IMAPSortThread.thread(Self.threadSet, algorithm: .orderedSubject)
        #expect(IMAPSortThread.render(threads) == "(1 (2)(4)(3)(9)(10)(17))(5 (6)(11))(7 8)(12)(13)(14 15)(16)")
    }

    /// Step (1B): a message's own References replace a parent guessed from
    /// another message's References, and no references means no parent.
    @Test func referencesReparenting() {
        let guessedThenFixed = [
            Self.message(1, minute: 1, ["Message-ID: <a@x>", "Subject: A"]),
            Self.message(2, minute: 2, ["Message-ID: <c@x>", "References: <z@x> <b@x>", "Subject: C"]),
            Self.message(3, minute: 3, ["Message-ID: <b@x>", "References: <a@x>", "Subject: B"]),
        ]
        #expect(IMAPSortThread.threads(guessedThenFixed, algorithm: .references).render() == "(1 3 2)")
        let guessedThenDropped = [
            Self.message(1, minute: 1, ["Message-ID: <a@x>", "Subject: A"]),
            Self.message(2, minute: 2, ["Message-ID: <c@x>", "References: <a@x> <b@x>", "Subject: C"]),
            Self.message(3, minute: 3, ["Message-ID: <b@x>", "Subject: B"]),
        ]
        #expect(IMAPSortThread.threads(guessedThenDropped, algorithm: .references).render() == "(1)(3 2)")
        // Quoting in a msg-id does not change it (§3 REFERENCES).
        let quoted = [
            Self.message(1, minute: 1, ["Message-ID: <\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>", "Subject: A"]),
            Self.message(2, minute: 2, ["In-Reply-To: <01KF8JCEOCBS0045PS@xxx.yyy.com>", "Subject: B"]),
        ]
        #expect(IMAPSortThread.threads(quoted, algorithm: .references).render() == "(1 2)")
    }

    /// A long reply chain is written flat, and the flat result has no
    /// depth limit (neither building nor rendering recurses).
    @Test func longChain() {
        let count: UInt32 = 20_000
        let chain = (1...count).map { i in
            IMAPSortInput(id: i, arrival: Int64(i), size: 1, messageID: Array("<\(i)@x>".utf8),
                          references: i > 1 ? Array("<1@x> <\(i - 1)@x>".utf8) : nil)
        }
        let expected = "(" + (1...count).map(String.init).joined(separator: " ") + ")"
        let forest = IMAPSortThread.threads(chain, algorithm: .references)
        #expect(forest.render() == expected)
        #expect(forest.roots.count == 1 && forest.ids.count == Int(count))
    }

    /// The flat and nested forms carry the same threads.
    @Test func flatAndNested() {
        for algorithm in IMAPThreadAlgorithm.allCases {
            let forest = IMAPSortThread.threads(Self.threadSet, algorithm: algorithm)
            #expect(IMAPThreadForest(forest.nodes) == forest)
            #expect(IMAPSortThread.render(forest.nodes) == forest.render())
        }
        let dummies = IMAPThreadForest(ids: [nil, 3, nil, 5, 6, nil], children: [[1, 2], [], [3, 4], [], [], []], roots: [5, 0])
        #expect(dummies.render() == "((3)((5)(6)))")
    }

    /// Random References among more ids than messages: every message comes
    /// out exactly once, whatever links and dummies were made.
    @Test func everyMessageOnce() {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(n))
        }
        let subjects = ["a", "Re: a", "b", "Fwd: b", "", "[x] c"]
        let inputs = (1...300).map { (i: Int) -> IMAPSortInput in
            let refs = (0..<next(4)).map { _ in "<\(next(400))@x>" }.joined(separator: " ")
            var lines = ["Message-ID: <\(next(400))@x>", "Subject: " + subjects[next(subjects.count)]]
            if !refs.isEmpty { lines.append("References: " + refs) }
            return Self.message(UInt32(i), minute: Int64(next(50)), lines)
        }
        for algorithm in IMAPThreadAlgorithm.allCases {
            var ids: [UInt32] = []
            var stack = IMAPSortThread.thread(inputs, algorithm: algorithm)
            while let node = stack.popLast() {
                if case .message(let id, _) = node { ids.append(id) }
                stack.append(contentsOf: node.children)
            }
            #expect(ids.sorted() == Array(1...300), "\(algorithm)")
            let rendered = IMAPSortThread.render(IMAPSortThread.thread(inputs, algorithm: algorithm))
            #expect(rendered.filter { $0 == "(" }.count == rendered.filter { $0 == ")" }.count)
        }
    }

    /// Deterministic fuzzing of the subject and msg-id scanners: no traps,
    /// and a base subject is always a piece of the whitespace-collapsed
    /// subject (extraction only removes from the ends).
    @Test func fuzz() {
        var seed: UInt64 = 0xD1B5_4A32_D192_ED03
        func next(_ n: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(n))
        }
        let pieces = ["re", "RE", "fw", "Fwd", ":", "[", "]", "(fwd)", "(", ")", " ", "\t", "[fwd:", "x", "é",
                      "<", ">", "@", "\"", "\\", "=?utf-8?q?a?="]
        for _ in 0..<20_000 {
            let text = (0..<next(12)).map { _ in pieces[next(pieces.count)] }.joined()
            let raw = Array(text.utf8)
            let base = IMAPSortThread.baseSubject(raw)
            var collapsed: [UInt8] = []
            for b in EncodedWord.decode(raw).utf8 {
                let c: UInt8 = b == 0x09 || b == 0x0A || b == 0x0D ? 0x20 : b
                if c == 0x20, collapsed.last == 0x20 { continue }
                collapsed.append(c)
            }
            let piece = Array(base.text.utf8)
            let found = piece.isEmpty || (0...max(0, collapsed.count - piece.count)).contains { start in
                start + piece.count <= collapsed.count && Array(collapsed[start..<start + piece.count]) == piece
            }
            #expect(found, "\(text)")
            for id in IMAPSortThread.messageIDs(raw) {
                #expect(id.contains(0x40) && !id.contains(0x3E))
            }
        }
    }
}
