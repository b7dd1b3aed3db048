import MailCore

/// An IMAP session's logic (RFC 9051 with RFC 3501 clients): state, the
/// selected mailbox's view (sequence numbers ↔ UIDs, known flags), and the
/// commands. Runs one command at a time on a blocking thread; the NIO driver
/// carries out what it returns.
public final class IMAPSession: @unchecked Sendable {
    public enum Outcome: Sendable {
        /// Write these bytes.
        case respond([UInt8])
        /// Write these bytes, wait until they have drained, then run `next`
        /// (off the event loop) for the rest of the response.
        case partial([UInt8], next: @Sendable () -> Outcome)
        /// Write these bytes (the OK to STARTTLS), then start TLS.
        case startTLS([UInt8])
        /// Check credentials; then call `authenticated(tag:user:)` or `authenticationFailed(tag:temporary:)`.
        case authenticate(tag: String, user: String, password: String)
        /// Write these bytes (a SASL continuation) and give the next line to `saslResponse`.
        case saslContinuation(tag: String, [UInt8])
        /// Write the continuation and wait for DONE (RFC 2177).
        case idle(tag: String, [UInt8])
        /// Write the BYE and tagged OK, then close.
        case logout([UInt8])
        /// Write the OK to COMPRESS, then deflate both ways (RFC 4978).
        case compress([UInt8])
    }

    /// The selected mailbox as this session sees it.
    struct Selected {
        var name: String
        var readOnly: Bool
        var uidValidity: UInt32
        /// The client's view: sequence number - 1 → UID, ascending.
        var uids: [UInt32] = []
        /// The store's latest state of every message still there.
        var current = IMAPMessageTable()
        /// The MODSEQ of the flags the client last heard, for each UID in view.
        var reported: [UInt32: Int64] = [:]
        /// In view but expunged from the store: reported when expunges may be.
        var gone: Set<UInt32> = []
        /// In view, changed since the client last heard.
        var dirty: Set<UInt32> = []
        /// Delivered or copied in, not yet announced.
        var arrived: [UInt32] = []
        /// The store's state has been read up to this MODSEQ.
        var modseq: Int64

        init(name: String, readOnly: Bool, uidValidity: UInt32, modseq: Int64) {
            self.name = name; self.readOnly = readOnly; self.uidValidity = uidValidity; self.modseq = modseq
        }

        /// Index in `uids` of the first UID >= `uid`.
        func lowerBound(_ uid: UInt32) -> Int { uids.lowerBound(uid) }

        /// Sequence number - 1 of a UID in view.
        func sequence(of uid: UInt32) -> Int? { uids.position(of: uid) }

        /// Sequence number - 1 of the first message without \Seen, for a
        /// view whose `current` and `uids` agree (just made by SELECT). One
        /// pass over `current`, no lookups by UID.
        func firstUnseen() -> Int? {
            guard let m = current.first(where: { !$0.has(IMAPMessageInfo.seen) }) else { return nil }
            return sequence(of: m.uid)
        }

        /// The UIDs among `candidates` whose message has the system flag `bit`
        /// (`has: true`) or lacks it; expunged ones are left out.
        func uids(_ candidates: [UInt32], flag bit: UInt8, has: Bool) -> [UInt32] {
            var cursor = 0
            return candidates.filter { uid in current.next(uid, cursor: &cursor).map { $0.has(bit) == has } ?? false }
        }
    }

    public let backend: IMAPBackend
    public let tlsAvailable: Bool
    public private(set) var isTLS: Bool
    public private(set) var user: String?
    var selected: Selected?
    var enabled: Set<String> = []
    var condstore = false
    /// RFC 7162 §3.2.3: enabled QRESYNC (which implies CONDSTORE).
    var qresync = false
    /// The last mailbox selected before this one (or before UNSELECT/CLOSE):
    /// selecting it again brings it up to date instead of reading it whole.
    var parked: Selected?
    /// COMPRESS=DEFLATE is on (RFC 4978).
    public private(set) var compressed = false
    /// The result of the last SEARCH RETURN (SAVE), as UIDs (RFC 5182).
    var savedUIDs: [UInt32] = []

    public init(backend: IMAPBackend, isTLS: Bool, tlsAvailable: Bool) {
        self.backend = backend
        self.isTLS = isTLS
        self.tlsAvailable = tlsAvailable
    }

    public var isSelected: Bool { selected != nil }

