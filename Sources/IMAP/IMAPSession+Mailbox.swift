extension IMAPSession {
    /// RFC 9051 §6.3.2: SELECT/EXAMINE responses.
    func select(_ w: inout IMAPWriter, tag: String, name: String, readOnly: Bool) throws {
        selected = nil
        let status = try backend.status(user: user!, mailbox: name)
        let messages = try backend.messages(user: user!, mailbox: name)
        var known: [UInt32: (flags: [String], modseq: Int64)] = [:]
        for m in messages { known[m.uid] = (m.flags, m.modseq) }
        selected = Selected(name: name, readOnly: readOnly, uids: messages.map(\.uid), known: known)
        w.raw("* \(messages.count) EXISTS"); w.crlf()
        w.raw("* 0 RECENT"); w.crlf()  // RFC 3501 clients expect it; rev2 has no \Recent
        w.raw("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"); w.crlf()
        w.status(tag: nil, "OK", code: "PERMANENTFLAGS (\(readOnly ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*"))", "Flags permitted")
        if let firstUnseen = messages.firstIndex(where: { !$0.flags.contains("\\Seen") }) {
            w.status(tag: nil, "OK", code: "UNSEEN \(firstUnseen + 1)", "First unseen")
        }
        w.status(tag: nil, "OK", code: "UIDVALIDITY \(status.uidValidity)", "UIDs valid")
        w.status(tag: nil, "OK", code: "UIDNEXT \(status.uidNext)", "Predicted next UID")
        if condstore { w.status(tag: nil, "OK", code: "HIGHESTMODSEQ \(status.highestModseq)", "Highest") }
        if enabled.contains("IMAP4REV2") {
            // RFC 9051 §6.3.2: the mailbox's LIST response, attributes included.
            let hasChildren = try backend.mailboxes(user: user!).contains { $0.name.hasPrefix(name + "/") }
            w.raw("* LIST (\(hasChildren ? "\\HasChildren" : "\\HasNoChildren")) \"/\" "); mailboxName(&w, name); w.crlf()
        }
        w.status(tag: tag, "OK", code: readOnly ? "READ-ONLY" : "READ-WRITE", "\(readOnly ? "EXAMINE" : "SELECT") completed")
    }

    /// Mailbox names: UTF-8 for IMAP4rev2/UTF8=ACCEPT clients, modified UTF-7 otherwise.
    func mailboxName(_ w: inout IMAPWriter, _ name: String) {
        let utf8 = enabled.contains("IMAP4REV2") || enabled.contains("UTF8=ACCEPT")
        w.astring(utf8 ? name : ModifiedUTF7.encode(name))
    }

    /// Reports what changed in the selected mailbox since the client last
    /// heard: expunges (only when allowed, RFC 9051 §7.5.1), new messages,
    /// and flags changed by other sessions.
    func updates(_ w: inout IMAPWriter, allowExpunge: Bool) throws {
        guard var s = selected else { return }
        let current = try backend.messages(user: user!, mailbox: s.name)
        let currentUIDs = Set(current.map(\.uid))
        if allowExpunge {
            var i = s.uids.count - 1
            while i >= 0 {
                if !currentUIDs.contains(s.uids[i]) {
                    w.raw("* \(i + 1) EXPUNGE"); w.crlf()
                    s.known[s.uids[i]] = nil
                    s.uids.remove(at: i)
                }
                i -= 1
            }
        }
        let last = s.uids.last ?? 0
        let added = current.filter { $0.uid > last }
        for m in added { s.uids.append(m.uid); s.known[m.uid] = (m.flags, m.modseq) }
        if !added.isEmpty { w.raw("* \(s.uids.count) EXISTS"); w.crlf() }
        for m in current {
            guard let k = s.known[m.uid], k.modseq != m.modseq, let seq = s.uids.firstIndex(of: m.uid) else { continue }
            s.known[m.uid] = (m.flags, m.modseq)
            w.raw("* \(seq + 1) FETCH (UID \(m.uid) FLAGS "); w.flags(m.flags)
            if condstore { w.raw(" MODSEQ (\(m.modseq))") }
            w.raw(")"); w.crlf()
        }
        selected = s
    }

    /// UIDs for a sequence set, in the view's order; UID sets may name UIDs not present.
    func resolve(_ set: IMAPSequenceSet, byUID: Bool) -> [UInt32] {
        guard let s = selected else { return [] }
        if byUID {
            let star = s.uids.last ?? 0
            return s.uids.filter { set.contains($0, star: star) }
        }
        let count = UInt32(s.uids.count)
        return s.uids.enumerated().filter { set.contains(UInt32($0.offset + 1), star: count) }.map(\.element)
    }

    // MARK: LIST (RFC 9051 §6.3.9, RFC 5258, RFC 6154, RFC 5819)

    func list(_ w: inout IMAPWriter, reference: String, patterns: [String], selection: [String], returns: [IMAPListReturn], lsub: Bool) throws {
        // An empty pattern asks for the hierarchy delimiter.
        if patterns == [""] {
            w.raw("* LIST (\\Noselect) \"/\" \"\""); w.crlf()
            return
        }
        let all = try backend.mailboxes(user: user!)
        let subscribedOnly = selection.contains("SUBSCRIBED")
        let wantSpecial = returns.contains(.specialUse) || selection.contains("SPECIAL-USE") || returns.isEmpty
        var statusItems: [String]?
        for r in returns { if case .status(let items) = r { statusItems = items } }
        for mb in all {
            let decodedPatterns = patterns.map { ModifiedUTF7.decode(reference + $0) ?? reference + $0 }
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

    /// `*` matches anything, `%` anything but the delimiter (RFC 9051 §6.3.9). INBOX is case-insensitive.
    static func matches(_ name: String, pattern: String) -> Bool {
        let n = Array(name.unicodeScalars), p = Array(pattern.unicodeScalars)
        func m(_ i: Int, _ j: Int) -> Bool {
            if j == p.count { return i == n.count }
            if p[j] == "*" { return m(i, j + 1) || (i < n.count && m(i + 1, j)) }
            if p[j] == "%" { return m(i, j + 1) || (i < n.count && n[i] != "/" && m(i + 1, j)) }
            return i < n.count && n[i] == p[j] && m(i + 1, j + 1)
        }
        if name == "INBOX" && pattern.uppercased() == "INBOX" { return true }
        return m(0, 0)
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
