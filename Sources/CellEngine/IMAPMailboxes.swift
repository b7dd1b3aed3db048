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

    /// A blob id (hex digits, 20 of them from `MailStore.makeID`) as an IMAP
    /// storage key: the first 16 digits in `high`, the rest in `low` under a
    /// top byte that counts the digits. Ids that are not 1-30 hex digits get
    /// count 0, which `blob(of:)` turns into "" (refused by `readBlob`).
    static func key(ofBlob id: String) -> IMAPStorageKey {
        var high: UInt64 = 0, low: UInt64 = 0, n: UInt64 = 0
        for c in id.utf8 {
            let v: UInt64
            switch c {
            case 48...57: v = UInt64(c - 48)
            case 97...102: v = UInt64(c - 87)
            default: return IMAPStorageKey(high: 0, low: 0)
            }
            if n < 16 { high = high << 4 | v } else { low = low << 4 | v }
            n += 1
            if n > 30 { return IMAPStorageKey(high: 0, low: 0) }
        }
        return IMAPStorageKey(high: high, low: low | n << 56)
    }

    static func blob(of key: IMAPStorageKey) -> String {
        let n = Int(key.low >> 56)
        guard n > 0 else { return "" }
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: n)
        var high = key.high, low = key.low & (1 << 56 - 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            if i >= 16 { out[i] = digits[Int(low & 15)]; low >>= 4 } else { out[i] = digits[Int(high & 15)]; high >>= 4 }
        }
        return String(decoding: out, as: UTF8.self)
    }

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
                    IMAPMessageInfo(uid: UInt32($0.uid), systemFlags: UInt8(truncatingIfNeeded: $0.flags), keywords: $0.keywords,
                                    modseq: $0.modseq, size: $0.size, internalDate: $0.internalDate,
                                    storageKey: IMAPMailboxes.key(ofBlob: $0.blob))
                },
                expunged: c.expunged.map { UInt32($0) })
        }
    }

    func messageBytes(user: String, _ message: IMAPMessageInfo) throws -> [UInt8] {
        try mapError {
            do {
                return try store.readBlob(IMAPMailboxes.blob(of: message.storageKey))
            } catch let e as FileSystemError where e.isMissing {
                // Expunged by another session since this one last looked.
                throw IMAPBackendError.nonexistent
            }
        }
    }

    func cachedRenderings(keys: [IMAPStorageKey], version: Int, parts: IMAPRenderings.Parts) throws -> [IMAPStorageKey: IMAPRenderings] {
        try mapError {
            var out: [IMAPStorageKey: IMAPRenderings] = [:]
            out.reserveCapacity(keys.count)
            if case .searchFields = parts {
                // Memory first; the index for the rest, which then stays in memory.
                var missing: [IMAPStorageKey] = []
                engine.searchFields.withLock { cache in
                    for k in keys {
                        if let f = cache.entries[k] { out[k] = IMAPRenderings(searchFields: f) } else { missing.append(k) }
                    }
                }
                guard !missing.isEmpty else { return out }
                let found = try store.renderings(blobs: missing.map(IMAPMailboxes.blob(of:)), version: Int64(version), parts: .searchFields)
                engine.searchFields.withLock { cache in
                    for (blob, r) in found {
                        guard let f = r.searchFields else { continue }
                        let k = IMAPMailboxes.key(ofBlob: blob)
                        out[k] = IMAPRenderings(searchFields: f)
                        cache.insert(k, f)
                    }
                }
                return out
            }
            let wanted: MessageRenderings.Parts = switch parts {
            case .all: .all
            case .header: .header
            case .searchFields: .searchFields
            }
            for (blob, r) in try store.renderings(blobs: keys.map(IMAPMailboxes.blob(of:)), version: Int64(version), parts: wanted) {
                out[IMAPMailboxes.key(ofBlob: blob)] = IMAPRenderings(header: r.header, envelope: r.envelope, bodyStructure: r.bodyStructure,
                                                                    searchFields: r.searchFields)
            }
            return out
        }
    }

    func saveRenderings(_ entries: [IMAPStorageKey: IMAPRenderings], version: Int) {
        do {
            var byBlob: [String: MessageRenderings] = [:]
            engine.searchFields.withLock { cache in
                for (key, r) in entries { if let f = r.searchFields { cache.insert(key, f) } }
            }
            for (key, r) in entries {
                byBlob[IMAPMailboxes.blob(of: key)] = MessageRenderings(header: r.header, envelope: r.envelope, bodyStructure: r.bodyStructure,
                                                                        searchFields: r.searchFields)
            }
            try store.saveRenderings(byBlob, version: Int64(version))
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