    public var capabilities: [String] {
        var caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE", "UNSELECT",
                    "UIDPLUS", "MOVE", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "CONDSTORE", "QRESYNC", "ESEARCH",
                    "SEARCHRES", "SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "QUOTA",
                    "QUOTA=RES-STORAGE", "STATUS=SIZE", "BINARY", "UTF8=ACCEPT", "COMPRESS=DEFLATE"]
        if user == nil {
            if !isTLS && tlsAvailable { caps.append("STARTTLS") }
            if isTLS { caps.append("AUTH=PLAIN") } else { caps.append("LOGINDISABLED") }
        }
        return caps
    }

    public func greeting() -> [UInt8] {
        var w = IMAPWriter()
        w.status(tag: nil, "OK", code: "CAPABILITY " + capabilities.joined(separator: " "), "Postcell IMAP ready")
        return w.bytes
    }

    public func tlsEstablished() { isTLS = true }

    /// Untagged updates for the selected mailbox while idling (RFC 2177).
    public func idleUpdates() -> [UInt8] {
        var w = IMAPWriter()
        try? updates(&w, allowExpunge: true)
        return w.bytes
    }

    /// Executes one parsed command. Blocking.
    public func execute(tag: String, _ command: IMAPCommand) -> Outcome {
        var w = IMAPWriter()
        do {
            if selected != nil && command.reportsUpdatesFirst {
                // What other sessions and deliveries did, before this command's own responses.
                try updates(&w, allowExpunge: false)
            }
            if selected != nil, let set = command.messageSequenceSet {
                // RFC 9051 §9: a sequence number beyond the mailbox's is an error (UIDs are not).
                let count = UInt32(selected!.uids.count)
                for r in set.ranges where r.0 != .star && r.1 != .star { // `n:*` is lenient, as clients send 1:* to empty mailboxes
                    for bound in [r.0, r.1] {
                        if case .number(let n) = bound, n > count { throw SessionError(text: "Invalid message sequence number \(n)") }
                    }
                }
            }
            switch command {
            case .capability:
                w.raw("* CAPABILITY " + capabilities.joined(separator: " "))
                w.crlf()
                w.status(tag: tag, "OK", "CAPABILITY completed")
            case .noop, .check:
                if selected != nil { try updates(&w, allowExpunge: true) }
                w.status(tag: tag, "OK", command == .check ? "CHECK completed" : "NOOP completed")
            case .logout:
                w.status(tag: nil, "BYE", "Postcell logging out")
                w.status(tag: tag, "OK", "LOGOUT completed")
                return .logout(w.bytes)
            case .startTLS:
                guard !isTLS, tlsAvailable else { w.status(tag: tag, "BAD", "TLS already active or unavailable"); break }
                guard user == nil else { w.status(tag: tag, "BAD", "Already authenticated"); break }
                w.status(tag: tag, "OK", "Begin TLS negotiation now")
                return .startTLS(w.bytes)
            case .login(let u, let p):
                guard user == nil else { w.status(tag: tag, "BAD", "Already authenticated"); break }
                // RFC 9051 §6.2.3: LOGIN only once the connection is private.
                guard isTLS else { w.status(tag: tag, "NO", code: "PRIVACYREQUIRED", "LOGIN only after STARTTLS"); break }
                return .authenticate(tag: tag, user: u, password: p)
            case .authenticate(let mech, let initial):
                guard user == nil else { w.status(tag: tag, "BAD", "Already authenticated"); break }
                guard mech == "PLAIN" else { w.status(tag: tag, "NO", code: "CANNOT", "Unsupported mechanism"); break }
                guard isTLS else { w.status(tag: tag, "NO", code: "PRIVACYREQUIRED", "Authentication only after STARTTLS"); break }
                guard let initial else { return .saslContinuation(tag: tag, Array("+ \r\n".utf8)) }
                return saslResponse(tag: tag, Array(initial.utf8))
            case .enable(let caps):
                try requireAuth()
                var now: [String] = []
                for c in caps where ["CONDSTORE", "QRESYNC", "IMAP4REV2", "UTF8=ACCEPT"].contains(c) && !enabled.contains(c) {
                    enabled.insert(c)
                    now.append(c)
                    if c == "CONDSTORE" || c == "QRESYNC" { condstore = true }
                    if c == "QRESYNC" { qresync = true }
                }
                w.raw("* ENABLED" + now.map { " " + $0 }.joined())
                w.crlf()
                w.status(tag: tag, "OK", "ENABLE completed")
            case .id:
                w.raw("* ID (\"name\" \"Postcell\")")
                w.crlf()
                w.status(tag: tag, "OK", "ID completed")
            case .namespace:
                try requireAuth()
                w.raw("* NAMESPACE ((\"\" \"/\")) NIL NIL")
                w.crlf()
                w.status(tag: tag, "OK", "NAMESPACE completed")
            case .select(let raw, let cs, let q), .examine(let raw, let cs, let q):
                try requireAuth()
                if q != nil && !qresync { throw SessionError(text: "QRESYNC parameter without ENABLE QRESYNC") }
                if cs { condstore = true }
                var readOnly = false
                if case .examine = command { readOnly = true }
                try select(&w, tag: tag, name: try boxName(raw), readOnly: readOnly, qresync: q)
            case .create(let raw):
                try requireAuth()
                var name = try boxName(raw)
                if name.hasSuffix("/") { name.removeLast() } // RFC 9051 §6.3.4: a trailing delimiter is allowed
                try checkNewName(name)
                try backend.create(user: user!, mailbox: name)
                w.status(tag: tag, "OK", "CREATE completed")
            case .delete(let raw):
                try requireAuth()
                try backend.delete(user: user!, mailbox: try boxName(raw))
                w.status(tag: tag, "OK", "DELETE completed")
            case .rename(let from, let to):
                try requireAuth()
                let target = try boxName(to)
                try checkNewName(target)
                try backend.rename(user: user!, from: try boxName(from), to: target)
                w.status(tag: tag, "OK", "RENAME completed")
            case .subscribe(let raw), .unsubscribe(let raw):
                try requireAuth()
                var on = true
                if case .unsubscribe = command { on = false }
                try backend.subscribe(user: user!, mailbox: try boxName(raw), on)
                w.status(tag: tag, "OK", "\(on ? "SUBSCRIBE" : "UNSUBSCRIBE") completed")
            case .list(let ref, let patterns, let selection, let returns):
                try requireAuth()
                try list(&w, reference: ref, patterns: patterns, selection: selection, returns: returns, lsub: false)
                w.status(tag: tag, "OK", "LIST completed")
            case .lsub(let ref, let pattern):
                try requireAuth()
                try list(&w, reference: ref, patterns: [pattern], selection: ["SUBSCRIBED"], returns: [], lsub: true)
                w.status(tag: tag, "OK", "LSUB completed")
            case .status(let raw, let items):
                try requireAuth()
                try statusLine(&w, name: try boxName(raw), items: items)
                w.status(tag: tag, "OK", "STATUS completed")
            case .append(let raw, let flags, let date, let message, _, _):
                try requireAuth()
                let name = try boxName(raw)
                var appendDate: Int64?
                if let date {
                    guard let d = IMAPDate.parseDateTime(date) else { w.status(tag: tag, "BAD", "Bad date-time"); break }
                    appendDate = d
                }
                guard !message.isEmpty else { w.status(tag: tag, "NO", "Empty message"); break }
                // Binary content (literal8, RFC 3516) is stored as sent; BODY[] hides its NULs.
                let uid = try backend.append(user: user!, mailbox: name, message: message, flags: flags, internalDate: appendDate)
                let validity = try uidValidity(of: name)
                if selected != nil { try updates(&w, allowExpunge: false) }
                w.status(tag: tag, "OK", code: "APPENDUID \(validity) \(uid)", "APPEND completed")
            case .idle:
                try requireAuth()
                return .idle(tag: tag, Array("+ idling\r\n".utf8))
            case .close, .unselect:
                try requireSelected()
                if case .close = command, let s = selected, !s.readOnly {
                    try refresh()
                    let deleted = selected!.uids(selected!.uids, flag: IMAPMessageInfo.deleted, has: true)
                    if !deleted.isEmpty { try backend.expunge(user: user!, mailbox: s.name, uids: deleted) }
                }
                parked = selected
                selected = nil
                savedUIDs = []
                w.status(tag: tag, "OK", "\(command == .close ? "CLOSE" : "UNSELECT") completed")
            case .expunge, .uidExpunge:
                try requireSelected()
                guard !selected!.readOnly else { w.status(tag: tag, "NO", code: "READ-ONLY", "Mailbox is read-only"); break }
                try refresh()
                var candidates = selected!.uids
                if case .uidExpunge(let set) = command { candidates = resolve(set, byUID: true) }
                let deleted = selected!.uids(candidates, flag: IMAPMessageInfo.deleted, has: true)
                if !deleted.isEmpty { try backend.expunge(user: user!, mailbox: selected!.name, uids: deleted) }
                try updates(&w, allowExpunge: true)
                w.status(tag: tag, "OK", "EXPUNGE completed")
            case .fetch(let set, let items, let uid, let changedSince, let vanished):
                try requireSelected()
                if vanished {
                    guard qresync else { throw SessionError(text: "VANISHED without ENABLE QRESYNC") }
                    try resynchronise(&w, since: changedSince ?? 0, within: set, fetch: false)
                }
                let plan = try fetchPlan(set: set, items: items, byUID: uid, changedSince: changedSince)
                return fetchChunk(w, tag: tag, plan: plan, from: 0)
            case .store(let set, let mode, let silent, let flags, let uid, let unchanged):
                try requireSelected()
                guard !selected!.readOnly else { w.status(tag: tag, "NO", code: "READ-ONLY", "Mailbox is read-only"); break }
                let failed = try store(&w, set: set, mode: mode, silent: silent, flags: flags, byUID: uid, unchangedSince: unchanged)
                if failed.isEmpty {
                    w.status(tag: tag, "OK", "STORE completed")
                } else {
                    w.status(tag: tag, "OK", code: "MODIFIED \(IMAPSession.uidSet(failed.sorted()))", "Conditional STORE failed for some")
                }
            case .copy(let set, let raw, let uid), .move(let set, let raw, let uid):
                try requireSelected()
                let target = try boxName(raw)
                var isMove = false
                if case .move = command { isMove = true }
                if isMove && selected!.readOnly { w.status(tag: tag, "NO", code: "READ-ONLY", "Mailbox is read-only"); break }
                let uids = resolve(set, byUID: uid)
                guard !uids.isEmpty || uid else { w.status(tag: tag, "BAD", "No such messages"); break }
                let pairs = try backend.copy(user: user!, from: selected!.name, to: target, uids: uids, move: isMove)
                let validity = try uidValidity(of: target)
                let code = pairs.isEmpty ? nil : "COPYUID \(validity) \(pairs.map { String($0.0) }.joined(separator: ",")) \(pairs.map { String($0.1) }.joined(separator: ","))"
                if isMove {
                    // RFC 6851 §4.3: COPYUID in an untagged OK before the expunges.
                    if let code { w.status(tag: nil, "OK", code: code, "Moved") }
                    try updates(&w, allowExpunge: true)
                    w.status(tag: tag, "OK", "MOVE completed")
                } else {
                    if target == selected!.name { try updates(&w, allowExpunge: false) }
                    w.status(tag: tag, "OK", code: code, "COPY completed")
                }
            case .search(let key, let uid, let returns, let charset):
                try requireSelected()
                try checkCharset(charset)
                let found = try search(key)
                searchResponse(&w, tag: tag, found: found, key: key, byUID: uid, returns: returns)
                w.status(tag: tag, "OK", "SEARCH completed")
            case .sort(let criteria, let charset, let key, let uid):
                try requireSelected()
                try checkCharset(charset)
                let ordered = try sort(criteria, key)
                w.raw("* SORT")
                for (seq, u) in ordered { w.raw(" \(uid ? u : seq)") }
                w.crlf()
                w.status(tag: tag, "OK", "SORT completed")
            case .thread(let algorithm, let charset, let key, let uid):
                try requireSelected()
                try checkCharset(charset)
                w.raw("* THREAD " + (try thread(algorithm, key, byUID: uid)))
                w.crlf()
                w.status(tag: tag, "OK", "THREAD completed")
            case .getQuotaRoot(let raw):
                try requireAuth()
                let name = try boxName(raw)
                _ = try uidValidity(of: name) // NONEXISTENT for a missing mailbox
                let q = try backend.quota(user: user!)
                w.raw("* QUOTAROOT "); mailboxName(&w, name)
                if q.limit != nil { w.raw(" \"\"") }
                w.crlf()
                if let limit = q.limit { quotaLine(&w, used: q.used, limit: limit) }
                w.status(tag: tag, "OK", "GETQUOTAROOT completed")
            case .getQuota(let root):
                try requireAuth()
                let q = try backend.quota(user: user!)
                guard root.isEmpty, let limit = q.limit else { throw SessionError(kind: "NO", code: "NONEXISTENT", text: "No such quota root") }
                quotaLine(&w, used: q.used, limit: limit)
                w.status(tag: tag, "OK", "GETQUOTA completed")
            case .setQuota:
                try requireAuth()
                w.status(tag: tag, "NO", code: "NOPERM", "Quotas are set with the mail plan")
            case .compress(let mechanism):
                try requireAuth()
                guard mechanism == "DEFLATE" else { throw SessionError(text: "Unknown compression mechanism") }
                guard !compressed else { throw SessionError(kind: "NO", code: "COMPRESSIONACTIVE", text: "Already compressing") }
                compressed = true
                w.status(tag: tag, "OK", "DEFLATE active")
                return .compress(w.bytes)
            }
        } catch {
            w.raw(failure(error, tag: tag))
        }
        return .respond(w.bytes)
    }

    /// The tagged reply for a command that failed.
    func failure(_ error: Error, tag: String) -> [UInt8] {
        var w = IMAPWriter()
        switch error {
        case let e as SessionError:
            w.status(tag: tag, e.kind, code: e.code, e.text)
        case let e as IMAPBackendError:
            switch e {
            case .nonexistent: w.status(tag: tag, "NO", code: "NONEXISTENT", "No such mailbox")
            case .alreadyExists: w.status(tag: tag, "NO", code: "ALREADYEXISTS", "Mailbox already exists")
            case .cannot(let why): w.status(tag: tag, "NO", code: "CANNOT", why)
            case .overQuota: w.status(tag: tag, "NO", code: "OVERQUOTA", "Quota exceeded")
            case .storage: w.status(tag: tag, "NO", code: "SERVERBUG", "Storage error, try again")
            }
        default:
            w.status(tag: tag, "NO", code: "SERVERBUG", "Internal error")
        }
        return w.bytes
    }

    struct SessionError: Error {
        var kind = "BAD"
        var code: String?
        var text: String
    }

    func requireAuth() throws {
        guard user != nil else { throw SessionError(text: "Not authenticated") }
    }
    func requireSelected() throws {
        try requireAuth()
        guard selected != nil else { throw SessionError(text: "No mailbox selected") }
    }

    /// A mailbox's UIDVALIDITY (for APPENDUID/COPYUID) without counting its messages.
    func uidValidity(of mailbox: String) throws -> UInt32 {
        try backend.changes(user: user!, mailbox: mailbox, since: .max).uidValidity
    }

    /// SEARCH/SORT/THREAD charsets: UTF-8 and its subset US-ASCII (RFC 9051 §6.4.4).
    func checkCharset(_ charset: String?) throws {
        guard let c = charset?.uppercased(), c != "UTF-8", c != "US-ASCII" else { return }
        throw SessionError(kind: "NO", code: "BADCHARSET (UTF-8 US-ASCII)", text: "Unsupported charset")
    }

    /// `* QUOTA "" (STORAGE used limit)`, in KiB (RFC 9208 §5.1).
    func quotaLine(_ w: inout IMAPWriter, used: Int64, limit: Int64) {
        w.raw("* QUOTA \"\" (STORAGE \((used + 1023) / 1024) \(limit / 1024))")
        w.crlf()
    }

    // MARK: Authentication

    /// RFC 4616 PLAIN response (base64) to AUTHENTICATE.
    public func saslResponse(tag: String, _ line: [UInt8]) -> Outcome {
        var w = IMAPWriter()
        if line == [UInt8(ascii: "*")] { w.status(tag: tag, "BAD", "Authentication cancelled"); return .respond(w.bytes) }
        guard let decoded = line == [UInt8(ascii: "=")] ? [] : Base64.decode(line) else { w.status(tag: tag, "BAD", "Bad base64"); return .respond(w.bytes) }
        let parts = decoded.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[1].isEmpty else { w.status(tag: tag, "BAD", "Malformed PLAIN response"); return .respond(w.bytes) }
        let authz = String(decoding: parts[0], as: UTF8.self), authc = String(decoding: parts[1], as: UTF8.self)
        if !authz.isEmpty && authz.lowercased() != authc.lowercased() {
            w.status(tag: tag, "NO", code: "AUTHORIZATIONFAILED", "Cannot act as another user")
            return .respond(w.bytes)
        }
        return .authenticate(tag: tag, user: authc, password: String(decoding: parts[2], as: UTF8.self))
    }

    public func authenticated(tag: String, user: String) -> [UInt8] {
        self.user = user
        var w = IMAPWriter()
        w.status(tag: tag, "OK", code: "CAPABILITY " + capabilities.joined(separator: " "), "Logged in")
        return w.bytes
    }

    public func authenticationFailed(tag: String, temporary: Bool) -> [UInt8] {
        var w = IMAPWriter()
        if temporary { w.status(tag: tag, "NO", code: "UNAVAILABLE", "Temporary authentication failure") } else {
            w.status(tag: tag, "NO", code: "AUTHENTICATIONFAILED", "Authentication failed")
        }
        return w.bytes
    }

    /// The credentials were right but logins are suspended: RFC 5530 §3
    /// UNAVAILABLE ("the server is unable to log in right now").
    ///
    ///     C: a1 LOGIN alice secret
    ///     S: a1 NO [UNAVAILABLE] account suspended
    public func accountSuspended(tag: String) -> [UInt8] {
        var w = IMAPWriter()
        w.status(tag: tag, "NO", code: "UNAVAILABLE", "account suspended")
        return w.bytes
    }
}


