/// One message as a selected mailbox sees it.
public struct IMAPMessageInfo: Hashable, Sendable {
    public var uid: UInt32
    public var flags: [String]
    public var modseq: Int64
    public var size: Int64
    public var internalDate: Int64
    public init(uid: UInt32, flags: [String], modseq: Int64, size: Int64, internalDate: Int64) {
        self.uid = uid; self.flags = flags; self.modseq = modseq; self.size = size; self.internalDate = internalDate
    }
}

public struct IMAPMailboxInfo: Hashable, Sendable {
    public var name: String
    public var specialUse: String?
    public var subscribed: Bool
    public init(name: String, specialUse: String?, subscribed: Bool) { self.name = name; self.specialUse = specialUse; self.subscribed = subscribed }
}

public struct IMAPMailboxStatus: Hashable, Sendable {
    public var messages: Int64, unseen: Int64, uidNext: Int64, uidValidity: Int64, highestModseq: Int64, size: Int64, deleted: Int64
    public init(messages: Int64, unseen: Int64, uidNext: Int64, uidValidity: Int64, highestModseq: Int64, size: Int64, deleted: Int64) {
        self.messages = messages; self.unseen = unseen; self.uidNext = uidNext; self.uidValidity = uidValidity
        self.highestModseq = highestModseq; self.size = size; self.deleted = deleted
    }
}

/// Why a mailbox operation failed, as the client should hear it
/// (RFC 5530 response codes).
public enum IMAPBackendError: Error, Hashable, Sendable {
    case nonexistent
    case alreadyExists
    case cannot(String)
    case overQuota
    case storage
}

/// The engine's side of an IMAP session: the IMAP target never imports the
/// store (STYLE habit 11). Every call blocks and runs off the event loop.
public protocol IMAPBackend: AnyObject, Sendable {
    func mailboxes(user: String) throws -> [IMAPMailboxInfo]
    func status(user: String, mailbox: String) throws -> IMAPMailboxStatus
    func messages(user: String, mailbox: String) throws -> [IMAPMessageInfo]
    func messageBytes(user: String, mailbox: String, uid: UInt32) throws -> [UInt8]
    func setFlags(user: String, mailbox: String, uids: [UInt32], mode: IMAPStoreMode, flags: [String], unchangedSince: Int64?) throws -> [UInt32]
    func expunge(user: String, mailbox: String, uids: [UInt32]) throws
    func copy(user: String, from: String, to: String, uids: [UInt32], move: Bool) throws -> [(UInt32, UInt32)]
    func append(user: String, mailbox: String, message: [UInt8], flags: [String], internalDate: Int64?) throws -> UInt32
    func create(user: String, mailbox: String) throws
    func delete(user: String, mailbox: String) throws
    func rename(user: String, from: String, to: String) throws
    func subscribe(user: String, mailbox: String, _ on: Bool) throws
}
