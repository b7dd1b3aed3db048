/// Canonical wire form of responses (RFC 9051 §7, §9), through `IMAPWriter`:
/// atoms where the grammar has atoms, quoted strings when they can be,
/// literals for CR, LF, 8-bit or long strings, message data always as a
/// literal (`~{n}` when it holds NUL), one SP between tokens, CRLF at the end.
extension IMAPResponse {
    public func encode() -> [UInt8] {
        var w = IMAPWriter()
        encode(into: &w)
        return w.bytes
    }

    public func encode(into w: inout IMAPWriter) {
        switch self {
        case .tagged(let tag, let s):
            w.raw(tag)
            w.space()
            IMAPResponse.status(s, into: &w)
        case .untagged(let u):
            w.raw("* ")
            IMAPResponse.untagged(u, into: &w)
        case .continuation(let code, let text):
            w.raw("+ ")
            if let code {
                w.raw("[")
                IMAPResponse.code(code, into: &w)
                w.raw("]")
                if !text.isEmpty { w.space() }
            }
            w.raw(IMAPResponse.lineText(text))
        }
        w.crlf()
    }

    /// Text never carries a line end (TEXT-CHAR, RFC 9051 §9); a parsed
    /// text never holds one, so only constructed values change here.
    static func lineText(_ s: String) -> String {
        guard s.contains(where: { $0 == "\n" || $0 == "\r\n" }) else { return s }
        return String(s.map { $0 == "\n" || $0 == "\r\n" ? " " : $0 })
    }

    static func status(_ s: IMAPStatusResponse, into w: inout IMAPWriter) {
        w.raw(s.kind.rawValue)
        if let code = s.code {
            w.raw(" [")
            IMAPResponse.code(code, into: &w)
            w.raw("]")
        }
        if !s.text.isEmpty {
            w.space()
            w.raw(lineText(s.text))
        }
    }

    static func code(_ c: IMAPResponseCode, into w: inout IMAPWriter) {
        if let name = IMAPResponseCode.simpleNames[c] { w.raw(name); return }
        switch c {
        case .badCharset(let charsets):
            w.raw("BADCHARSET")
            if !charsets.isEmpty {
                w.raw(" (")
                for (k, cs) in charsets.enumerated() {
                    if k > 0 { w.space() }
                    lineString(cs, into: &w)
                }
                w.raw(")")
            }
        case .capability(let caps): w.raw((["CAPABILITY"] + caps).joined(separator: " "))
        case .permanentFlags(let flags): w.raw("PERMANENTFLAGS "); w.flags(flags)
        case .uidNext(let n): w.raw("UIDNEXT \(n)")
        case .uidValidity(let n): w.raw("UIDVALIDITY \(n)")
        case .unseen(let n): w.raw("UNSEEN \(n)")
        case .appendUID(let v, let uids): w.raw("APPENDUID \(v) " + uids.wireText)
        case .copyUID(let v, let a, let b): w.raw("COPYUID \(v) " + a.wireText + " " + b.wireText)
        case .highestModSeq(let n): w.raw("HIGHESTMODSEQ \(n)")
        case .modified(let set): w.raw("MODIFIED " + set.wireText)
        case .other(let name, let args):
            w.raw(name)
            if let args { w.raw(" " + lineText(args)) }
        default:
            w.raw("X-UNNAMED")   // unreachable: every simple code has a name
        }
    }

    /// An atom or quoted string inside a response code, which is part of
    /// a status line and so never holds a literal (8-bit stays quoted).
    static func lineString(_ s: String, into w: inout IMAPWriter) {
        let u = Array(lineText(s).utf8)
        if !u.isEmpty, u.allSatisfy(IMAPParser.isAtomChar), s.uppercased() != "NIL" { w.raw(u); return }
        w.raw("\"")
        for b in u {
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { w.raw("\\") }
            w.raw([b])
        }
        w.raw("\"")
    }

