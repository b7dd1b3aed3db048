import Foundation
import Testing
@testable import MailQueue

@Suite struct DSNTests {
    let original = Array("Received: by x\r\nFrom: alice@example.org\r\nSubject: Plans\r\n\r\nsecret body\r\n".utf8)

    func report(_ action: DSN.Action) -> DSN {
        DSN(reportingMTA: "mx.example.org", queueID: "q1", originalSender: "alice@example.org", arrival: 1_795_500_000,
            lastAttempt: 1_795_500_100, retryUntil: 1_795_932_000,
            recipients: [.init(address: "bob@example.net", action: action, status: action == .failed ? "5.1.1" : "4.2.0",
                               diagnostic: action == .failed ? "550 5.1.1 no such user" : "450 4.2.0 later", remote: "mx.example.net[192.0.2.1]"),
                         .init(address: "carol@nowhere.test", action: action, status: "5.1.2", diagnostic: "550 5.1.2 domain nowhere.test does not exist", remote: nil)],
            originalHeader: DSN.headerSection(of: original))
    }

    @Test func headerSectionStopsAtTheBlankLine() {
        #expect(String(decoding: DSN.headerSection(of: original), as: UTF8.self) == "Received: by x\r\nFrom: alice@example.org\r\nSubject: Plans\r\n")
        #expect(DSN.headerSection(of: Array("A: b\nC: d\n\nbody".utf8)) == Array("A: b\nC: d\n".utf8))
        // Cut at a line end when longer than the limit.
        #expect(DSN.headerSection(of: Array("A: 1\r\nB: 2\r\nC: 3".utf8), limit: 9) == Array("A: 1\r\n".utf8))
    }

    /// RFC 3464 §2: the report's parts and fields.
    @Test func failureReportFields() {
        let text = String(decoding: report(.failed).render(date: 1_795_500_200, boundary: "b1"), as: UTF8.self)
        #expect(text.contains("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"b1\"\r\n"))
        #expect(text.contains("Subject: Undelivered Mail Returned to Sender\r\n"))
        #expect(text.contains("Auto-Submitted: auto-replied\r\n"))
        #expect(text.contains("\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n"))
        #expect(text.contains("\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.example.net[192.0.2.1]\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n"))
        // A reason of our own is not an SMTP reply.
        #expect(text.contains("Final-Recipient: rfc822; carol@nowhere.test\r\nAction: failed\r\nStatus: 5.1.2\r\nDiagnostic-Code: X-Postcell; 550 5.1.2"))
        #expect(text.contains("Content-Type: text/rfc822-headers\r\n\r\nReceived: by x\r\nFrom: alice@example.org\r\nSubject: Plans\r\n"))
        #expect(!text.contains("secret body"))
        #expect(text.hasSuffix("\r\n--b1--\r\n"))
        #expect(!text.contains("Will-Retry-Until"))
        // No bare LF anywhere.
        let bytes = Array(text.utf8)
        for (i, b) in bytes.enumerated() where b == 10 { #expect(i > 0 && bytes[i - 1] == 13) }
    }

    @Test func delayReport() {
        let text = String(decoding: report(.delayed).render(date: 1_795_500_200, boundary: "b2"), as: UTF8.self)
        #expect(text.contains("Subject: Delayed Mail (still being retried)\r\n"))
        #expect(text.contains("Action: delayed\r\nStatus: 4.2.0\r\n"))
        #expect(text.contains("Will-Retry-Until: "))
    }

    @Test func retryDelaysDoubleUpToTheMaximum() {
        var rng = SystemRandomNumberGenerator()
        let p = RetryPolicy(base: 300, maximum: 14_400, lifetime: 432_000, warnAfter: 14_400)
        for (attempt, base) in [(1, 300), (2, 600), (3, 1200), (6, 9600), (7, 14_400), (40, 14_400)] {
            let d = p.delay(after: attempt, using: &rng)
            #expect(d >= Int64(base) && d <= Int64(base) + Int64(base) / 10, "attempt \(attempt): \(d)")
        }
    }

    @Test func stateTracksRecipientsOnce() throws {
        var s = QueueEntryState(id: "q", recipients: ["a@x", "b@x"], nextAttempt: 0)
        s.update("a@x", .delivered, reply: "250 ok", code: "2.0.0", remote: "mx")
        // A later outcome for a recipient already done does not change it.
        s.update("a@x", .failed, reply: "550", code: "5.0.0", remote: "mx")
        #expect(s.recipients[0].status == .delivered && s.pending == ["b@x"] && !s.isDone)
        s.update("b@x", .failed, reply: "550", code: "5.0.0", remote: nil)
        #expect(s.isDone)
        let round = try JSONDecoder().decode(QueueEntryState.self, from: JSONEncoder().encode(s))
        #expect(round == s)
    }
}
