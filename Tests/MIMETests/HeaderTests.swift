import Testing
import MIME

/// RFC 5322 §2.2 header parsing and IMAP HEADER.FIELDS filtering.
@Suite struct HeaderTests {
    @Test func foldingAndLookup() {
        let bytes = crlf("Subject: a\n  folded\n\tline\nX-Empty:\nsubject: second\n\nbody")
        let h = RFC5322Header.parse(bytes)
        #expect(h.fields.count == 3)
        #expect(h.hasSeparator)
        #expect(string(h.fields[0].rawValue) == " a\r\n  folded\r\n\tline")
        #expect(string(h["SUBJECT"]) == "a  folded\tline")
        #expect(h.fields(named: "subject").count == 2)
        #expect(string(h["x-empty"]) == "")
        #expect(Array(bytes[h.bodyStart...]) == Array("body".utf8))
    }

    @Test func lfOnlyAndMissingSeparator() {
        let lf = Array("A: 1\nB: 2\n\nbody\n".utf8)
        let h = RFC5322Header.parse(lf)
        #expect(h.fields.count == 2 && h.bodyStart == 11)
        let noSep = Array("A: 1\r\nB: 2".utf8)
        let h2 = RFC5322Header.parse(noSep)
        #expect(h2.fields.count == 2 && !h2.hasSeparator && h2.bodyStart == noSep.count)
        #expect(string(h2["b"]) == "2")
    }

    @Test func garbageAnd8Bit() {
        let bytes = crlf("Subject: ok\nthis line is garbage\nX-Latin: caf\u{E9}\nName : obsolete spacing\n\n")
        let h = RFC5322Header.parse(bytes)
        #expect(h.fields.map(\.nameString) == ["Subject", "X-Latin", "Name"])
        #expect(string(h["x-latin"]) == "café")
        #expect(string(h["name"]) == "obsolete spacing")
        // A first line that is no field: no header at all, everything is body.
        let headless = RFC5322Header.parse(crlf("Just text\nmore\n"))
        #expect(headless.fields.isEmpty && headless.bodyStart == 0)
        // An mbox "From " line is skipped.
        let mbox = RFC5322Header.parse(crlf("From a@b Mon Jan 1 00:00:00 2001\nSubject: s\n\n"))
        #expect(mbox.fields.count == 1)
    }

    @Test func headerFieldsFiltering() {
        let bytes = crlf("From: a@b\nSubject: s\n t\nTo: c@d\n\nbody\n")
        let root = MIMEMessage.parse(bytes)
        let only = root.headerFieldsBytes(bytes, at: [], names: ["subject", "TO"], excluding: false)
        #expect(string(only) == "Subject: s\r\n t\r\nTo: c@d\r\n\r\n")
        let not = root.headerFieldsBytes(bytes, at: [], names: ["subject"], excluding: true)
        #expect(string(not) == "From: a@b\r\nTo: c@d\r\n\r\n")
        let none = root.header.filteredBytes(bytes, names: ["x-none"], excluding: false)
        #expect(string(none) == "\r\n")
    }
}