    static func untagged(_ u: IMAPUntaggedResponse, into w: inout IMAPWriter) {
        switch u {
        case .status(let s): status(s, into: &w)
        case .capability(let caps): w.raw((["CAPABILITY"] + caps).joined(separator: " "))
        case .enabled(let caps): w.raw((["ENABLED"] + caps).joined(separator: " "))
        case .flags(let flags): w.raw("FLAGS "); w.flags(flags)
        case .list(let l): w.raw("LIST "); list(l, into: &w)
        case .lsub(let l): w.raw("LSUB "); list(l, into: &w)
        case .mailboxStatus(let mailbox, let atts):
            w.raw("STATUS ")
            w.astring(mailbox)
            w.raw(" (" + atts.map { "\($0.name) \($0.value)" }.joined(separator: " ") + ")")
        case .exists(let n): w.raw("\(n) EXISTS")
        case .recent(let n): w.raw("\(n) RECENT")
        case .expunge(let n): w.raw("\(n) EXPUNGE")
        case .fetch(let n, let atts):
            w.raw("\(n) FETCH (")
            for (k, a) in atts.enumerated() {
                if k > 0 { w.space() }
                attribute(a, into: &w)
            }
            w.raw(")")
        case .search(let ns, let modseq), .sort(let ns, let modseq):
            if case .search = u { w.raw("SEARCH") } else { w.raw("SORT") }
            for n in ns { w.raw(" \(n)") }
            if let modseq { w.raw(" (MODSEQ \(modseq))") }
        case .esearch(let e): esearch(e, into: &w)
        case .thread(let lists):
            w.raw("THREAD")
            if !lists.isEmpty { w.space() }
            for l in lists { thread(l, into: &w) }
        case .id(let params):
            w.raw("ID ")
            guard let params else { w.raw("NIL"); break }
            w.raw("(")
            for (k, p) in params.enumerated() {
                if k > 0 { w.space() }
                w.string(p.key)
                w.space()
                w.nstring(p.value.map { Array($0.utf8) })
            }
            w.raw(")")
        case .namespace(let personal, let other, let shared):
            w.raw("NAMESPACE ")
            namespaces(personal, into: &w); w.space()
            namespaces(other, into: &w); w.space()
            namespaces(shared, into: &w)
        case .quota(let root, let resources):
            w.raw("QUOTA ")
            w.string(root)
            w.raw(" (" + resources.map { "\($0.name) \($0.usage) \($0.limit)" }.joined(separator: " ") + ")")
        case .quotaRoot(let mailbox, let roots):
            w.raw("QUOTAROOT ")
            w.astring(mailbox)
            for r in roots { w.space(); w.string(r) }
        case .vanished(let earlier, let set):
            w.raw(earlier ? "VANISHED (EARLIER) " : "VANISHED ")
            w.raw(set.wireText)
        case .unknown(let raw): w.raw(raw)
        }
    }

    static func list(_ l: IMAPListResponse, into w: inout IMAPWriter) {
        w.flags(l.attributes)
        w.space()
        delimiter(l.delimiter, into: &w)
        w.space()
        w.astring(l.mailbox)
        guard !l.extended.isEmpty else { return }
        w.raw(" (")
        for (k, item) in l.extended.enumerated() {
            if k > 0 { w.space() }
            w.string(item.tag)
            w.space()
            value(item.value, into: &w)
        }
        w.raw(")")
    }

    /// `DQUOTE QUOTED-CHAR DQUOTE / nil`.
    static func delimiter(_ d: Character?, into w: inout IMAPWriter) {
        if let d { w.string(String(d)) } else { w.raw("NIL") }
    }

    static func namespaces(_ list: [IMAPNamespace], into w: inout IMAPWriter) {
        guard !list.isEmpty else { w.raw("NIL"); return }
        w.raw("(")
        for n in list {
            w.raw("(")
            w.string(n.prefix)
            w.space()
            delimiter(n.delimiter, into: &w)
            for e in n.extensions {
                w.space()
                w.string(e.name)
                w.raw(" (")
                for (k, v) in e.values.enumerated() {
                    if k > 0 { w.space() }
                    w.string(v)
                }
                w.raw(")")
            }
            w.raw(")")
        }
        w.raw(")")
    }

    static func esearch(_ e: IMAPESearchResponse, into w: inout IMAPWriter) {
        w.raw("ESEARCH")
        if let tag = e.tag { w.raw(" (TAG "); w.string(tag); w.raw(")") }
        if e.uid { w.raw(" UID") }
        for item in e.items {
            w.space()
            switch item {
            case .min(let n): w.raw("MIN \(n)")
            case .max(let n): w.raw("MAX \(n)")
            case .count(let n): w.raw("COUNT \(n)")
            case .modseq(let n): w.raw("MODSEQ \(n)")
            case .all(let set): w.raw("ALL " + set.wireText)
            case .other(let name, let v): w.raw(name + " "); value(v, into: &w)
            }
        }
    }

    /// `thread-list = "(" (thread-members / thread-nested) ")"`.
    static func thread(_ t: IMAPThreadList, into w: inout IMAPWriter) {
        w.raw("(")
        w.raw(t.members.map(String.init).joined(separator: " "))
        if !t.members.isEmpty && !t.branches.isEmpty { w.space() }
        for b in t.branches { thread(b, into: &w) }
        w.raw(")")
    }

    static func value(_ v: IMAPExtensionValue, into w: inout IMAPWriter) {
        switch v {
        case .nilValue: w.raw("NIL")
        case .number(let n): w.raw(String(n))
        case .atom(let a): w.raw(a)
        case .string(let s): w.string(s)
        case .list(let l):
            w.raw("(")
            for (k, x) in l.enumerated() {
                if k > 0 { w.space() }
                value(x, into: &w)
            }
            w.raw(")")
        }
    }

