/// The backend's handle on a message's content, opaque to the session: two
/// integers, so that a selected mailbox's thousands of entries hold no
/// reference-counted storage (scans of a whole mailbox stay cheap).
public struct IMAPStorageKey: Hashable, Sendable {
    public var high: UInt64
    public var low: UInt64
    public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }
}

/// One message as a selected mailbox sees it.
public struct IMAPMessageInfo: Hashable, Sendable {
    public var uid: UInt32
    /// The system flags as bits (`seen`, `answered`, ...).
    public var systemFlags: UInt8
    /// Keywords, spelled as set (usually none).
    public var keywords: [String]
    public var modseq: Int64
    public var size: Int64
    public var internalDate: Int64
    public var storageKey: IMAPStorageKey

    public init(uid: UInt32, systemFlags: UInt8, keywords: [String], modseq: Int64, size: Int64, internalDate: Int64,
                storageKey: IMAPStorageKey) {
        self.uid = uid; self.systemFlags = systemFlags; self.keywords = keywords; self.modseq = modseq; self.size = size
        self.internalDate = internalDate; self.storageKey = storageKey
    }

    public static let seen: UInt8 = 1, answered: UInt8 = 2, flagged: UInt8 = 4, deleted: UInt8 = 8, draft: UInt8 = 16
    /// System flag names in the order FLAGS lists them.
    public static let systemNames: [(String, UInt8)] = [("\\Seen", seen), ("\\Answered", answered), ("\\Flagged", flagged),
                                                        ("\\Deleted", deleted), ("\\Draft", draft)]

    /// The bit of a system flag name (case-insensitive); 0 for keywords and `\Recent`.
    public static func systemBit(_ name: String) -> UInt8 {
        guard name.utf8.first == UInt8(ascii: "\\") else { return 0 }
        return systemNames.first { SearchContext.sameFlag($0.0, name) }?.1 ?? 0
    }

    /// Every flag's name: system flags, then keywords.
    public var flags: [String] { IMAPMessageInfo.systemNames.compactMap { has($0.1) ? $0.0 : nil } + keywords }

    public func has(_ bit: UInt8) -> Bool { systemFlags & bit != 0 }
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
    func cachedRenderings(keys: [IMAPStorageKey], version: Int, parts: IMAPRenderings.Parts) throws -> [IMAPStorageKey: IMAPRenderings]
    /// Keeps renderings for later sessions; failures only cost speed.
    func saveRenderings(_ entries: [IMAPStorageKey: IMAPRenderings], version: Int)
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
    /// The lines of the header block for the fields in `IMAPMessageSource.searchFields`.
    public var searchFields: [UInt8]?
    public init(header: [UInt8]? = nil, envelope: [UInt8]? = nil, bodyStructure: [UInt8]? = nil, searchFields: [UInt8]? = nil) {
        self.header = header; self.envelope = envelope; self.bodyStructure = bodyStructure; self.searchFields = searchFields
    }

    /// Which renderings a command reads.
    public enum Parts: Sendable {
        /// Header block, ENVELOPE and BODYSTRUCTURE (FETCH).
        case all
        /// The header block (SEARCH on other fields or on text).
        case header
        /// The search fields (SEARCH FROM/SUBJECT/..., SORT, THREAD).
        case searchFields
    }
}
