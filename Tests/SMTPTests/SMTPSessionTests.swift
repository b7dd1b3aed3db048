import MailCore
import SMTP
import Testing

/// Event/action transcripts of the pure session state machine.
@Suite struct SMTPSessionTests {
    typealias A = SMTPServerSession.Action

    func session(_ role: SMTPRole = .mx, tls: Bool = false, maxRecipients: Int = 100, maxErrors: Int = 20) -> SMTPServerSession {
        var s = SMTPServerSession(configuration: SMTPSessionConfiguration(
            hostname: "mx.example.test", role: role, tlsAvailable: true, maxMessageBytes: 1000,
            maxRecipients: maxRecipients, maxErrors: maxErrors), isTLS: tls)
        _ = s.greeting()
        return s
    }

    func line(_ s: inout SMTPServerSession, _ text: String) -> [A] { s.receivedLine(Array(text.utf8)) }

    func replyCodes(_ actions: [A]) -> [Int] {
        actions.compactMap {
            switch $0 {
            case .send(let r), .sendAndClose(let r): return r.code
            default: return nil
            }
        }
    }

    @Test func mxTransaction() {
        var s = session()
        #expect(replyCodes(line(&s, "EHLO client.example")) == [250])
        let mail = line(&s, "MAIL FROM:<a@elsewhere.example> SIZE=100")
        guard case .checkSender(let path, let params) = mail.first else { Issue.record("\(mail)"); return }
        #expect(path.address?.lookupKey == "a@elsewhere.example")
        #expect(params.size == 100)
        #expect(replyCodes(s.senderChecked(nil)) == [250])
        guard case .checkRecipient(let rcpt, _) = line(&s, "RCPT TO:<u@example.test>").first else { Issue.record("no check"); return }
        #expect(rcpt.lookupKey == "u@example.test")
        #expect(replyCodes(s.recipientChecked(nil)) == [250])
        let data = line(&s, "DATA")
        #expect(replyCodes(data) == [354])
        #expect(data.contains { if case .receiveData = $0 { true } else { false } })
        guard case .deliver(let tx) = s.dataEnded(size: 10, overflow: false).first else { Issue.record("no deliver"); return }
        #expect(tx.recipients.count == 1)
        #expect(replyCodes(s.delivered(SMTPReply(250, "2.0.0", "Ok"))) == [250])
        #expect(s.transaction == nil)
    }

    @Test func sequencingErrors() {
        var s = session()
        #expect(line(&s, "MAIL FROM:<a@b.example>") == [.send(.needHelo)])
        _ = line(&s, "HELO c")
        #expect(line(&s, "RCPT TO:<u@example.test>") == [.send(.needMail)])
        #expect(line(&s, "DATA") == [.send(.needMail)])
        _ = line(&s, "MAIL FROM:<a@b.example>")
        _ = s.senderChecked(nil)
        #expect(line(&s, "MAIL FROM:<a@b.example>") == [.send(.nestedMail)])
        #expect(line(&s, "DATA") == [.send(.needRcpt)])
        _ = line(&s, "RCPT TO:<x@other.example>")
        _ = s.recipientChecked(.relayDenied)
        #expect(line(&s, "DATA") == [.send(.noValidRecipients)])
        #expect(line(&s, "VRFY root") == [.send(.vrfyDisabled)])
        #expect(line(&s, "EXPN staff") == [.send(.expnDisabled)])
        #expect(line(&s, "RSET") == [.discardMessage, .send(.ok)])
    }

    @Test func sizeAndRecipientLimits() {
        var s = session(maxRecipients: 2)
        _ = line(&s, "EHLO c")
        #expect(line(&s, "MAIL FROM:<a@b.example> SIZE=1001") == [.send(.messageTooBig)])
        _ = line(&s, "MAIL FROM:<a@b.example>")
        _ = s.senderChecked(nil)
        for i in 0..<2 {
            _ = line(&s, "RCPT TO:<u\(i)@example.test>")
            _ = s.recipientChecked(nil)
        }
        #expect(line(&s, "RCPT TO:<u9@example.test>") == [.send(.tooManyRecipients)])
        _ = line(&s, "DATA")
        #expect(s.dataEnded(size: 2000, overflow: true) == [.discardMessage, .send(.messageTooBig)])
    }

    @Test func tooManyErrorsCloses() {
        var s = session(maxErrors: 2)
        #expect(replyCodes(line(&s, "FOO")) == [500])
        #expect(replyCodes(line(&s, "FOO")) == [500])
        #expect(line(&s, "FOO") == [.sendAndClose(.tooManyErrors)])
    }

