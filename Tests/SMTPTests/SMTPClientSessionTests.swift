import NIOCore
import Testing
@testable import SMTP

/// The client state machine against scripted server replies (RFC 5321,
/// RFC 2920 pipelining, RFC 3207 STARTTLS, RFC 4954 AUTH).
@Suite struct SMTPClientSessionTests {
    func r(_ code: Int, _ text: String...) -> SMTPReply { SMTPReply(code, nil, text) }
    let ehloPipelining = SMTPReply(250, nil, ["mx.example.net", "PIPELINING", "SIZE 1000", "8BITMIME", "STARTTLS"])
    let ehloPlain = SMTPReply(250, nil, ["mx.example.net", "SIZE"])
    func txn(_ rcpts: [String] = ["a@example.net", "b@example.net"], size: Int = 100, utf8: Bool = false) -> SMTPClientSession.Transaction {
        .init(id: "q1", from: "me@example.org", recipients: rcpts, size: size, eightBit: true, needsSMTPUTF8: utf8)
    }

    @Test func replyParserMultilineAndEnhancedCodes() throws {
        var p = SMTPReplyParser()
        var b = ByteBuffer(string: "250-mx.example.net hi\r\n250-PIPELINING\r\n250 SIZE 10\r\n550-5.1.1 no\r\n550 5.1.1 such user\r\n45")
        let first = try #require(try p.parse(&b))
        #expect(first.code == 250 && first.lines == ["mx.example.net hi", "PIPELINING", "SIZE 10"] && first.enhanced == nil)
        let second = try #require(try p.parse(&b))
        #expect(second.code == 550 && second.enhanced == "5.1.1" && second.lines == ["no", "such user"])
        #expect(second.oneLine == "550 5.1.1 no such user")
        #expect(try p.parse(&b) == nil)
        b.writeString("1 4.2.0 later\n")
        #expect(try p.parse(&b) == SMTPReply(451, "4.2.0", ["later"]))
    }

    @Test func replyParserRejectsGarbage() {
        for bad in ["hello\r\n", "25 x\r\n", "250x\r\n", "250-a\r\n251 b\r\n", "999 no\r\n"] {
            var p = SMTPReplyParser()
            var b = ByteBuffer(string: bad)
            #expect(throws: SMTPReplyParser.Failure.self) { while try p.parse(&b) != nil {} }
        }
        var p = SMTPReplyParser()
        var b = ByteBuffer(string: "250-" + String(repeating: "x", count: 9000))
        #expect(throws: SMTPReplyParser.Failure.lineTooLong) { _ = try p.parse(&b) }
        // An enhanced code of the wrong class is text, not a code.
        var q = SMTPReplyParser()
        var c = ByteBuffer(string: "250 5.1.1 odd\r\n")
        #expect(try! q.parse(&c) == SMTPReply(250, nil, ["5.1.1 odd"]))
    }

