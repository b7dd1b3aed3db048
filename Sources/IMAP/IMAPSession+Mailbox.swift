extension IMAPSession {
    /// RFC 9051 §6.3.2: SELECT/EXAMINE responses, with RFC 7162 §3.2.5
    /// resynchronisation when the client gives QRESYNC parameters.
    func select(_ w: inout IMAPWriter, tag: String, name: String, readOnly: Bool, qresync: IMAPQResync?) throws {
        if selected != nil {
            // RFC 9051 §6.3.2 / RFC 7162 §3.2.11: the previous mailbox is closed first.
            parked = selected
            selected = nil
            w.status(tag: nil, "OK", code: "CLOSED", "Previous mailbox closed")
        }
        savedUIDs = []
        var s: Selected
        var uidNext: UInt32
        if var view = parked, view.name == name, let ch = try? backend.changes(user: user!, mailbox: name, since: view.modseq),
           ch.uidValidity == view.uidValidity {
            // The same mailbox again: only what changed since is read.
            let unchanged = ch.changed.isEmpty && ch.expunged.isEmpty && view.gone.isEmpty && view.dirty.isEmpty && view.arrived.isEmpty
            if !unchanged {
                view.current.apply(changed: ch.changed, expunged: ch.expunged)
                view.uids = view.current.uids
                view.reported = [:]
                view.reported.reserveCapacity(view.uids.count)
                for m in view.current { view.reported[m.uid] = m.modseq }
                view.gone = []; view.dirty = []; view.arrived = []
            }
            view.modseq = max(view.modseq, ch.highestModseq)
            view.readOnly = readOnly
            s = view
            uidNext = ch.uidNext
        } else {
            let all = try backend.changes(user: user!, mailbox: name, since: 0)
            s = Selected(name: name, readOnly: readOnly, uidValidity: all.uidValidity, modseq: all.highestModseq)
            s.current = IMAPMessageTable(all.changed)
            s.uids = s.current.uids
            s.reported.reserveCapacity(s.uids.count)
            for m in s.current { s.reported[m.uid] = m.modseq }
            uidNext = all.uidNext
        }
        parked = nil
        selected = s
        w.raw("* \(s.uids.count) EXISTS"); w.crlf()
        w.raw("* 0 RECENT"); w.crlf()  // RFC 3501 clients expect it; rev2 has no \Recent
        w.raw("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"); w.crlf()
        w.status(tag: nil, "OK", code: "PERMANENTFLAGS (\(readOnly ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*"))", "Flags permitted")
        if let firstUnseen = s.firstUnseen() {
            w.status(tag: nil, "OK", code: "UNSEEN \(firstUnseen + 1)", "First unseen")
        }
        w.status(tag: nil, "OK", code: "UIDVALIDITY \(s.uidValidity)", "UIDs valid")
        w.status(tag: nil, "OK", code: "UIDNEXT \(uidNext)", "Predicted next UID")
        if condstore { w.status(tag: nil, "OK", code: "HIGHESTMODSEQ \(s.modseq)", "Highest") }
        if enabled.contains("IMAP4REV2") {
            // RFC 9051 §6.3.2: the mailbox's LIST response, attributes included.
            let hasChildren = try backend.mailboxes(user: user!).contains { $0.name.hasPrefix(name + "/") }
            w.raw("* LIST (\(hasChildren ? "\\HasChildren" : "\\HasNoChildren")) \"/\" "); mailboxName(&w, name); w.crlf()
        }
        if let q = qresync, q.uidValidity == s.uidValidity {
            try resynchronise(&w, since: q.modseq, within: q.knownUIDs)
        }
        w.status(tag: tag, "OK", code: readOnly ? "READ-ONLY" : "READ-WRITE", "\(readOnly ? "EXAMINE" : "SELECT") completed")
    }

    /// RFC 7162 §3.2.5.2 and §3.2.6: `VANISHED (EARLIER)` for UIDs expunged
    /// after `since`, then FETCH (UID FLAGS MODSEQ) for messages changed
    /// after it; both limited to `within` when the client names its UIDs.
    func resynchronise(_ w: inout IMAPWriter, since: Int64, within: IMAPSequenceSet?, fetch: Bool = true) throws {
        let s = selected!
        let ch = try backend.changes(user: user!, mailbox: s.name, since: since)
        let star = s.uids.last ?? 0
        let vanished = ch.expunged.filter { within?.contains($0, star: star) ?? true }
        if !vanished.isEmpty {
            w.raw("* VANISHED (EARLIER) " + IMAPSession.uidSet(vanished)); w.crlf()
        }
        guard fetch else { return }
        for m in ch.changed where within?.contains(m.uid, star: star) ?? true {
            guard let seq = s.sequence(of: m.uid), let cur = s.current[m.uid] else { continue }
            w.raw("* \(seq + 1) FETCH (UID \(m.uid) FLAGS "); w.flags(of: cur); w.raw(" MODSEQ (\(cur.modseq)))"); w.crlf()
        }
    }

    /// A sorted list of UIDs as a compact sequence set: `1:3,7,9:10`.
    static func uidSet(_ uids: [UInt32]) -> String {
        var out: [String] = []
        var i = 0
        while i < uids.count {
            var j = i
            while j + 1 < uids.count && uids[j + 1] == uids[j] + 1 { j += 1 }
            out.append(i == j ? "\(uids[i])" : "\(uids[i]):\(uids[j])")
            i = j + 1
        }
        return out.joined(separator: ",")
    }

    /// Mailbox names: UTF-8 for IMAP4rev2/UTF8=ACCEPT clients, modified UTF-7 otherwise.
    func mailboxName(_ w: inout IMAPWriter, _ name: String) {
        w.astring(utf8Names ? name : ModifiedUTF7.encode(name))
    }

    var utf8Names: Bool { enabled.contains("IMAP4REV2") || enabled.contains("UTF8=ACCEPT") }

    /// A mailbox name as the client sent it, in the store's form (UTF-8):
    /// modified UTF-7 is decoded for clients that have not enabled UTF-8.
    func boxName(_ raw: String) throws -> String {
        if raw == "INBOX" || utf8Names { return raw }
        guard let decoded = ModifiedUTF7.decode(raw) else { throw SessionError(text: "Mailbox name is not valid modified UTF-7") }
        return decoded.uppercased() == "INBOX" ? "INBOX" : decoded
    }

    /// A name a new mailbox may have: no control characters or wildcards,
    /// no empty hierarchy levels, bounded length.
    func checkNewName(_ name: String) throws {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, name.utf8.count <= 512, parts.count <= 16, !parts.contains(where: \.isEmpty),
              !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "*" || $0 == "%" }) else {
            throw SessionError(kind: "NO", code: "CANNOT", text: "Invalid mailbox name")
        }
    }

    /// Brings the session's copy of the selected mailbox up to date with the
    /// store (one indexed query when nothing changed). Nothing is told to the
    /// client here; `updates` does that.
    func refresh() throws {
        guard var s = selected else { return }
        let ch = try backend.changes(user: user!, mailbox: s.name, since: s.modseq)
        // A mailbox deleted and created again by another session is another mailbox.
        guard ch.uidValidity == s.uidValidity else { throw IMAPBackendError.nonexistent }
        if ch.changed.isEmpty && ch.expunged.isEmpty && ch.highestModseq <= s.modseq { return }
        selected = nil // `s` is the only owner of the view's storage while it changes: no copy
        let last = s.uids.last ?? 0
        for m in ch.changed {
            if m.uid > last && !s.current.contains(m.uid) { s.arrived.append(m.uid) }
            if s.reported[m.uid] != nil { s.dirty.insert(m.uid) }
        }
        s.current.apply(changed: ch.changed, expunged: ch.expunged)
        for u in ch.expunged {
            s.dirty.remove(u)
            if s.reported[u] != nil { s.gone.insert(u) }
        }
        s.modseq = max(s.modseq, ch.highestModseq)
        selected = s
    }

    /// Tells the client what changed in the selected mailbox since it last
    /// heard: expunges (only when allowed, RFC 9051 §7.5.1; as VANISHED once
    /// QRESYNC is enabled, RFC 7162 §3.2.10), new messages, and flags changed
    /// by other sessions.
    func updates(_ w: inout IMAPWriter, allowExpunge: Bool) throws {
        try refresh()
        guard var s = selected else { return }
        if s.gone.isEmpty && s.arrived.isEmpty && s.dirty.isEmpty { return }
        selected = nil // no copy of the view while it changes
        if allowExpunge && !s.gone.isEmpty {
            let gone = s.gone.sorted()
            if qresync {
                w.raw("* VANISHED " + IMAPSession.uidSet(gone)); w.crlf()
            } else {
                for u in gone.reversed() {
                    if let seq = s.sequence(of: u) { w.raw("* \(seq + 1) EXPUNGE"); w.crlf() }
                }
            }
            s.uids.removeAll { s.gone.contains($0) }
            for u in gone { s.reported[u] = nil }
            s.gone = []
        }
        let added = s.arrived.filter { s.current.contains($0) }.sorted()
        s.arrived = []
        if !added.isEmpty {
            for u in added { s.uids.append(u); s.reported[u] = s.current[u]!.modseq }
            w.raw("* \(s.uids.count) EXISTS"); w.crlf()
        }
        for u in s.dirty.sorted() {
            guard let m = s.current[u], let seq = s.sequence(of: u), s.reported[u] != m.modseq else { continue }
            s.reported[u] = m.modseq
            w.raw("* \(seq + 1) FETCH (UID \(u) FLAGS "); w.flags(of: m)
            if condstore { w.raw(" MODSEQ (\(m.modseq))") }
            w.raw(")"); w.crlf()
        }
        s.dirty = []
        selected = s
    }

    /// UIDs for a sequence set, in the view's order; UID sets may name UIDs
    /// not present. `$` is the saved search result (RFC 5182).
    func resolve(_ set: IMAPSequenceSet, byUID: Bool) -> [UInt32] {
        guard let s = selected else { return [] }
        if set.isSavedResult { return savedUIDs.filter { s.sequence(of: $0) != nil } }
        let ranges = IMAPSession.positions(set, byUID: byUID, in: s.uids) ?? []
        var out: [UInt32] = []
        for r in ranges { out += s.uids[r] }
        if ranges.count > 1 {
            // Overlapping ranges name a message once, in mailbox order.
            out = Array(Set(out)).sorted()
        }
        return out
    }

    /// The positions in `uids` (ascending: a view's UIDs) that a sequence
    /// set names, one range per range of the set; nil once they number more
    /// than `limit`. Sequence numbers past the end name nothing here (the
    /// command checks them first).
    static func positions(_ set: IMAPSequenceSet, byUID: Bool, in uids: [UInt32], limit: Int = .max) -> [Range<Int>]? {
        var out: [Range<Int>] = []
        var total = 0
        let star = byUID ? uids.last ?? 0 : UInt32(uids.count)
        for r in set.ranges {
            var a: UInt32, b: UInt32
            switch r.0 { case .number(let v): a = v; case .star: a = star }
            switch r.1 { case .number(let v): b = v; case .star: b = star }
            if a > b { swap(&a, &b) }
            let range: Range<Int>
            if byUID {
                range = uids.lowerBound(a)..<(b == .max ? uids.count : uids.lowerBound(b + 1))
            } else {
                guard a >= 1, a <= uids.count else { continue }
                range = Int(a) - 1..<min(Int(b), uids.count)
            }
            if range.isEmpty { continue }
            total += range.count
            if total > limit { return nil }
            out.append(range)
        }
        return out
    }

    // MARK: LIST (RFC 9051 §6.3.9, RFC 5258, RFC 6154, RFC 5819)

    func list(_ w: inout IMAPWriter, reference: String, patterns: [String], selection: [String], returns: [IMAPListReturn], lsub: Bool) throws {
        // An empty pattern asks for the hierarchy delimiter.
        if patterns == [""] {
            w.raw("* LIST (\\Noselect) \"/\" \"\""); w.crlf()
            return
        }
        guard patterns.count <= 32, patterns.allSatisfy({ (reference + $0).unicodeScalars.count <= 1024 }) else {
            throw SessionError(text: "Too many or too long LIST patterns")
        }
        let all = try backend.mailboxes(user: user!)
        let subscribedOnly = selection.contains("SUBSCRIBED")
        let wantSpecial = returns.contains(.specialUse) || selection.contains("SPECIAL-USE") || returns.isEmpty
        var statusItems: [String]?
        for r in returns { if case .status(let items) = r { statusItems = items } }
        for mb in all {
            let decodedPatterns = patterns.map { utf8Names ? reference + $0 : ModifiedUTF7.decode(reference + $0) ?? reference + $0 }
            guard decodedPatterns.contains(where: { IMAPSession.matches(mb.name, pattern: $0) }) else { continue }
            if subscribedOnly && !mb.subscribed { continue }
            if selection.contains("SPECIAL-USE") && mb.specialUse == nil { continue }
            var attrs: [String] = []
            let hasChildren = all.contains { $0.name.hasPrefix(mb.name + "/") }
            attrs.append(hasChildren ? "\\HasChildren" : "\\HasNoChildren")
            if mb.subscribed && (subscribedOnly || returns.contains(.subscribed)) { attrs.append("\\Subscribed") }
            if wantSpecial, let su = mb.specialUse { attrs.append(su) }
            w.raw("* \(lsub ? "LSUB" : "LIST") (\(attrs.joined(separator: " "))) \"/\" ")
            mailboxName(&w, mb.name)
            w.crlf()
            if let items = statusItems { try statusLine(&w, name: mb.name, items: items) }
        }
    }

    /// `*` matches anything, `%` anything but the delimiter (RFC 9051 §6.3.9).
    /// INBOX is case-insensitive. Dynamic programming over (pattern, name)
    /// positions: time bounded by their lengths' product, whatever the wildcards.
    static func matches(_ name: String, pattern: String) -> Bool {
        if name == "INBOX" && pattern.uppercased() == "INBOX" { return true }
        let n = Array(name.unicodeScalars)
        var p: [Unicode.Scalar] = []
        for c in pattern.unicodeScalars where !(c == "*" && p.last == "*") { p.append(c) }
        // row[i]: the pattern so far matches the name's first i characters.
        var row = [Bool](repeating: false, count: n.count + 1)
        row[0] = true
        for c in p {
            var next = [Bool](repeating: false, count: n.count + 1)
            switch c {
            case "*":
                var any = false
                for i in 0...n.count { any = any || row[i]; next[i] = any }
            case "%":
                var any = false
                for i in 0...n.count {
                    if i > 0 && n[i - 1] == "/" { any = false }
                    any = any || row[i]
                    next[i] = any
                }
            default:
                for i in 0..<n.count where row[i] && n[i] == c { next[i + 1] = true }
            }
            row = next
            if !row.contains(true) { return false }
        }
        return row[n.count]
    }

    func statusLine(_ w: inout IMAPWriter, name: String, items: [String]) throws {
        let s = try backend.status(user: user!, mailbox: name)
        var parts: [String] = []
        for item in items {
            switch item {
            case "MESSAGES": parts.append("MESSAGES \(s.messages)")
            case "UNSEEN": parts.append("UNSEEN \(s.unseen)")
            case "UIDNEXT": parts.append("UIDNEXT \(s.uidNext)")
            case "UIDVALIDITY": parts.append("UIDVALIDITY \(s.uidValidity)")
            case "RECENT": parts.append("RECENT 0")
            case "SIZE": parts.append("SIZE \(s.size)")
            case "DELETED": parts.append("DELETED \(s.deleted)")
            case "HIGHESTMODSEQ": parts.append("HIGHESTMODSEQ \(s.highestModseq)")
            default: throw SessionError(text: "Unknown STATUS item \(item)")
            }
        }
        w.raw("* STATUS ")
        mailboxName(&w, name)
        w.raw(" (\(parts.joined(separator: " ")))")
        w.crlf()
    }
}
