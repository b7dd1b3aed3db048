import MailCore

/// An IMAP session's logic (RFC 9051 with RFC 3501 clients): state, the
/// selected mailbox's view (sequence numbers ↔ UIDs, known flags), and the
/// commands. Runs one command at a time on a blocking thread; the NIO driver
/// carries out what it returns.
public final class IMAPSession: @unchecked Sendable {
    public enum Outcome: Sendable {
        /// Write these bytes.
        case respond([UInt8])
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
    }

    struct Selected {
        var name: String
        var readOnly: Bool
        var uids: [UInt32]
        var known: [UInt32: (flags: [String], modseq: Int64)]
    }

    public let backend: IMAPBackend
    public let tlsAvailable: Bool
    public private(set) var isTLS: Bool
    public private(set) var user: String?
    var selected: Selected?
    var enabled: Set<String> = []
    var condstore = false

    public init(backend: IMAPBackend, isTLS: Bool, tlsAvailable: Bool) {
        self.backend = backend
        self.isTLS = isTLS
        self.tlsAvailable = tlsAvailable
    }

    public var isSelected: Bool { selected != nil }

    public var capabilities: [String] {
        var caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE", "UNSELECT",
                    "UIDPLUS", "MOVE", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "CONDSTORE"]
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
            switch command {
            case .capability:
                w.raw("* CAPABILITY " + capabilities.joined(separator: " "))
                w.crlf()
                w.status(tag: tag, "OK", "CAPABILITY completed")
            case .noop, .check:
                if selected != nil { try updates(&w, allowExpunge: true) }
                w.status(tag: tag, "OK", "NOOP completed")
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
                for c in caps where ["CONDSTORE", "IMAP4REV2", "UTF8=ACCEPT"].contains(c) && !enabled.contains(c) {
                    enabled.insert(c)
                    now.append(c)
                    if c == "CONDSTORE" { condstore = true }
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
            case .select(let name, let cs), .examine(let name, let cs):
                try requireAuth()
                if cs { condstore = true }
                var readOnly = false
                if case .examine = command { readOnly = true }
                try select(&w, tag: tag, name: name, readOnly: readOnly)
            case .create(let name):
                try requireAuth()
                try backend.create(user: user!, mailbox: name)
                w.status(tag: tag, "OK", "CREATE completed")
            case .delete(let name):
                try requireAuth()
                try backend.delete(user: user!, mailbox: name)
                w.status(tag: tag, "OK", "DELETE completed")
            case .rename(let from, let to):
                try requireAuth()
                try backend.rename(user: user!, from: from, to: to)
                w.status(tag: tag, "OK", "RENAME completed")
            case .subscribe(let name), .unsubscribe(let name):
                try requireAuth()
                var on = true
                if case .unsubscribe = command { on = false }
                try backend.subscribe(user: user!, mailbox: name, on)
                w.status(tag: tag, "OK", "\(on ? "SUBSCRIBE" : "UNSUBSCRIBE") completed")
            case .list(let ref, let patterns, let selection, let returns):
                try requireAuth()
                try list(&w, reference: ref, patterns: patterns, selection: selection, returns: returns, lsub: false)
                w.status(tag: tag, "OK", "LIST completed")
            case .lsub(let ref, let pattern):
                try requireAuth()
                try list(&w, reference: ref, patterns: [pattern], selection: ["SUBSCRIBED"], returns: [], lsub: true)
                w.status(tag: tag, "OK", "LSUB completed")
            case .status(let name, let items):
                try requireAuth()
                try statusLine(&w, name: name, items: items)
                w.status(tag: tag, "OK", "STATUS completed")
            case .append(let name, let flags, let date, let message):
                try requireAuth()
                var appendDate: Int64?
                if let date {
                    guard let d = IMAPDate.parseDateTime(date) else { w.status(tag: tag, "BAD", "Bad date-time"); break }
                    appendDate = d
                }
                guard !message.isEmpty else { w.status(tag: tag, "NO", "Empty message"); break }
                let uid = try backend.append(user: user!, mailbox: name, message: message, flags: flags, internalDate: appendDate)
                let validity = try backend.status(user: user!, mailbox: name).uidValidity
                if selected != nil { try updates(&w, allowExpunge: false) }
                w.status(tag: tag, "OK", code: "APPENDUID \(validity) \(uid)", "APPEND completed")
            case .idle:
                try requireSelectedOrAuth()
                return .idle(tag: tag, Array("+ idling\r\n".utf8))
            case .close, .unselect:
                try requireSelected()
                if case .close = command, let s = selected, !s.readOnly {
                    let deleted = try backend.messages(user: user!, mailbox: s.name).filter { $0.flags.contains("\\Deleted") }.map(\.uid)
                    if !deleted.isEmpty { try backend.expunge(user: user!, mailbox: s.name, uids: deleted) }
                }
                selected = nil
                w.status(tag: tag, "OK", "\(command == .close ? "CLOSE" : "UNSELECT") completed")
            case .expunge, .uidExpunge:
                try requireSelected()
                guard !selected!.readOnly else { w.status(tag: tag, "NO", code: "READ-ONLY", "Mailbox is read-only"); break }
                var set: IMAPSequenceSet?
                if case .uidExpunge(let s) = command { set = s }
                let star = selected!.uids.last ?? 0
                let deleted = try backend.messages(user: user!, mailbox: selected!.name)
                    .filter { $0.flags.contains("\\Deleted") && (set?.contains($0.uid, star: star) ?? true) }.map(\.uid)
                if !deleted.isEmpty { try backend.expunge(user: user!, mailbox: selected!.name, uids: deleted) }
                try updates(&w, allowExpunge: true)
                w.status(tag: tag, "OK", "EXPUNGE completed")
            case .fetch(let set, let items, let uid, let changedSince):
                try requireSelected()
                try fetch(&w, set: set, items: items, byUID: uid, changedSince: changedSince)
                w.status(tag: tag, "OK", "FETCH completed")
            case .store(let set, let mode, let silent, let flags, let uid, let unchanged):
                try requireSelected()
                guard !selected!.readOnly else { w.status(tag: tag, "NO", code: "READ-ONLY", "Mailbox is read-only"); break }
                let failed = try store(&w, set: set, mode: mode, silent: silent, flags: flags, byUID: uid, unchangedSince: unchanged)
                if failed.isEmpty {
                    w.status(tag: tag, "OK", "STORE completed")
                } else {
                    w.status(tag: tag, "OK", code: "MODIFIED \(failed.map(String.init).joined(separator: ","))", "Conditional STORE failed for some")
                }
            case .copy(let set, let target, let uid), .move(let set, let target, let uid):
                try requireSelected()
                var isMove = false
                if case .move = command { isMove = true }
                if isMove && selected!.readOnly { w.status(tag: tag, "NO", code: "READ-ONLY", "Mailbox is read-only"); break }
                let uids = resolve(set, byUID: uid)
                guard !uids.isEmpty || uid else { w.status(tag: tag, "BAD", "No such messages"); break }
                let pairs = try backend.copy(user: user!, from: selected!.name, to: target, uids: uids, move: isMove)
                let validity = try backend.status(user: user!, mailbox: target).uidValidity
                let code = pairs.isEmpty ? nil : "COPYUID \(validity) \(pairs.map { String($0.0) }.joined(separator: ",")) \(pairs.map { String($0.1) }.joined(separator: ","))"
                if isMove {
                    // RFC 6851 §4.3: COPYUID in an untagged OK before the expunges.
                    if let code { w.status(tag: nil, "OK", code: code, "Moved") }
                    try updates(&w, allowExpunge: true)
                    w.status(tag: tag, "OK", "MOVE completed")
                } else {
                    w.status(tag: tag, "OK", code: code, "COPY completed")
                }
            case .search(let key, let uid, _, _):
                try requireSelected()
                let found = try search(key)
                w.raw("* SEARCH")
                for (seq, u) in found { w.raw(" \(uid ? u : seq)") }
                w.crlf()
                w.status(tag: tag, "OK", "SEARCH completed")
            }
        } catch let e as SessionError {
            w.status(tag: tag, e.kind, code: e.code, e.text)
        } catch let e as IMAPBackendError {
            switch e {
            case .nonexistent: w.status(tag: tag, "NO", code: "NONEXISTENT", "No such mailbox")
            case .alreadyExists: w.status(tag: tag, "NO", code: "ALREADYEXISTS", "Mailbox already exists")
            case .cannot(let why): w.status(tag: tag, "NO", code: "CANNOT", why)
            case .overQuota: w.status(tag: tag, "NO", code: "OVERQUOTA", "Quota exceeded")
            case .storage: w.status(tag: tag, "NO", code: "SERVERBUG", "Storage error, try again")
            }
        } catch {
            w.status(tag: tag, "NO", code: "SERVERBUG", "Internal error")
        }
        return .respond(w.bytes)
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
    func requireSelectedOrAuth() throws { try requireAuth() }

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
}