    static func attribute(_ a: IMAPMessageAttribute, into w: inout IMAPWriter) {
        switch a {
        case .flags(let f): w.raw("FLAGS "); w.flags(f)
        case .uid(let n): w.raw("UID \(n)")
        case .internalDate(let d): w.raw("INTERNALDATE "); w.string(d)
        case .rfc822Size(let n): w.raw("RFC822.SIZE \(n)")
        case .envelope(let e): w.raw("ENVELOPE "); envelope(e, into: &w)
        case .body(let b): w.raw("BODY "); body(b, into: &w)
        case .bodyStructure(let b): w.raw("BODYSTRUCTURE "); body(b, into: &w)
        case .bodySection(let section, let origin, let data):
            w.raw("BODY" + section.wireText)
            if let origin { w.raw("<\(origin)>") }
            w.space()
            messageData(data, into: &w)
        case .binary(let part, let origin, let data):
            w.raw("BINARY[" + part.map(String.init).joined(separator: ".") + "]")
            if let origin { w.raw("<\(origin)>") }
            w.space()
            messageData(data, into: &w)
        case .binarySize(let part, let n):
            w.raw("BINARY.SIZE[" + part.map(String.init).joined(separator: ".") + "] \(n)")
        case .modseq(let n): w.raw("MODSEQ (\(n))")
        case .rfc822(let d): w.raw("RFC822 "); messageData(d, into: &w)
        case .rfc822Header(let d): w.raw("RFC822.HEADER "); messageData(d, into: &w)
        case .rfc822Text(let d): w.raw("RFC822.TEXT "); messageData(d, into: &w)
        case .other(let name, let v): w.raw(name + " "); value(v, into: &w)
        }
    }

    static func messageData(_ data: [UInt8]?, into w: inout IMAPWriter) {
        if let data { w.literal(data, binary: true) } else { w.raw("NIL") }
    }

    static func envelope(_ e: IMAPEnvelope, into w: inout IMAPWriter) {
        w.raw("(")
        w.nstring(e.date); w.space()
        w.nstring(e.subject); w.space()
        for list in [e.from, e.sender, e.replyTo, e.to, e.cc, e.bcc] {
            addresses(list, into: &w)
            w.space()
        }
        w.nstring(e.inReplyTo); w.space()
        w.nstring(e.messageID)
        w.raw(")")
    }

    static func addresses(_ list: [IMAPAddress], into w: inout IMAPWriter) {
        guard !list.isEmpty else { w.raw("NIL"); return }
        w.raw("(")
        for a in list {
            w.raw("(")
            w.nstring(a.name); w.space()
            w.nstring(a.adl); w.space()
            w.nstring(a.mailbox); w.space()
            w.nstring(a.host)
            w.raw(")")
        }
        w.raw(")")
    }

    static func body(_ b: IMAPBodyStructure, into w: inout IMAPWriter) {
        w.raw("(")
        switch b {
        case .single(let p):
            w.string(p.type); w.space()
            w.string(p.subtype); w.space()
            value(IMAPBodyParameter.value(p.parameters), into: &w); w.space()
            w.nstring(p.contentID.map { Array($0.utf8) }); w.space()
            w.nstring(p.contentDescription.map { Array($0.utf8) }); w.space()
            w.string(p.encoding)
            w.raw(" \(p.size)")
            switch p.kind {
            case .basic: break
            case .text(let lines): w.raw(" \(lines)")
            case .message(let env, let inner, let lines):
                w.space(); envelope(env, into: &w)
                w.space(); body(inner, into: &w)
                w.raw(" \(lines)")
            }
            for x in p.extensions { w.space(); value(x, into: &w) }
        case .multipart(let m):
            for part in m.parts { body(part, into: &w) }
            w.space()
            w.string(m.subtype)
            for x in m.extensions { w.space(); value(x, into: &w) }
        }
        w.raw(")")
    }
}

extension IMAPSequenceSet {
    /// `sequence-set` as written: `1:4,7,9:*`, or `$`.
    public var wireText: String {
        if isSavedResult { return "$" }
        func bound(_ b: Bound) -> String {
            switch b {
            case .number(let n): return String(n)
            case .star: return "*"
            }
        }
        return storage.map { $0.a == $0.b ? bound($0.a) : bound($0.a) + ":" + bound($0.b) }.joined(separator: ",")
    }
}

extension IMAPSection {
    /// `section = "[" [section-spec] "]"` as written.
    public var wireText: String {
        var s = "[" + part.map(String.init).joined(separator: ".")
        func names(_ l: [String]) -> String {
            l.map { n -> String in
                var w = IMAPWriter()
                w.astring(n)
                return String(decoding: w.bytes, as: UTF8.self)
            }.joined(separator: " ")
        }
        let spec: String
        switch text {
        case .whole: spec = ""
        case .header: spec = "HEADER"
        case .text: spec = "TEXT"
        case .mime: spec = "MIME"
        case .headerFields(let l): spec = "HEADER.FIELDS (" + names(l) + ")"
        case .headerFieldsNot(let l): spec = "HEADER.FIELDS.NOT (" + names(l) + ")"
        }
        if !part.isEmpty && !spec.isEmpty { s += "." }
        return s + spec + "]"
    }
}