// MARK: Quick commands

extension IMAPSession {
    /// The most messages a quick command may name, and the most octets of
    /// their content it may read.
    static let quickMessages = 32, quickBytes = 1 << 20

    /// Whether a command only reads, and little: a few index rows, a few
    /// messages, or a pass over the selected view without content. The
    /// server may then run it on its event loop while the store thread is
    /// idle, saving the two thread hand-offs that are most of a short
    /// command's latency. Nothing that writes (no fsync on the event loop:
    /// STORE, FETCH that sets \Seen), counts a whole mailbox (STATUS),
    /// loads a mailbox not seen before or reads many messages is quick.
    /// Asked on the event loop between commands (the session is idle then).
    public func isQuick(_ command: IMAPCommand) -> Bool {
        switch command {
        case .capability, .noop, .check, .id, .enable, .namespace, .unselect, .getQuota, .getQuotaRoot:
            return true
        case .select(let name, _, _), .examine(let name, _, _):
            // The same mailbox again reads only what changed since.
            return selected?.name == name || (selected == nil && parked?.name == name)
        case .fetch(let set, let items, let uid, _, _):
            guard !items.contains(where: \.setsSeen) else { return false }
            return quick(set, byUID: uid, readsContent: items.contains { !$0.isViewData })
        case .search(let key, _, _, _):
            return !key.needsContent
        default:
            return false
        }
    }

