import IMAP
import MailCore
import MailStore
import NIOCore
import SMTP

/// The engine's IMAP backend: the store as IMAP sees it. Every call runs on
/// the store thread (the same single writer as deliveries).
final class IMAPMailboxes: IMAPBackend, IMAPServices, EngineSessionServices, @unchecked Sendable {
    let engine: EngineState
    let sessionID: String

    init(engine: EngineState, sessionID: String) {
        self.engine = engine
        self.sessionID = sessionID
    }

    var store: MailStore { engine.store }

    func mapError<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as MailboxError {
            switch e {
            case .noSuchMailbox: throw IMAPBackendError.nonexistent
            case .alreadyExists: throw IMAPBackendError.alreadyExists
            case .notAllowed(let why): throw IMAPBackendError.cannot(why)
            case .overQuota: throw IMAPBackendError.overQuota
            }
        } catch let e as IMAPBackendError {
            throw e
        } catch {
            engine.logger.error("imap store error: \(error)", metadata: ["session": "\(sessionID)"])
            throw IMAPBackendError.storage
        }
    }

    static func flagNames(_ bits: Int64, _ keywords: [String]) -> [String] { SystemFlags(rawValue: bits).names + keywords }

    // MARK: IMAPBackend

    func mailboxes(user: String) throws -> [IMAPMailboxInfo] {
        try mapError { try store.mailboxList(user: user).map { IMAPMailboxInfo(name: $0.name, specialUse: $0.specialUse, subscribed: $0.subscribed) } }
    }

    func status(user: String, mailbox: String) throws -> IMAPMailboxStatus {
        try mapError {
            let s = try store.status(user: user, mailbox: mailbox)
            return IMAPMailboxStatus(messages: s.messages, unseen: s.unseen, uidNext: s.uidNext, uidValidity: s.uidValidity,
                                     highestModseq: s.highestModseq, size: s.size, deleted: s.deleted)
        }
    }

    func changes(user: String, mailbox: String, since modseq: Int64) throws -> IMAPMailboxChanges {
        try mapError {
            let c = try store.changes(user: user, mailbox: mailbox, since: modseq)
            return IMAPMailboxChanges(
                uidValidity: UInt32(truncatingIfNeeded: c.uidValidity), uidNext: UInt32(truncatingIfNeeded: c.uidNext),
                highestModseq: c.highestModseq,
                changed: c.changed.map {
                    IMAPMessageInfo(uid: UInt32($0.uid), flags: IMAPMailboxes.flagNames($0.flags, $0.keywords), modseq: $0.modseq,
                                    size: $0.size, internalDate: $0.internalDate, storageKey: $0.blob)
                },
                expunged: c.expunged.map { UInt32($0) })
        }
    }

    func messageBytes(user: String, _ message: IMAPMessageInfo) throws -> [UInt8] {
        try mapError {
            do {
                return try store.readBlob(message.storageKey)
            } catch let e as FileSystemError where e.isMissing {
                // Expunged by another session since this one last looked.
                throw IMAPBackendError.nonexistent
            }
        }
    }

    func cachedRenderings(keys: [String], version: Int, headersOnly: Bool) throws -> [String: IMAPRenderings] {
        try mapError {
            try store.renderings(blobs: keys, version: Int64(version), headersOnly: headersOnly).mapValues {
                IMAPRenderings(header: $0.header, envelope: $0.envelope, bodyStructure: $0.bodyStructure)
            }
        }
    }

    func saveRenderings(_ entries: [String: IMAPRenderings], version: Int) {
        do {
            try store.saveRenderings(entries.mapValues { MessageRenderings(header: $0.header, envelope: $0.envelope, bodyStructure: $0.bodyStructure) },
                                     version: Int64(version))
        } catch {
            engine.logger.warning("imap rendering cache not saved: \(error)", metadata: ["session": "\(sessionID)"])
        }
    }

    func quota(user: String) throws -> IMAPQuota {
        guard let id = store.userID(user) else { throw IMAPBackendError.nonexistent }
        let userLimit = engine.directory.users[user.lowercased()]?.quotaBytes ?? 0
        let limit = userLimit > 0 ? userLimit : (engine.cellQuota > 0 ? engine.cellQuota : nil)
        return IMAPQuota(used: store.usage(user: id), limit: limit)
    }

    func setFlags(user: String, mailbox: String, uids: [UInt32], mode: IMAPStoreMode, flags: [String], unchangedSince: Int64?) throws -> [UInt32] {
        try mapError {
            let m: FlagMode = mode == .replace ? .replace : mode == .add ? .add : .remove
            let r = try store.setFlags(user: user, mailbox: mailbox, uids: uids.map(Int64.init), mode: m, flags: flags, unchangedSince: unchangedSince)
            if !r.changed.isEmpty { engine.notifyChanged([user]) }
            return r.failed.map { UInt32($0) }
        }
    }

    func expunge(user: String, mailbox: String, uids: [UInt32]) throws {
        try mapError {
            if !(try store.expunge(user: user, mailbox: mailbox, uids: uids.map(Int64.init))).isEmpty { engine.notifyChanged([user]) }
        }
    }

    func copy(user: String, from: String, to: String, uids: [UInt32], move: Bool) throws -> [(UInt32, UInt32)] {
        try mapError {
            let quota = engine.directory.users[user.lowercased()]?.quotaBytes ?? 0
            let pairs = try store.copy(user: user, from: from, to: to, uids: uids.map(Int64.init), move: move, quota: quota)
            engine.notifyChanged([user])
            return pairs.map { (UInt32($0.0), UInt32($0.1)) }
        }
    }

    func append(user: String, mailbox: String, message: [UInt8], flags: [String], internalDate: Int64?) throws -> UInt32 {
        try mapError {
            _ = try store.status(user: user, mailbox: mailbox)
            guard let id = store.userID(user) else { throw IMAPBackendError.nonexistent }
            let incoming = try store.newMessage()
            incoming.write(message)
            let (bits, keywords) = SystemFlags.parse(flags)
            var d = Delivery(message: incoming, recipients: [(id, mailbox)],
                             userQuotas: [id: engine.directory.users[user.lowercased()]?.quotaBytes ?? 0],
                             cellQuota: engine.cellQuota, internalDate: internalDate ?? engine.clock())
            d.flags = bits.rawValue
            d.keywords = keywords.joined(separator: " ")
            switch store.commit([d])[0] {
            case .success(let blob):
                engine.notifyChanged([user])
                return UInt32(try store.uid(ofBlob: blob, user: user, mailbox: mailbox) ?? 0)
            case .failure(.overQuota), .failure(.exceedsQuota):
                throw IMAPBackendError.overQuota
            case .failure:
                throw IMAPBackendError.storage
            }
        }
    }

    func create(user: String, mailbox: String) throws {
        try mapError { try store.createMailbox(user: user, name: mailbox, now: engine.clock()) }
    }

    func delete(user: String, mailbox: String) throws {
        try mapError { try store.deleteMailbox(user: user, name: mailbox) }
    }

    func rename(user: String, from: String, to: String) throws {
        try mapError { try store.renameMailbox(user: user, from: from, to: to, now: engine.clock()) }
    }

    func subscribe(user: String, mailbox: String, _ on: Bool) throws {
        try mapError { try store.setSubscribed(user: user, mailbox: mailbox, on) }
    }

    // MARK: IMAPServices

    func watch(user: String, _ onChange: @escaping @Sendable () -> Void) -> IMAPWatchToken {
        let key = user.lowercased()
        let id = engine.watcherCounter.add(1, ordering: .relaxed).newValue
        engine.watchers.withLock { $0[key, default: [:]][id] = onChange }
        let engine = self.engine
        return IMAPWatchToken { engine.watchers.withLock { $0[key]?[id] = nil } }
    }

    var autologoutSeconds: Int64 { 30 * 60 }

    var maxAppendBytes: Int { engine.maxMessageBytes }
}
