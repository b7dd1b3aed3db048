import Foundation
import MailCore
import MailStore
import Testing

/// Usage per user and removing a user with its mail (the admin API's
/// `GET /v1/usage` and `DELETE /v1/users/X?purge=true`).
@Suite struct MailStoreUserTests {
    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "postcell-store-\(UUID().uuidString)"
        try! DurableFile.makeDirectory(d)
        return d
    }

    func deliver(_ store: MailStore, _ text: String, to users: [Int64], mailbox: String = "INBOX") throws -> String {
        let m = try store.newMessage()
        m.write(Array(text.utf8))
        let r = store.commit([Delivery(message: m, recipients: users.map { ($0, mailbox) }, userQuotas: [:], cellQuota: 0, internalDate: 1)])
        guard case .success(let blob) = r[0] else { throw StoreFailure.storage("commit failed") }
        return blob
    }

    @Test func usageCountsBytesAndMessagesPerUser() throws {
        let store = try MailStore(directory: tempDir())
        try store.ensureUsers(["alice@example.test", "bob@example.test"], now: 1)
        let a = store.userID("alice@example.test")!, b = store.userID("bob@example.test")!
        _ = try deliver(store, "Subject: one\r\n\r\nx\r\n", to: [a, b])
        _ = try deliver(store, "Subject: two!\r\n\r\nyy\r\n", to: [a], mailbox: "Sent")
        let usage = try store.usageByUser()
        #expect(usage["alice@example.test"] == .init(bytes: 19 + 21, messages: 2))
        #expect(usage["bob@example.test"] == .init(bytes: 19, messages: 1))
    }

    /// A shared file stays while another user still holds it; the user's own
    /// files go; the user can come back empty.
    @Test func deleteUserRemovesRowsAndUnsharedFiles() throws {
        let store = try MailStore(directory: tempDir())
        try store.ensureUsers(["alice@example.test", "bob@example.test"], now: 1)
        let a = store.userID("alice@example.test")!, b = store.userID("bob@example.test")!
        let shared = try deliver(store, "Subject: both\r\n\r\nx\r\n", to: [a, b])
        let own = try deliver(store, "Subject: alice only\r\n\r\ny\r\n", to: [a], mailbox: "Archive")
        #expect(try store.deleteUser("ALICE@example.test"))
        #expect(store.userID("alice@example.test") == nil)
        #expect(!DurableFile.exists(store.path(ofBlob: own)))
        #expect(DurableFile.exists(store.path(ofBlob: shared)))
        #expect(try store.messages(user: "bob@example.test", mailbox: "INBOX").count == 1)
        #expect(try store.usageByUser().keys.sorted() == ["bob@example.test"])
        #expect(store.totalUsage == 20)
        #expect(try store.check() == [])
        #expect(try !store.deleteUser("alice@example.test"))
        try store.ensureUsers(["alice@example.test"], now: 2)
        #expect(try store.messages(user: "alice@example.test", mailbox: "INBOX").isEmpty)
        #expect(try store.mailboxes(user: "alice@example.test").count == 6)
    }
}
