import IMAP
import Testing

@Suite struct IMAPWriterTests {
    func written(_ f: (inout IMAPWriter) -> Void) -> String {
        var w = IMAPWriter()
        f(&w)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    @Test func stringForms() {
        #expect(written { $0.string("plain") } == "\"plain\"")
        #expect(written { $0.string("say \"hi\" \\o/") } == "\"say \\\"hi\\\" \\\\o/\"")
        #expect(written { $0.string("two\r\nlines") } == "{10}\r\ntwo\r\nlines")
        #expect(written { $0.string("héllo") } == "{6}\r\nhéllo")
        #expect(written { $0.nstring(nil) } == "NIL")
        #expect(written { $0.astring("INBOX") } == "INBOX")
        #expect(written { $0.astring("My Folder") } == "\"My Folder\"")
        #expect(written { $0.astring("NIL") } == "\"NIL\"")
        #expect(written { $0.literal([1, 0, 2], binary: true) } == "~{3}\r\n\u{1}\u{0}\u{2}")
    }

    @Test func statusResponses() {
        #expect(written { $0.status(tag: "A142", "OK", code: "READ-WRITE", "SELECT completed") } == "A142 OK [READ-WRITE] SELECT completed\r\n")
        #expect(written { $0.status(tag: nil, "OK", code: "UIDVALIDITY 3857529045", "UIDs valid") } == "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n")
        #expect(written { $0.continuation() } == "+ Ready\r\n")
    }

    /// RFC 3501 §5.1.3's example, and round trips.
    @Test func modifiedUTF7() {
        #expect(ModifiedUTF7.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-")
        #expect(ModifiedUTF7.decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語")
        for name in ["INBOX", "A&B", "Entwürfe", "Gesendete Objekte", "😀 fun", "&"] {
            #expect(ModifiedUTF7.decode(ModifiedUTF7.encode(name)) == name)
        }
        #expect(ModifiedUTF7.encode("A&B") == "A&-B")
        #expect(ModifiedUTF7.decode("&AGE-") == nil) // "a" must not be encoded
        #expect(ModifiedUTF7.decode("&Jjo!") == nil)
        #expect(ModifiedUTF7.decode("&U,BTF") == nil)
    }
}
