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

    @Test func mailboxWithoutDomainIsNoGroupMarker() {
        // RFC 3501 §7.4.2 / RFC 9051 §7.5.2: a NIL host marks a group, so
        // ENVELOPE writes a placeholder for a local part without a domain.
        let entries = AddressParser.parseList(Array("a@b, localrecipient".utf8))
        #expect(AddressListEntry.imapAddresses(entries)[1] == Address(mailbox: Array("localrecipient".utf8)))
        let flat = AddressListEntry.envelopeAddresses(entries)
        #expect(flat.count == 2)
        #expect(string(flat[0].mailbox) == "a" && string(flat[0].host) == "b")
        #expect(string(flat[1].mailbox) == "localrecipient" && string(flat[1].host) == "MISSING_DOMAIN")
    }

    @Test func missingLocalPart() {
        let daemon = AddressParser.parseMailboxes(Array("MAILER DAEMON <>".utf8))
        #expect(daemon.count == 1)
        #expect(string(daemon[0].name) == "MAILER DAEMON" && daemon[0].mailbox == nil && daemon[0].host == nil)
        #expect(string(daemon[0].envelopeForm.mailbox) == "MISSING_MAILBOX")
        #expect(string(daemon[0].envelopeForm.host) == "MISSING_DOMAIN")
        #expect(daemon[0].envelopeForm.name == daemon[0].name)
        // "@" first with no ":" is no obs-route (RFC 5322 §4.4): an empty local part.
        let noLocal = AddressParser.parseMailboxes(Array("<@example.com>, @example.org".utf8))
        #expect(noLocal.map { string($0.host) } == ["example.com", "example.org"])
        #expect(noLocal.allSatisfy { $0.route == nil && $0.mailbox == nil })
        #expect(string(noLocal[0].envelopeForm.mailbox) == "MISSING_MAILBOX")
    }

    @Test func syntaxErrorInsideAngleBrackets() {
        // A second word where ">" or "@" must follow: the host says SYNTAX_ERROR.
        let list = AddressParser.parseMailboxes(Array("<Undisclosed Recipients>, a@b, <x@y@z>".utf8))
        #expect(list.count == 3)
        #expect(list[0].hasSyntaxError && string(list[0].mailbox) == "Undisclosed")
        #expect(string(list[0].envelopeForm.host) == "SYNTAX_ERROR")
        #expect(!list[1].hasSyntaxError && list[1].envelopeForm == list[1])
        #expect(list[2].hasSyntaxError && string(list[2].envelopeForm.mailbox) == "x")
        #expect(string(list[2].envelopeForm.host) == "SYNTAX_ERROR")
        // A bracketed local part alone parses; its domain is only missing.
        let local = AddressParser.parseMailboxes(Array("<foo>".utf8))
        #expect(!local[0].hasSyntaxError && string(local[0].envelopeForm.host) == "MISSING_DOMAIN")
    }

    @Test func wordsWithoutAnAddressAreADisplayName() {
        // RFC 5322 §3.4.1: without "@domain" there is no addr-spec; a bare
        // dot-atom is kept as a local part, words separated by space or a
        // lone quoted string are a phrase.
        let list = AddressParser.parseMailboxes(Array(#"x y z, "a b", John Doe@example.com, J. Smith, foo (Foo Bar), a.b"#.utf8))
        #expect(list.map { string($0.name) } == ["x y z", "a b", "John Doe", "J. Smith", "Foo Bar", nil])
        #expect(list.map { string($0.mailbox) } == [nil, nil, nil, nil, "foo", "a.b"])
        #expect(list.allSatisfy { $0.host == nil })
        // "[…]" is no RFC 5322 phrase, but common in names.
        let bot = AddressParser.parseMailboxes(Array("[Bot] Jenkins <ci@example.com>".utf8))
        #expect(bot.count == 1 && string(bot[0].name) == "[Bot] Jenkins" && bot[0].addressString == "ci@example.com")
    }

    @Test func junkAfterAMailboxRunsToTheNextComma() {
        // RFC 5322 §3.4: addresses are separated by ","; an unquoted
        // display name cannot hold "@" (§3.2.5), so what follows an
        // addr-spec without a "," is junk, "<…>" included.
        let list = AddressParser.parseMailboxes(Array(
            "jang.abcdef@xyzlinu <jang.abcdef@xyzlinux12345678.it>, a@b junk <x, y>, c@d".utf8))
        #expect(list.map(\.addressString) == ["jang.abcdef@xyzlinu", "a@b", "c@d"])
        let env = MIMEMessage.parse(VectorFiles.bytes("mimekit-messages/issue358.txt")).envelope
        #expect(env?.from.count == 1)
        // §4.4 obs-addr-list: empty elements are skipped.
        #expect(AddressParser.parseMailboxes(Array("a@b, , c@d".utf8)).count == 2)
    }

    @Test func onlyGroupMarkersHaveNilHost() {
        let entries = AddressParser.parseList(Array("g: a@b, c;, MAILER DAEMON <>".utf8))
        let flat = AddressListEntry.envelopeAddresses(entries)
        #expect(flat.count == 5)
        #expect(string(flat[0].mailbox) == "g" && flat[0].host == nil)
        #expect(string(flat[2].mailbox) == "c" && string(flat[2].host) == "MISSING_DOMAIN")
        #expect(flat[3] == Address())
        #expect(flat.indices.filter { flat[$0].host == nil } == [0, 3])
        // ":" inside unencoded text makes a group; its member ends at the next ":".
        let env = MIMEMessage.parse(VectorFiles.bytes("mimekit-messages/stack-overflow.txt")).envelope
        let to = AddressListEntry.envelopeAddresses(env?.to ?? [])
        #expect(to.count == 4)
        #expect(string(to[1].mailbox) == "=?utf-8?Q?date=3E2017-08-20T10" && to[1].host == nil)
        #expect(string(to[2].mailbox) == "08" && string(to[2].host) == "MISSING_DOMAIN")
        #expect(to[3] == Address())
    }

    @Test func explicitSenderIsKept() {
        let env = MIMEMessage.parse(crlf("From: a@x\nSender: s@x\nReply-To: \n\n")).envelope
        #expect(env?.sender.count == 1 && env?.sender != env?.from)
        #expect(env?.replyTo == env?.from)  // present but empty → from
    }
}
