import Foundation
import MailCore
import MailStore
import Testing

/// The store operations IMAP needs: flags with MODSEQ, expunge, copy/move,
/// mailbox management, STATUS.
@Suite struct MailboxChangeTests {
    let user = "alice@example.test"

    func storeWith(_ count: Int) throws -> (MailStore, String) {
        let dir = NSTemporaryDirectory() + "postcell-mbx-\(UUID().uuidString)"
        let store = try MailStore(directory: dir)
        try store.ensureUsers([user], now: 100)
        let id = store.userID(user)!
        for i in 0..<count {
            let m = try store.newMessage()
            m.write(Array("Subject: \(i)\r\n\r\nbody \(i)\r\n".utf8))
            _ = store.commit([Delivery(message: m, recipients: [(id, "INBOX")], userQuotas: [:], cellQuota: 0, internalDate: Int64(i))])
        }
        return (store, dir)
    }

    @Test func flagsAndModseq() throws {
        let (store, _) = try storeWith(3)
        let before = try store.status(user: user, mailbox: "INBOX")
        #expect(before.messages == 3 && before.unseen == 3)
        let r = try store.setFlags(user: user, mailbox: "INBOX", uids: [1, 2], mode: .add, flags: ["\\seen", "$Work"])
        #expect(r.changed.map(\.uid) == [1, 2])
        #expect(r.changed[0].flags == .seen && r.changed[0].keywords == ["$Work"])
        #expect(r.changed[1].modseq > r.changed[0].modseq)
        // No change, no new MODSEQ.
        #expect(try store.setFlags(user: user, mailbox: "INBOX", uids: [1], mode: .add, flags: ["\\Seen"]).changed.isEmpty)
        let after = try store.status(user: user, mailbox: "INBOX")
        #expect(after.unseen == 1)
        #expect(after.highestModseq == r.changed[1].modseq)
        // RFC 7162 UNCHANGEDSINCE: message 2 changed after modseq of message 1's change.
        let conditional = try store.setFlags(user: user, mailbox: "INBOX", uids: [1, 2], mode: .replace, flags: ["\\Flagged"],
                                             unchangedSince: r.changed[0].modseq)
        #expect(conditional.failed == [2])
        #expect(conditional.changed.map(\.uid) == [1])
        let listed = try store.messages(user: user, mailbox: "INBOX")
        #expect(listed[0].flags == SystemFlags.flagged.rawValue && listed[0].keywords.isEmpty)
        #expect(listed[1].keywords == ["$Work"])
    }

    @Test func copyMoveExpungeShareFiles() throws {
        let (store, _) = try storeWith(3)
        let copied = try store.copy(user: user, from: "INBOX", to: "Archive", uids: [1, 3], move: false, quota: 0)
        #expect(copied.map(\.0) == [1, 3] && copied.map(\.1) == [1, 2])
        let archive = try store.messages(user: user, mailbox: "Archive")
        let inbox = try store.messages(user: user, mailbox: "INBOX")
        #expect(archive[0].blob == inbox[0].blob)
        // Expunging one reference keeps the shared file.
        #expect(try store.expunge(user: user, mailbox: "INBOX", uids: [1, 99]) == [1])
        #expect(FileManager.default.fileExists(atPath: archive[0].path))
        #expect(try store.expunge(user: user, mailbox: "Archive", uids: [1]) == [1])
        #expect(!FileManager.default.fileExists(atPath: archive[0].path))
        // MOVE (RFC 6851): new UIDs in the target, gone from the source.
        let moved = try store.copy(user: user, from: "INBOX", to: "Trash", uids: [2], move: true, quota: 0)
        #expect(moved.map(\.1) == [1])
        #expect(try store.messages(user: user, mailbox: "INBOX").map(\.uid) == [3])
        #expect(try store.status(user: user, mailbox: "INBOX").uidNext == 4) // UIDs never reused
        #expect(try store.check() == [])
    }

    @Test func copyOverQuotaChangesNothing() throws {
        let (store, _) = try storeWith(2)
        let used = store.usage(user: store.userID(user)!)
        #expect(throws: MailboxError.overQuota) {
            try store.copy(user: user, from: "INBOX", to: "Archive", uids: [1, 2], move: false, quota: used + 10)
        }
        #expect(try store.messages(user: user, mailbox: "Archive").isEmpty)
        #expect(try store.check() == [])
    }

    @Test func mailboxManagement() throws {
        let (store, _) = try storeWith(1)
        try store.createMailbox(user: user, name: "Family/Photos", now: 5)
        #expect(throws: MailboxError.alreadyExists) { try store.createMailbox(user: user, name: "Family", now: 5) }
        try store.renameMailbox(user: user, from: "Family", to: "Kin", now: 6)
        let names = try store.mailboxes(user: user).map(\.name)
        #expect(names.contains("Kin") && names.contains("Kin/Photos") && !names.contains("Family/Photos"))
        #expect(throws: MailboxError.notAllowed("INBOX cannot be deleted")) { try store.deleteMailbox(user: user, name: "INBOX") }
        // RFC 9051 §6.3.6: renaming INBOX moves its messages and leaves an empty INBOX.
        try store.renameMailbox(user: user, from: "INBOX", to: "Old", now: 7)
        #expect(try store.messages(user: user, mailbox: "Old").count == 1)
        #expect(try store.messages(user: user, mailbox: "INBOX").isEmpty)
        try store.deleteMailbox(user: user, name: "Old")
        #expect(throws: MailboxError.noSuchMailbox) { try store.status(user: user, mailbox: "Old") }
        #expect(store.usage(user: store.userID(user)!) == 0)
        #expect(try store.check() == [])
    }
}
