import Foundation
import MailCore
import MailQueue
import MailStore
import Testing

@Suite struct MailStoreTests {
    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "postcell-store-\(UUID().uuidString)"
        try! DurableFile.makeDirectory(d)
        return d
    }

    func message(_ store: MailStore, _ text: String) throws -> IncomingMessage {
        let m = try store.newMessage()
        m.write(Array(text.utf8))
        return m
    }

    @Test func commitAssignsUIDsAndSharesOneFile() throws {
        let store = try MailStore(directory: tempDir())
        try store.ensureUsers(["alice@example.test", "bob@example.test"], now: 1000)
        let a = store.userID("alice@example.test")!, b = store.userID("BOB@example.test")!
        let m1 = try message(store, "Subject: one\r\n\r\nx\r\n")
        let m2 = try message(store, "Subject: two\r\n\r\ny\r\n")
        let results = store.commit([
            Delivery(message: m1, recipients: [(a, "INBOX"), (b, "INBOX")], userQuotas: [:], cellQuota: 0, internalDate: 1),
            Delivery(message: m2, recipients: [(a, "INBOX")], userQuotas: [:], cellQuota: 0, internalDate: 2),
        ])
        #expect(results.allSatisfy { if case .success = $0 { true } else { false } })
        let inbox = try store.messages(user: "alice@example.test", mailbox: "INBOX")
        #expect(inbox.map(\.uid) == [1, 2])
        #expect(inbox.map(\.modseq) == [2, 3])
        let bob = try store.messages(user: "bob@example.test", mailbox: "INBOX")
        #expect(bob.count == 1 && bob[0].blob == inbox[0].blob)
        #expect(try DurableFile.readAll(inbox[1].path) == Array("Subject: two\r\n\r\ny\r\n".utf8))
        #expect(store.usage(user: a) == Int64(m1.size + m2.size))
        #expect(try store.check() == [])
        // The default mailboxes with their RFC 6154 roles.
        let boxes = try store.mailboxes(user: "alice@example.test")
        #expect(boxes.map(\.name) == ["INBOX", "Sent", "Drafts", "Junk", "Trash", "Archive"])
        #expect(boxes.first { $0.name == "Junk" }?.specialUse == "\\Junk")
    }

    /// Quarantined mail goes to Junk; a user who deleted or renamed Junk gets
    /// it in the INBOX, and the rest of the batch is not harmed.
    @Test func deliveryToAMissingMailboxGoesToInbox() throws {
        let store = try MailStore(directory: tempDir())
        try store.ensureUsers(["alice@example.test", "bob@example.test"], now: 1)
        let a = store.userID("alice@example.test")!, b = store.userID("bob@example.test")!
        try store.deleteMailbox(user: "alice@example.test", name: "Junk")
        let results = store.commit([
            Delivery(message: try message(store, "Subject: q\r\n\r\nx\r\n"), recipients: [(a, "Junk"), (b, "Junk")],
                     userQuotas: [:], cellQuota: 0, internalDate: 1),
            Delivery(message: try message(store, "Subject: ok\r\n\r\ny\r\n"), recipients: [(b, "INBOX")],
                     userQuotas: [:], cellQuota: 0, internalDate: 2),
        ])
        #expect(results.allSatisfy { if case .success = $0 { true } else { false } })
        #expect(try store.messages(user: "alice@example.test", mailbox: "INBOX").count == 1)
        #expect(try store.messages(user: "bob@example.test", mailbox: "Junk").count == 1)
        #expect(try store.messages(user: "bob@example.test", mailbox: "INBOX").count == 1)
        #expect(try store.check() == [])
    }

    /// RFC 3463: 4.2.2 while it may clear, 5.2.2 when the message can never fit.
    @Test func quotas() throws {
        let store = try MailStore(directory: tempDir())
        try store.ensureUsers(["alice@example.test"], now: 1)
        let a = store.userID("alice@example.test")!
        func deliver(_ size: Int, quota: Int64, cell: Int64 = 0) throws -> Result<String, StoreFailure> {
            let m = try message(store, String(repeating: "x", count: size))
            return store.commit([Delivery(message: m, recipients: [(a, "INBOX")], userQuotas: [a: quota], cellQuota: cell, internalDate: 1)])[0]
        }
        #expect((try? deliver(60, quota: 100).get()) != nil)
        #expect(try deliver(60, quota: 100) == .failure(.overQuota))
        #expect(try deliver(101, quota: 100) == .failure(.exceedsQuota))
        #expect(try deliver(30, quota: 0, cell: 80) == .failure(.overQuota))
        #expect(try store.messages(user: "alice@example.test", mailbox: "INBOX").count == 1)
        #expect(try store.check() == [])
    }

    /// Files in tmp/ were never acknowledged; complete files without an index
    /// row are moved aside, not dropped.
    @Test func recovery() throws {
        let dir = tempDir()
        let store = try MailStore(directory: dir)
        try store.ensureUsers(["alice@example.test"], now: 1)
        let a = store.userID("alice@example.test")!
        _ = store.commit([Delivery(message: try message(store, "kept\r\n"), recipients: [(a, "INBOX")], userQuotas: [:], cellQuota: 0, internalDate: 1)])
        let partial = try message(store, "partial")
        _ = partial
        let kept = try store.messages(user: "alice@example.test", mailbox: "INBOX")[0]
        let orphan = DurableFile.parentDirectory(of: kept.path) + "/" + String(kept.blob.prefix(5)) + "ffffffffffffff0"
        try DurableFile.write(Array("orphan".utf8), to: orphan, tmpDirectory: dir + "/tmp")
        #expect(try store.check().count == 2)
        let reopened = try MailStore(directory: dir)
        let r = try reopened.recover()
        #expect(r.removedTmp == 1 && r.orphans == 1)
        #expect(try reopened.check() == [])
        #expect(DurableFile.list(dir + "/orphans").count == 1)
    }

    @Test func spoolRoundTripAndTornFiles() throws {
        let dir = tempDir()
        let spool = try OutboundSpool(directory: dir)
        let env = OutboundEnvelope(id: "abc", from: "alice@example.test", recipients: ["x@remote.test"], received: 5, user: "alice@example.test")
        let bytes = try OutboundSpool.encode(env, message: Array("hello\r\n".utf8))
        let decoded = try #require(OutboundSpool.decode(bytes))
        #expect(decoded.0 == env)
        #expect(decoded.1 == Array("hello\r\n".utf8))
        for cut in [1, 10, bytes.count - 1] { #expect(OutboundSpool.decode(Array(bytes.prefix(cut))) == nil) }
        try spool.enqueue(env, message: Array("hello\r\n".utf8))
        try DurableFile.write(Array(bytes.prefix(bytes.count - 3)), to: dir + "/outbound/torn.msg", tmpDirectory: dir + "/tmp")
        let listed = spool.list()
        #expect(listed.map(\.envelope.id) == ["abc"])
        #expect(DurableFile.list(dir + "/corrupt") == ["torn.msg"])
    }
}
