import Testing
import MIME

/// RFC 5322 §3.4 addresses and the IMAP ENVELOPE (RFC 3501 §7.4.2).
@Suite struct EnvelopeTests {
    @Test func nameAddrAndAddrSpec() {
        let list = AddressParser.parseMailboxes(Array(#""Doe, John" <john@example.com>, jane@example.org (Jane R), =?utf-8?Q?J=C3=B6rg?= <j@x.de>"#.utf8))
        #expect(list.count == 3)
        #expect(string(list[0].name) == "Doe, John")
        #expect(string(list[0].mailbox) == "john" && string(list[0].host) == "example.com")
        #expect(string(list[1].name) == "Jane R")
        #expect(string(list[2].name) == "=?utf-8?Q?J=C3=B6rg?=")  // raw for ENVELOPE
        #expect(list[2].decodedName == "Jörg")
    }

    @Test func groupsAndRoutes() {
        // RFC 5322 §A.1.3
        let entries = AddressParser.parseList(Array("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, Undisclosed recipients:;, <@r1,@r2:x@y.test>".utf8))
        #expect(entries.count == 3)
        guard case .group(let name, let members) = entries[0] else { Issue.record("no group"); return }
        #expect(string(name) == "A Group")
        #expect(members.map(\.addressString) == ["c@a.test", "joe@where.test", "jdoe@one.test"])
        guard case .group(_, let empty) = entries[1] else { Issue.record("no empty group"); return }
        #expect(empty.isEmpty)
        guard case .mailbox(let routed) = entries[2] else { Issue.record("no mailbox"); return }
        #expect(string(routed.route) == "@r1,@r2")
        #expect(routed.addressString == "x@y.test")

        let flat = AddressListEntry.imapAddresses(Array(entries[0...1]))
        #expect(flat.count == 3 + 2 + 2)
        #expect(string(flat[0].mailbox) == "A Group" && flat[0].host == nil)
        #expect(flat[4] == Address())
    }

    @Test func envelopeDefaults() {
        let bytes = crlf("""
            Date: Mon, 1 Jan 2001 00:00:00 +0000
            From: Alice <alice@example.com>
            To: bob@example.com
            Subject: =?utf-8?B?SGk=?=
             there
            Message-ID: <1@example.com>
            In-Reply-To: <0@example.com>

            body
            """)
        let env = MIMEMessage.parse(bytes).envelope
        #expect(string(env?.date) == "Mon, 1 Jan 2001 00:00:00 +0000")
        #expect(string(env?.subject) == "=?utf-8?B?SGk=?= there")
        #expect(env?.decodedSubject == "Hi there")
        #expect(env?.sender == env?.from && env?.replyTo == env?.from)
        #expect(env?.from.count == 1)
        #expect(env?.cc.isEmpty == true && env?.bcc.isEmpty == true)
        #expect(string(env?.messageID) == "<1@example.com>")
        #expect(string(env?.inReplyTo) == "<0@example.com>")
    }

    @Test func explicitSenderIsKept() {
        let env = MIMEMessage.parse(crlf("From: a@x\nSender: s@x\nReply-To: \n\n")).envelope
        #expect(env?.sender.count == 1 && env?.sender != env?.from)
        #expect(env?.replyTo == env?.from)  // present but empty → from
    }
}