    @Test func pipelinedTransactionWithOneRecipientRefused() {
        var s = SMTPClientSession(configuration: .init(heloName: "cell.example.org", tls: .none))
        #expect(s.received(r(220, "mx.example.net ESMTP")) == [.send("EHLO cell.example.org\r\n")])
        #expect(s.received(ehloPipelining) == [.ready])
        let t = txn()
        #expect(s.begin(t) == [.send("MAIL FROM:<me@example.org> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")])
        #expect(s.received(r(250, "ok")) == [])
        #expect(s.received(SMTPReply(550, "5.1.1", "unknown")) == [])
        #expect(s.received(r(250, "ok")) == [])
        #expect(s.received(r(354, "go")) == [.sendMessage])
        let done = s.received(SMTPReply(250, "2.0.0", "queued"))
        #expect(done == [.finished(.init(id: "q1", outcomes: [
            ("a@example.net", .failed(SMTPReply(550, "5.1.1", "unknown"))),
            ("b@example.net", .delivered(SMTPReply(250, "2.0.0", "queued"))),
        ])), .ready])
        #expect(s.quit() == [.send("QUIT\r\n")])
        #expect(s.received(r(221, "bye")) == [.close])
    }

    @Test func oneCommandAtATimeWithoutPipelining() {
        var s = SMTPClientSession(configuration: .init(heloName: "h", tls: .opportunistic))
        _ = s.received(r(220, "mx"))
        #expect(s.received(ehloPlain) == [.ready]) // no STARTTLS offered: plaintext
        #expect(s.begin(txn(["x@example.net"])) == [.send("MAIL FROM:<me@example.org> SIZE=100\r\n")])
        #expect(s.received(r(250)) == [.send("RCPT TO:<x@example.net>\r\n")])
        #expect(s.received(SMTPReply(451, "4.7.1", "greylisted")) == [
            .finished(.init(id: "q1", outcomes: [("x@example.net", .deferred(SMTPReply(451, "4.7.1", "greylisted")))])),
            .send("RSET\r\n"),
        ])
        #expect(s.received(r(250)) == [.ready])
    }

    @Test func mailRefusedFailsEveryRecipient() {
        var s = SMTPClientSession(configuration: .init(heloName: "h", tls: .none))
        _ = s.received(r(220, "mx")); _ = s.received(ehloPipelining)
        _ = s.begin(txn())
        _ = s.received(SMTPReply(553, "5.7.1", "sender refused"))
        _ = s.received(SMTPReply(503, "5.5.1", "need MAIL"))
        _ = s.received(SMTPReply(503, "5.5.1", "need MAIL"))
        let a = s.received(SMTPReply(503, "5.5.1", "need MAIL"))
        #expect(a.first == .finished(.init(id: "q1", outcomes: [
            ("a@example.net", .failed(SMTPReply(553, "5.7.1", "sender refused"))),
            ("b@example.net", .failed(SMTPReply(553, "5.7.1", "sender refused"))),
        ])))
        #expect(a.last == .send("RSET\r\n"))
    }

    @Test func dataAcceptedWithoutRecipientsIsEndedEmpty() {
        var s = SMTPClientSession(configuration: .init(heloName: "h", tls: .none))
        _ = s.received(r(220, "mx")); _ = s.received(ehloPipelining)
        _ = s.begin(txn(["a@example.net"]))
        _ = s.received(r(250)); _ = s.received(SMTPReply(450, "4.2.0", "busy"))
        #expect(s.received(r(354)) == [.send(".\r\n")])
        let a = s.received(SMTPReply(554, "5.5.1", "no valid recipients"))
        #expect(a.first == .finished(.init(id: "q1", outcomes: [("a@example.net", .deferred(SMTPReply(450, "4.2.0", "busy")))])))
    }

    @Test func startTLSThenEHLOAgainThenAuth() {
        var s = SMTPClientSession(configuration: .init(heloName: "h", tls: .required, auth: ("u", "p")))
        _ = s.received(r(220, "relay"))
        #expect(s.received(ehloPipelining) == [.send("STARTTLS\r\n")])
        #expect(s.received(r(220, "ready")) == [.startTLS])
        #expect(s.tlsEstablished() == [.send("EHLO h\r\n")])
        #expect(s.received(SMTPReply(250, nil, ["relay", "AUTH LOGIN PLAIN"])) == [.send("AUTH PLAIN AHUAcA==\r\n")])
        #expect(s.received(SMTPReply(235, "2.7.0", "ok")) == [.ready])
    }

    @Test func authLoginSteps() {
        var s = SMTPClientSession(configuration: .init(heloName: "h", tls: .required, auth: ("u", "p"), implicitTLS: true))
        _ = s.received(r(220, "relay"))
        #expect(s.received(SMTPReply(250, nil, ["relay", "AUTH LOGIN"])) == [.send("AUTH LOGIN\r\n")])
        #expect(s.received(r(334, "VXNlcm5hbWU6")) == [.send("dQ==\r\n")])
        #expect(s.received(r(334, "UGFzc3dvcmQ6")) == [.send("cA==\r\n")])
        let a = s.received(SMTPReply(535, "5.7.8", "bad"))
        // A refused login keeps the mail: temporary, never a bounce.
        #expect(a.contains(.failed(.init(SMTPReply(454, "5.7.8", "AUTH refused: 535 5.7.8 bad")))))
    }

    @Test func requiredTLSWithoutStartTLSFailsAsPolicy() {
        var s = SMTPClientSession(configuration: .init(heloName: "h", tls: .required))
        _ = s.received(r(220, "mx"))
        let a = s.received(ehloPlain)
        guard case .failed(let f) = a.first else { Issue.record("expected failure, got \(a)"); return }
        #expect(f.tlsPolicy && !f.permanent && f.reply.code == 451)
        #expect(a.last == .close)
    }

    @Test func noAuthWithoutTLS() {
        var s = SMTPClientSession(configuration: .init(heloName: "h", tls: .none, auth: ("u", "p")))
        _ = s.received(r(220, "relay"))
        let a = s.received(SMTPReply(250, nil, ["relay", "AUTH PLAIN"]))
        #expect(!a.contains { if case .send(let l) = $0 { return l.hasPrefix("AUTH") } else { return false } })
        #expect(a.last == .close)
    }

    @Test func ehloRefusedFallsBackToHelo() {
        var s = SMTPClientSession(configuration: .init(heloName: "h", tls: .opportunistic))
        _ = s.received(r(220, "old"))
        #expect(s.received(r(502, "what")) == [.send("HELO h\r\n")])
        #expect(s.received(r(250, "old")) == [.ready])
        #expect(s.begin(txn(["a@example.net"])) == [.send("MAIL FROM:<me@example.org>\r\n")])
    }

    @Test func greetingRefusalAndSizeAndUTF8Limits() {
        var s = SMTPClientSession(configuration: .init(heloName: "h", tls: .none))
        let a = s.received(SMTPReply(554, "5.7.1", "no service"))
        #expect(a.contains(.failed(.init(SMTPReply(554, "5.7.1", "no service"), permanent: true))))

        var t = SMTPClientSession(configuration: .init(heloName: "h", tls: .none))
        _ = t.received(r(220, "mx")); _ = t.received(ehloPipelining)
        let big = t.begin(txn(["a@example.net"], size: 5000))
        guard case .finished(let res) = big.first, case .failed(let reply) = res.outcomes[0].outcome else { Issue.record("\(big)"); return }
        #expect(reply.enhanced == "5.3.4")
        #expect(t.isReady)
        let intl = t.begin(txn(["ü@example.net"], utf8: true))
        guard case .finished(let res2) = intl.first, case .failed(let reply2) = res2.outcomes[0].outcome else { Issue.record("\(intl)"); return }
        #expect(reply2.enhanced == "5.6.7")
    }

    @Test func serverClosingMidTransactionDefers() {
        var s = SMTPClientSession(configuration: .init(heloName: "h", tls: .none))
        _ = s.received(r(220, "mx")); _ = s.received(ehloPipelining)
        _ = s.begin(txn(["a@example.net"]))
        _ = s.received(r(250)); _ = s.received(r(250))
        _ = s.received(r(354))
        let a = s.connectionLost("connection reset")
        #expect(a.first == .finished(.init(id: "q1", outcomes: [("a@example.net", .deferred(SMTPReply(451, "4.4.2", "connection reset")))])))
        var t = SMTPClientSession(configuration: .init(heloName: "h", tls: .none))
        _ = t.received(r(220, "mx")); _ = t.received(ehloPipelining)
        _ = t.begin(txn(["a@example.net"]))
        let b = t.received(SMTPReply(421, "4.3.2", "shutting down"))
        #expect(b.first == .finished(.init(id: "q1", outcomes: [("a@example.net", .deferred(SMTPReply(421, "4.3.2", "shutting down")))])))
        #expect(b.last == .close)
    }
}
