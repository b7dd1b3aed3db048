import MailCore
import MailStore
import NIOCore
import POP3

/// The engine's POP3 backend: a user's INBOX, on the store thread.
final class POP3Maildrop: POP3Backend, POP3Services, EngineSessionServices, @unchecked Sendable {
    let engine: EngineState
    let sessionID: String

    init(engine: EngineState, sessionID: String) {
        self.engine = engine
        self.sessionID = sessionID
    }

    func inbox(user: String) throws -> (uidValidity: Int64, messages: [POP3Message]) {
        let status = try engine.store.status(user: user, mailbox: "INBOX")
        let messages = try engine.store.messages(user: user, mailbox: "INBOX").map { POP3Message(uid: UInt32($0.uid), size: $0.size) }
        return (status.uidValidity, messages)
    }

    func bytes(user: String, uid: UInt32) throws -> [UInt8] {
        guard let m = try engine.store.message(user: user, mailbox: "INBOX", uid: Int64(uid)) else { throw MailboxError.noSuchMailbox }
        return try DurableFile.readAll(m.path)
    }

    func delete(user: String, uids: [UInt32]) throws {
        try engine.store.expunge(user: user, mailbox: "INBOX", uids: uids.map(Int64.init))
        engine.notifyChanged([user])
    }

    func lock(user: String) -> Bool { engine.pop3Locks.withLock { $0.insert(user.lowercased()).inserted } }
    func unlock(user: String) { _ = engine.pop3Locks.withLock { $0.remove(user.lowercased()) } }
}
