import Testing
import MIME

/// RFC 2047 §8 examples, plus the RFC 2231 §5 language form.
@Suite struct EncodedWordTests {
    @Test(arguments: [
        // §8 "encoded form" → "displayed as"
        ("(=?ISO-8859-1?Q?a?=)", "(a)"),
        ("(=?ISO-8859-1?Q?a?= b)", "(a b)"),
        ("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
        ("=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>", "Keith Moore <moore@cs.utk.edu>"),
        ("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>", "Keld Jørn Simonsen <keld@dkuug.dk>"),
        ("=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>", "André Pirard <PIRARD@vm1.ulg.ac.be>"),
        ("=?ISO-8859-1?Q?Olle_J=E4rnefors?= <ojarnef@admin.kth.se>", "Olle Järnefors <ojarnef@admin.kth.se>"),
        ("=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=", "If you can read this yo"),
        // RFC 2231 §5: charset*language
        ("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore"),
        // UTF-8 split across two words is joined before decoding.
        ("=?utf-8?Q?caf=C3?= =?utf-8?Q?=A9?=", "café"),
        ("=?UTF-8?B?w6nDqMOg?=", "éèà"),
        ("=?windows-1252?Q?=93quoted=94?=", "\u{201C}quoted\u{201D}"),
        ("plain text", "plain text"),
    ])
    func decodes(_ input: String, _ expected: String) {
        let unfolded = input.replacingOccurrences(of: "\r\n", with: "")
        #expect(EncodedWord.decode(unfolded) == expected)
    }

    /// §8's ISO-8859-2 / ISO-8859-8 examples: unknown charsets stay raw.
    @Test func unknownCharsetIsLeftRaw() {
        #expect(EncodedWord.decode("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)") == "(a =?ISO-8859-2?Q?_b?=)")
        let nsb = "Nathaniel Borenstein <nsb@thumper.bellcore.com> (=?iso-8859-8?b?7eXs+SDv4SDp7Oj08A==?=)"
        #expect(EncodedWord.decode(nsb) == nsb)
    }

    @Test func malformedWordsStayRaw() {
        #expect(EncodedWord.decode("=?utf-8?X?abc?=") == "=?utf-8?X?abc?=")
        #expect(EncodedWord.decode("=?utf-8?Q?no end") == "=?utf-8?Q?no end")
        #expect(EncodedWord.decode("=??Q?x?=") == "=??Q?x?=")
    }

    @Test func transferDecoders() {
        #expect(TransferDecoding.base64(Array("aGVsbG8g\r\nd29ybGQ=".utf8)) == Array("hello world".utf8))
        #expect(TransferDecoding.quotedPrintable(Array("a=3Db  \r\nsoft=\r\nbreak=ZZ\r\n".utf8))
                == Array("a=b\r\nsoftbreak=ZZ\r\n".utf8))
    }
}
