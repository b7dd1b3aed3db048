/// One message as a selected mailbox sees it.
public struct IMAPMessageInfo: Hashable, Sendable {
    public var uid: UInt32
    public var flags: [String]
    public var modseq: Int64
    public var size: Int64
    public var internalDate: Int64
    /// The backend's handle on the message's content (opaque to the session).
    public var storageKey: String
    public init(uid: UInt32, flags: [String], modseq: Int64, size: Int64, internalDate: Int64, storageKey: String = "") {
        self.uid = uid; self.flags = flags; self.modseq = modseq; self.size = size; self.internalDate = internalDate
        self.storageKey = storageKey
    }
}

/// What changed in a mailbox after a MODSEQ: added messages and new flags
/// (`changed`), and expunged UIDs. `since: 0` lists every message.
public struct IMAPMailboxChanges: Sendable {
    public var uidValidity: UInt32
    public var uidNext: UInt32
    public var highestModseq: Int64
    public var changed: [IMAPMessageInfo]
    public var expunged: [UInt32]
    public init(uidValidity: UInt32, uidNext: UInt32, highestModseq: Int64, changed: [IMAPMessageInfo], expunged: [UInt32]) {
        self.uidValidity = uidValidity; self.uidNext = uidNext; self.highestModseq = highestModseq; self.changed = changed
        self.expunged = expunged
    }
}

/// A user's storage quota (RFC 9208 STORAGE), in octets; `limit` nil when unlimited.
public struct IMAPQuota: Hashable, Sendable {
    public var used: Int64
    public var limit: Int64?
    public init(used: Int64, limit: Int64?) { self.used = used; self.limit = limit }
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
    func changes(user: String, mailbox: String, since modseq: Int64) throws -> IMAPMailboxChanges
    func messageBytes(user: String, _ message: IMAPMessageInfo) throws -> [UInt8]
    func quota(user: String) throws -> IMAPQuota
    /// Renderings kept from earlier sessions, by storage key; those of
    /// another renderer `version` are not returned.
    func cachedRenderings(keys: [String], version: Int, headersOnly: Bool) throws -> [String: IMAPRenderings]
    /// Keeps renderings for later sessions; failures only cost speed.
    func saveRenderings(_ entries: [String: IMAPRenderings], version: Int)
    func setFlags(user: String, mailbox: String, uids: [UInt32], mode: IMAPStoreMode, flags: [String], unchangedSince: Int64?) throws -> [UInt32]
    func expunge(user: String, mailbox: String, uids: [UInt32]) throws
    func copy(user: String, from: String, to: String, uids: [UInt32], move: Bool) throws -> [(UInt32, UInt32)]
    func append(user: String, mailbox: String, message: [UInt8], flags: [String], internalDate: Int64?) throws -> UInt32
    func create(user: String, mailbox: String) throws
    func delete(user: String, mailbox: String) throws
    func rename(user: String, from: String, to: String) throws
    func subscribe(user: String, mailbox: String, _ on: Bool) throws
}

/// What a session can reuse of a message without reading its file: the
/// header block, and the rendered ENVELOPE and BODYSTRUCTURE.
public struct IMAPRenderings: Sendable {
    public var header: [UInt8]?
    public var envelope: [UInt8]?
    public var bodyStructure: [UInt8]?
    public init(header: [UInt8]? = nil, envelope: [UInt8]? = nil, bodyStructure: [UInt8]? = nil) {
        self.header = header; self.envelope = envelope; self.bodyStructure = bodyStructure
    }
}