    /// Whether a set names at most `quickMessages` messages of the selected
    /// view, holding at most `quickBytes` when their content is read.
    func quick(_ set: IMAPSequenceSet, byUID: Bool, readsContent: Bool) -> Bool {
        guard let s = selected else { return true }  // answered with an error
        let ranges: [Range<Int>]
        if set.isSavedResult {
            guard savedUIDs.count <= IMAPSession.quickMessages else { return false }
            ranges = savedUIDs.compactMap { s.sequence(of: $0).map { $0..<$0 + 1 } }
        } else {
            guard let r = IMAPSession.positions(set, byUID: byUID, in: s.uids, limit: IMAPSession.quickMessages) else { return false }
            ranges = r
        }
        guard readsContent else { return true }
        var bytes: Int64 = 0
        for r in ranges {
            for i in r { bytes += s.current[s.uids[i]]?.size ?? 0 }
        }
        return bytes <= Int64(IMAPSession.quickBytes)
    }
}

extension IMAPFetchItem {
    /// Items that set \Seen (RFC 9051 §6.4.5): body sections without PEEK.
    var setsSeen: Bool {
        switch self {
        case .bodySection(_, _, let peek), .binary(_, _, let peek): return !peek
        case .rfc822, .rfc822Text: return true
        default: return false
        }
    }

    /// Items answered from the selected view alone, without the message.
    var isViewData: Bool {
        switch self {
        case .uid, .flags, .internalDate, .rfc822Size, .modseq: return true
        default: return false
        }
    }
}


extension IMAPCommand {
    /// The sequence set of a command that names messages by sequence number.
    var messageSequenceSet: IMAPSequenceSet? {
        switch self {
        case .fetch(let set, _, false, _, _), .store(let set, _, _, _, false, _), .copy(let set, _, false), .move(let set, _, false):
            return set.isSavedResult ? nil : set
        default: return nil
        }
    }

    /// Commands before which the session reports other sessions' changes
    /// (new messages and flags; expunges wait for commands that allow them).
    var reportsUpdatesFirst: Bool {
        switch self {
        case .fetch, .store, .search, .sort, .thread, .copy, .move, .status: return true
        default: return false
        }
    }
}
