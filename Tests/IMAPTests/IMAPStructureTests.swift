@testable import IMAP
import MIME
import Testing

/// ENVELOPE and BODYSTRUCTURE as written (RFC 9051 §7.5.2).
@Suite struct IMAPStructureTests {
    /// The text with each LF made CR LF.
    static func message(_ s: String) -> [UInt8] {
        s.utf8.flatMap { $0 == 0x0A ? [0x0D, 0x0A] : [$0] }
    }

    static func written(_ body: (inout IMAPWriter) -> Void) -> String {
        var w = IMAPWriter()
        body(&w)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    @Test func onlyGroupMarkersHaveNilHost() {
        let header = RFC5322Header.parse(Self.message("""
            From: MAILER DAEMON <>
            To: <Undisclosed Recipients>, g: x;
            Cc: a@b, localrecipient


            """))
        let daemon = #"(("MAILER DAEMON" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#
        let expected = "(NIL NIL \(daemon) \(daemon) \(daemon) "
            + #"((NIL NIL "Undisclosed" "SYNTAX_ERROR")(NIL NIL "g" NIL)(NIL NIL "x" "MISSING_DOMAIN")(NIL NIL NIL NIL)) "#
            + #"((NIL NIL "a" "b")(NIL NIL "localrecipient" "MISSING_DOMAIN")) NIL NIL NIL)"#
        #expect(Self.written { IMAPStructure.envelope(Envelope(header: header), into: &$0) } == expected)
    }

    @Test func parametersJoinedAndCharsetDefaulted() {
        let root = MIMEMessage.parse(Self.message("""
            Content-Type: text/plain; title*0*=us-ascii'en'a%20; title*1="b"
            Content-Disposition: attachment; filename*0="x"; filename*1=".txt"

            body

            """))
        let expected = #"("text" "plain" ("title*" "us-ascii'en'a%20b" "charset" "us-ascii") NIL NIL "7BIT" 6 1 "#
            + #"NIL ("attachment" ("filename" "x.txt")) NIL NIL)"#
        #expect(Self.written { IMAPStructure.body(root, extended: true, into: &$0) } == expected)
    }
}