    /// RFC 4954 §4 and RFC 3207: AUTH only on submission, only after TLS.
    @Test func authRules() {
        var mx = session(.mx, tls: true)
        _ = line(&mx, "EHLO c")
        #expect(line(&mx, "AUTH PLAIN AGEAYg==") == [.send(.authNotEnabled)])

        var plain = session(.submission)
        let ehlo = line(&plain, "EHLO c")
        guard case .send(let r) = ehlo.first else { return }
        #expect(r.lines.contains("STARTTLS"))
        #expect(!r.lines.contains { $0.hasPrefix("AUTH") })
        #expect(line(&plain, "AUTH PLAIN AGEAYg==") == [.send(.encryptionRequired)])
        #expect(line(&plain, "MAIL FROM:<a@example.test>") == [.send(.authRequired)])
        #expect(line(&plain, "STARTTLS") == [.send(.readyForTLS), .startTLS])
        plain.tlsEstablished()
        #expect(plain.helo == nil)
        let ehlo2 = line(&plain, "EHLO c")
        guard case .send(let r2) = ehlo2.first else { return }
        #expect(r2.lines.contains("AUTH PLAIN LOGIN"))
        #expect(!r2.lines.contains("STARTTLS"))
        // "\0alice\0secret"
        #expect(line(&plain, "AUTH PLAIN " + Base64.encode([0] + Array("alice".utf8) + [0] + Array("secret".utf8)))
                == [.authenticate(user: "alice", password: "secret")])
        #expect(plain.authenticated(.success(user: "alice")) == [.send(.authSuccess)])
        #expect(line(&plain, "AUTH PLAIN AGEAYg==") == [.send(.alreadyAuthenticated)])
    }

    @Test func authLoginExchangeAndFailures() {
        var s = session(.submission, tls: true)
        _ = line(&s, "EHLO c")
        #expect(line(&s, "AUTH LOGIN") == [.send(SMTPReply(334, nil, "VXNlcm5hbWU6"))])
        #expect(s.inAuthExchange)
        #expect(line(&s, Base64.encode(Array("alice".utf8))) == [.send(SMTPReply(334, nil, "UGFzc3dvcmQ6"))])
        #expect(line(&s, Base64.encode(Array("wrong".utf8))) == [.authenticate(user: "alice", password: "wrong")])
        #expect(s.authenticated(.invalid) == [.send(.authInvalid)])
        _ = line(&s, "AUTH PLAIN")
        #expect(line(&s, "*") == [.send(.authCancelled)])
        _ = line(&s, "AUTH PLAIN AGEAYg==")
        #expect(s.authenticated(.invalid) == [.send(.authInvalid)])
        _ = line(&s, "AUTH PLAIN AGEAYg==")
        #expect(s.authenticated(.invalid) == [.sendAndClose(.authTooManyFailures)])
    }

    /// RFC 3030: BDAT chunks, DATA not allowed after BDAT, errors still consume the chunk.
    @Test func chunking() {
        var s = session()
        _ = line(&s, "EHLO c")
        #expect(line(&s, "BDAT 5") == [.receiveChunk(size: 5, keep: false, transaction: nil)])
        #expect(s.chunkRead() == [.send(.needMail)])
        _ = line(&s, "MAIL FROM:<a@b.example>")
        _ = s.senderChecked(nil)
        _ = line(&s, "RCPT TO:<u@example.test>")
        _ = s.recipientChecked(nil)
        guard case .receiveChunk(5, true, let tx?) = line(&s, "BDAT 5").first else { Issue.record("no chunk"); return }
        #expect(tx.usesBDAT)
        #expect(s.chunkRead() == [.send(SMTPReply(250, "2.0.0", "5 octets received"))])
        #expect(line(&s, "DATA") == [.send(.dataAfterBDAT)])
        guard case .receiveChunk(3, true, nil) = line(&s, "BDAT 3 LAST").first else { Issue.record("no last"); return }
        guard case .deliver(let done) = s.chunkRead().first else { Issue.record("no deliver"); return }
        #expect(done.bytesReceived == 8)
        // Over the size limit: the chunk is read and dropped, the transaction fails.
        _ = s.delivered(.ok)
        _ = line(&s, "MAIL FROM:<a@b.example>")
        _ = s.senderChecked(nil)
        _ = line(&s, "RCPT TO:<u@example.test>")
        _ = s.recipientChecked(nil)
        #expect(line(&s, "BDAT 1001") == [.receiveChunk(size: 1001, keep: false, transaction: nil)])
        #expect(s.chunkRead() == [.send(.messageTooBig)])
        #expect(s.transaction == nil)
    }

    @Test func utf8NeedsSMTPUTF8() {
        var s = session()
        _ = line(&s, "EHLO c")
        #expect(line(&s, "MAIL FROM:<jörg@b.example>") == [.send(.needUTF8)])
        _ = line(&s, "MAIL FROM:<a@b.example>")
        _ = s.senderChecked(nil)
        #expect(line(&s, "RCPT TO:<jörg@example.test>") == [.send(.needUTF8)])
        _ = line(&s, "RSET")
        guard case .checkSender = line(&s, "MAIL FROM:<jörg@b.example> SMTPUTF8").first else { Issue.record("refused"); return }
    }
}
