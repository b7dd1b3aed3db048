/// The response grammar (RFC 9051 §9 `response`, RFC 3501 §9, and the
/// extensions in `IMAPUntaggedResponse`) over one framed response: its text,
/// and the literals that sat between its lines. Recursion is bounded by
/// `maxDepth`; every failure is a `Failure` (`.syntax`, `.tooDeep`), never a trap.
struct IMAPResponseGrammar {
    typealias Failure = IMAPResponseParser.Failure

    let text: [UInt8]
    let literals: [IMAPResponseParser.Literal]
    let maxDepth: Int
    var i = 0
    var li = 0
    var depth = 0

    init(text: [UInt8], literals: [IMAPResponseParser.Literal], maxDepth: Int) {
        self.text = text; self.literals = literals; self.maxDepth = maxDepth
    }

    // MARK: Characters and tokens

    func fail(_ what: String) -> Failure { Failure(.syntax, what) }

    var atLiteral: Bool { li < literals.count && literals[li].at == i }
    var peek: UInt8? { atLiteral || i >= text.count ? nil : text[i] }
    var atEnd: Bool { i >= text.count && li >= literals.count }

    static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }

    mutating func take(_ b: UInt8) -> Bool {
        if peek == b { i += 1; return true }
        return false
    }

    mutating func expect(_ b: UInt8, _ what: String) throws {
        guard take(b) else { throw fail("expected \(what)") }
    }

    /// Consumes any spaces; whether there were some. (RFC 9051 §9 wants
    /// exactly one SP; servers, and the RFC's own examples, sometimes send two.)
    @discardableResult
    mutating func skipSpaces() -> Bool {
        let start = i
        while peek == 32 { i += 1 }
        return i > start
    }

    mutating func sp() throws {
        guard skipSpaces() else { throw fail("expected a space") }
    }

    /// Nothing but spaces may remain.
    mutating func end() throws {
        skipSpaces()
        guard atEnd else { throw fail("unexpected data at the end of the response") }
    }

    mutating func run(_ pred: (UInt8) -> Bool) -> ArraySlice<UInt8> {
        let start = i
        while let b = peek, pred(b) { i += 1 }
        return text[start..<i]
    }

    mutating func enter() throws {
        depth += 1
        guard depth <= maxDepth else { throw Failure(.tooDeep, "nested deeper than \(maxDepth)") }
    }
    mutating func leave() { depth -= 1 }

    /// An atom, as sent.
    mutating func atom() throws -> String {
        let a = run(IMAPParser.isAtomChar)
        guard !a.isEmpty else { throw fail("expected an atom") }
        return String(decoding: a, as: UTF8.self)
    }

    /// A keyword such as FETCH or HEADER.FIELDS, upper-cased (empty if none).
    mutating func keyword() -> String {
        String(decoding: run { IMAPParser.isAtomChar($0) && $0 != UInt8(ascii: "[") && $0 != UInt8(ascii: "<") },
               as: UTF8.self).uppercased()
    }

    /// `number` / `number64`: at most 19 digits that fit an Int64.
    mutating func number() throws -> Int64 {
        let d = run(IMAPResponseGrammar.isDigit)
        guard !d.isEmpty, d.count <= 19, let v = Int64(String(decoding: d, as: UTF8.self)) else {
            throw fail("expected a number")
        }
        return v
    }

    mutating func number32() throws -> UInt32 {
        let v = try number()
        guard v <= Int64(UInt32.max) else { throw fail("expected a 32-bit number") }
        return UInt32(v)
    }

    mutating func nzNumber32() throws -> UInt32 {
        let v = try number32()
        guard v > 0 else { throw fail("expected a non-zero number") }
        return v
    }

    /// `string = quoted / literal`. A backslash before anything but `"` or
    /// `\` is kept as it is (servers send unescaped backslashes).
    mutating func string() throws -> [UInt8] {
        if atLiteral {
            li += 1
            return literals[li - 1].bytes
        }
        try expect(UInt8(ascii: "\""), "a string")
        var out: [UInt8] = []
        while i < text.count, !atLiteral {
            let b = text[i]
            i += 1
            if b == UInt8(ascii: "\"") { return out }
            if b == UInt8(ascii: "\\"), i < text.count, text[i] == UInt8(ascii: "\"") || text[i] == UInt8(ascii: "\\") {
                out.append(text[i])
                i += 1
                continue
            }
            out.append(b)
        }
        throw fail("unterminated quoted string")
    }

    mutating func stringText() throws -> String { String(decoding: try string(), as: UTF8.self) }

    /// NIL (as a whole token) consumed?
    mutating func takeNil() -> Bool {
        guard !atLiteral, i + 3 <= text.count,
              text[i] & 0xDF == UInt8(ascii: "N"), text[i + 1] & 0xDF == UInt8(ascii: "I"), text[i + 2] & 0xDF == UInt8(ascii: "L")
        else { return false }
        if i + 3 < text.count, IMAPParser.isAtomChar(text[i + 3]) { return false }
        i += 3
        return true
    }

    mutating func nstring() throws -> [UInt8]? {
        takeNil() ? nil : try string()
    }

    /// `astring`; unquoted UTF-8 is taken too.
    mutating func astring() throws -> String {
        if atLiteral || peek == UInt8(ascii: "\"") { return try stringText() }
        let a = run { IMAPParser.isAstringChar($0) || $0 >= 0x80 }
        guard !a.isEmpty else { throw fail("expected a string or atom") }
        return String(decoding: a, as: UTF8.self)
    }

    /// `mailbox = "INBOX" / astring`, INBOX in any case being INBOX.
    mutating func mailbox() throws -> String {
        let m = try astring()
        return m.uppercased() == "INBOX" ? "INBOX" : m
    }

    mutating func sequenceSet() throws -> IMAPSequenceSet {
        if take(UInt8(ascii: "$")) { return .savedResult }
        var ranges: [(IMAPSequenceSet.Bound, IMAPSequenceSet.Bound)] = []
        repeat {
            let a = try seqNumber()
            let b = take(UInt8(ascii: ":")) ? try seqNumber() : a
            ranges.append((a, b))
        } while take(UInt8(ascii: ","))
        return IMAPSequenceSet(ranges: ranges)
    }

    mutating func seqNumber() throws -> IMAPSequenceSet.Bound {
        take(UInt8(ascii: "*")) ? .star : .number(try nzNumber32())
    }

    /// `"(" [item *(SP item)] ")"`; extra spaces are tolerated, and none
    /// between a `)` and a `(`.
    mutating func list<T>(_ item: (inout IMAPResponseGrammar) throws -> T) throws -> [T] {
        try enter()
        defer { leave() }
        try expect(UInt8(ascii: "("), "(")
        var out: [T] = []
        skipSpaces()
        if take(UInt8(ascii: ")")) { return out }
        while true {
            out.append(try item(&self))
            let spaced = skipSpaces()
            if take(UInt8(ascii: ")")) { return out }
            guard spaced || (peek == UInt8(ascii: "(") && text[i - 1] == UInt8(ascii: ")")) else {
                throw fail(atEnd ? "unbalanced parentheses" : "expected a space or )")
            }
        }
    }

    /// `flag`, `flag-fetch`, `flag-perm`, mailbox attributes: `\Seen`, `\*`, `$Junk`.
    mutating func flag() throws -> String {
        if take(UInt8(ascii: "\\")) {
            if take(UInt8(ascii: "*")) { return "\\*" }
            return "\\" + (try atom())
        }
        return try atom()
    }

    mutating func flagList() throws -> [String] { try list { try $0.flag() } }

    /// Space-separated tokens up to the end (CAPABILITY, ENABLED).
    mutating func tokensToEnd() throws -> [String] {
        var out: [String] = []
        while true {
            let spaced = skipSpaces()
            if atEnd { return out }
            guard spaced else { throw fail("expected a space") }
            let t = run { $0 > 32 && $0 != 127 }
            guard !t.isEmpty else { throw fail("expected a capability") }
            out.append(String(decoding: t, as: UTF8.self))
        }
    }

    /// Extension data: `body-extension`, `tagged-ext-val`, unknown FETCH values.
    mutating func value() throws -> IMAPExtensionValue {
        if atLiteral || peek == UInt8(ascii: "\"") { return .string(try stringText()) }
        if peek == UInt8(ascii: "(") { return .list(try list { try $0.value() }) }
        if takeNil() { return .nilValue }
        let t = run { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "(") && $0 != UInt8(ascii: ")") && $0 != UInt8(ascii: "\"") }
        guard !t.isEmpty else { throw fail("expected a value") }
        if t.count <= 18, t.allSatisfy(IMAPResponseGrammar.isDigit), t.count == 1 || t.first != 48,
           let n = Int64(String(decoding: t, as: UTF8.self)) {
            return .number(n)
        }
        return .atom(String(decoding: t, as: UTF8.self))
    }

    /// A delimiter: `DQUOTE QUOTED-CHAR DQUOTE / nil`; `""` (sent by some
    /// servers for a flat name) reads as nil.
    mutating func delimiter() throws -> Character? {
        if takeNil() { return nil }
        let s = try stringText()
        if s.isEmpty { return nil }
        guard s.count == 1, let c = s.first else { throw fail("expected one delimiter character") }
        return c
    }

    /// The rest of the text, with the literals in it as they were announced
    /// (for responses kept as they came).
    mutating func rest(from start: Int) -> [UInt8] {
        var out: [UInt8] = []
        var pos = start
        for lit in literals where lit.at >= start {
            out += text[pos..<lit.at]
            out += Array(((lit.binary ? "~{" : "{") + "\(lit.bytes.count)}\r\n").utf8)
            out += lit.bytes
            pos = lit.at
        }
        out += text[pos...]
        i = text.count
        li = literals.count
        return out
    }

    // MARK: Responses

    mutating func response() throws -> IMAPResponse {
        if take(UInt8(ascii: "+")) {
            skipSpaces()
            let (code, t) = try respText()
            return .continuation(code: code, text: t)
        }
        if take(UInt8(ascii: "*")) {
            try sp()
            return .untagged(try untagged())
        }
        let tag = run { IMAPParser.isAstringChar($0) && $0 != UInt8(ascii: "+") }
        guard !tag.isEmpty else { throw fail("expected a tag, * or +") }
        try sp()
        guard let kind = IMAPStatusResponse.Kind(rawValue: keyword()), kind == .ok || kind == .no || kind == .bad else {
            throw fail("expected OK, NO or BAD after a tag")
        }
        return .tagged(String(decoding: tag, as: UTF8.self), try status(kind))
    }

    /// `resp-text = ["[" resp-text-code "]" SP] [text]`; a `[` without its
    /// `]` is only text.
    mutating func respText() throws -> (IMAPResponseCode?, String) {
        guard li == literals.count else { throw fail("a literal in status text") }
        var code: IMAPResponseCode?
        if peek == UInt8(ascii: "["), let close = text[i...].firstIndex(of: UInt8(ascii: "]")) {
            code = IMAPResponseGrammar.code(text[(i + 1)..<close], maxDepth: maxDepth)
            i = close + 1
            skipSpaces()
        }
        let t = String(decoding: text[i...], as: UTF8.self)
        i = text.count
        return (code, t)
    }

    mutating func status(_ kind: IMAPStatusResponse.Kind) throws -> IMAPStatusResponse {
        skipSpaces()
        let (code, t) = try respText()
        return IMAPStatusResponse(kind, code: code, t)
    }

    /// `resp-text-code`, falling back to `.other` for unknown names and for
    /// known names whose arguments do not parse.
    static func code(_ bytes: ArraySlice<UInt8>, maxDepth: Int) -> IMAPResponseCode {
        var g = IMAPResponseGrammar(text: Array(bytes), literals: [], maxDepth: maxDepth)
        let name = String(decoding: g.run { $0 != 32 }, as: UTF8.self)
        g.skipSpaces()
        let args = g.atEnd ? nil : String(decoding: g.text[g.i...], as: UTF8.self)
        let upper = name.uppercased()
        if args == nil, let simple = IMAPResponseCode.simple[upper] { return simple }
        if let c = try? g.structuredCode(upper) { return c }
        return .other(name, args)
    }

    mutating func structuredCode(_ name: String) throws -> IMAPResponseCode {
        let c: IMAPResponseCode
        switch name {
        case "CAPABILITY":
            i = 0
            _ = run { $0 != 32 }
            c = .capability(try tokensToEnd())
        case "BADCHARSET":
            if peek == UInt8(ascii: "(") {
                c = .badCharset(try list { try $0.astring() })
            } else {
                i = 0
                _ = run { $0 != 32 }
                c = .badCharset(try tokensToEnd())
            }
        case "PERMANENTFLAGS": c = .permanentFlags(try flagList())
        case "UIDNEXT": c = .uidNext(try number32())
        case "UIDVALIDITY": c = .uidValidity(try number32())
        case "UNSEEN": c = .unseen(try number32())
        case "APPENDUID":
            let v = try nzNumber32()
            try sp()
            c = .appendUID(uidValidity: v, uids: try sequenceSet())
        case "COPYUID":
            let v = try nzNumber32()
            try sp()
            let a = try sequenceSet()
            try sp()
            c = .copyUID(uidValidity: v, source: a, destination: try sequenceSet())
        case "HIGHESTMODSEQ": c = .highestModSeq(try number())
        case "MODIFIED": c = .modified(try sequenceSet())
        default: throw fail("unknown code")
        }
        try end()
        return c
    }

    mutating func untagged() throws -> IMAPUntaggedResponse {
        let start = i
        if let b = peek, IMAPResponseGrammar.isDigit(b) {
            let n = try number32()
            try sp()
            switch keyword() {
            case "EXISTS": try end(); return .exists(n)
            case "RECENT": try end(); return .recent(n)
            case "EXPUNGE":
                guard n > 0 else { throw fail("EXPUNGE of message 0") }
                try end()
                return .expunge(n)
            case "FETCH":
                guard n > 0 else { throw fail("FETCH of message 0") }
                try sp()
                let atts = try list { try $0.fetchAttribute() }
                try end()
                return .fetch(n, atts)
            default:
                return .unknown(rest(from: start))
            }
        }
        let name = keyword()
        let u: IMAPUntaggedResponse
        switch name {
        case "OK", "NO", "BAD", "PREAUTH", "BYE":
            return .status(try status(IMAPStatusResponse.Kind(rawValue: name)!))
        case "CAPABILITY": return .capability(try tokensToEnd())
        case "ENABLED": return .enabled(try tokensToEnd())
        case "FLAGS":
            try sp()
            u = .flags(try flagList())
        case "LIST", "LSUB":
            try sp()
            let l = try listResponse()
            u = name == "LIST" ? .list(l) : .lsub(l)
        case "STATUS":
            try sp()
            let mb = try mailbox()
            try sp()
            let pairs = try list { g -> IMAPStatusAttribute in
                let n = try g.atom()
                try g.sp()
                return IMAPStatusAttribute(n, try g.number())
            }
            u = .mailboxStatus(mb, pairs)
        case "SEARCH", "SORT":
            var ns: [UInt32] = []
            var modseq: Int64?
            while skipSpaces(), let b = peek, modseq == nil {
                if b == UInt8(ascii: "(") {
                    // RFC 7162 §3.1.6: (MODSEQ n)
                    _ = take(b)
                    guard keyword() == "MODSEQ" else { throw fail("expected MODSEQ") }
                    try sp()
                    modseq = try number()
                    try expect(UInt8(ascii: ")"), ")")
                } else {
                    ns.append(try nzNumber32())
                }
            }
            u = name == "SEARCH" ? .search(ns, modseq: modseq) : .sort(ns, modseq: modseq)
        case "ESEARCH": u = .esearch(try esearch())
        case "THREAD":
            var lists: [IMAPThreadList] = []
            skipSpaces()
            while peek == UInt8(ascii: "(") {
                lists.append(try threadList())
                skipSpaces()
            }
            u = .thread(lists)
        case "ID":
            try sp()
            if takeNil() {
                u = .id(nil)
            } else {
                u = .id(try idParameters())
            }
        case "NAMESPACE":
            try sp()
            let personal = try namespaces()
            try sp()
            let other = try namespaces()
            try sp()
            u = .namespace(personal: personal, otherUsers: other, shared: try namespaces())
        case "QUOTA":
            try sp()
            let root = try astring()
            try sp()
            let resources = try list { g -> IMAPQuotaResource in
                let n = try g.atom()
                try g.sp()
                let usage = try g.number()
                try g.sp()
                return IMAPQuotaResource(n, usage: usage, limit: try g.number())
            }
            u = .quota(root: root, resources)
        case "QUOTAROOT":
            try sp()
            let mb = try mailbox()
            var roots: [String] = []
            while skipSpaces(), !atEnd { roots.append(try astring()) }
            u = .quotaRoot(mailbox: mb, roots: roots)
        case "VANISHED":
            try sp()
            var earlier = false
            if take(UInt8(ascii: "(")) {
                guard keyword() == "EARLIER" else { throw fail("expected (EARLIER)") }
                try expect(UInt8(ascii: ")"), ")")
                try sp()
                earlier = true
            }
            u = .vanished(earlier: earlier, try sequenceSet())
        default:
            return .unknown(rest(from: start))
        }
        try end()
        return u
    }

    /// RFC 2971: `"(" string SP nstring *(SP string SP nstring) ")"`.
    mutating func idParameters() throws -> [IMAPIDParameter] {
        try enter()
        defer { leave() }
        try expect(UInt8(ascii: "("), "(")
        var params: [IMAPIDParameter] = []
        while true {
            let spaced = skipSpaces()
            if take(UInt8(ascii: ")")) { return params }
            guard spaced || params.isEmpty else { throw fail(atEnd ? "unbalanced parentheses" : "expected a space or )") }
            let k = try stringText()
            try sp()
            params.append(IMAPIDParameter(k, try nstring().map { String(decoding: $0, as: UTF8.self) }))
        }
    }

    /// `mailbox-list = "(" [mbx-list-flags] ")" SP delimiter SP mailbox [SP "(" mbox-list-extended ")"]`.
    mutating func listResponse() throws -> IMAPListResponse {
        let attributes = try flagList()
        try sp()
        let delimiter = try delimiter()
        try sp()
        let mb = try mailbox()
        var extended: [IMAPListExtendedItem] = []
        if skipSpaces(), peek == UInt8(ascii: "(") {
            extended = try list { g -> IMAPListExtendedItem in
                let tag = try g.astring()
                try g.sp()
                return IMAPListExtendedItem(tag, try g.value())
            }
        }
        return IMAPListResponse(attributes: attributes, delimiter: delimiter, mailbox: mb, extended: extended)
    }

    /// `esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)`.
    mutating func esearch() throws -> IMAPESearchResponse {
        var e = IMAPESearchResponse(tag: nil, uid: false, items: [])
        while skipSpaces(), !atEnd {
            if peek == UInt8(ascii: "("), e.tag == nil, !e.uid, e.items.isEmpty {
                try enter()
                _ = take(UInt8(ascii: "("))
                guard keyword() == "TAG" else { throw fail("expected TAG") }
                try sp()
                e.tag = try stringText()
                skipSpaces()
                try expect(UInt8(ascii: ")"), ")")
                leave()
                continue
            }
            let name = try atom()
            let upper = name.uppercased()
            if upper == "UID", !e.uid, e.items.isEmpty { e.uid = true; continue }
            try sp()
            switch upper {
            case "MIN": e.items.append(.min(try nzNumber32()))
            case "MAX": e.items.append(.max(try nzNumber32()))
            case "COUNT": e.items.append(.count(try number()))
            case "MODSEQ": e.items.append(.modseq(try number()))
            case "ALL": e.items.append(.all(try sequenceSet()))
            default: e.items.append(.other(name, try value()))
            }
        }
        return e
    }

    /// `thread-list = "(" (thread-members / thread-nested) ")"`.
    mutating func threadList() throws -> IMAPThreadList {
        try enter()
        defer { leave() }
        try expect(UInt8(ascii: "("), "(")
        var t = IMAPThreadList([])
        skipSpaces()
        while let b = peek, IMAPResponseGrammar.isDigit(b) {
            t.members.append(try nzNumber32())
            skipSpaces()
        }
        while peek == UInt8(ascii: "(") {
            t.branches.append(try threadList())
            skipSpaces()
        }
        try expect(UInt8(ascii: ")"), ")")
        guard !t.members.isEmpty || !t.branches.isEmpty else { throw fail("empty thread list") }
        return t
    }

    /// `Namespace = nil / "(" 1*Namespace-Descr ")"`.
    mutating func namespaces() throws -> [IMAPNamespace] {
        if takeNil() { return [] }
        try enter()
        defer { leave() }
        try expect(UInt8(ascii: "("), "(")
        var out: [IMAPNamespace] = []
        skipSpaces()
        while peek == UInt8(ascii: "(") {
            try enter()
            _ = take(UInt8(ascii: "("))
            let prefix = try stringText()
            try sp()
            var n = IMAPNamespace(prefix, try delimiter())
            while skipSpaces(), peek != UInt8(ascii: ")") {
                let name = try stringText()
                try sp()
                n.extensions.append(IMAPNamespace.Extension(name, try list { try $0.stringText() }))
            }
            try expect(UInt8(ascii: ")"), ")")
            leave()
            out.append(n)
            skipSpaces()
        }
        try expect(UInt8(ascii: ")"), ")")
        guard !out.isEmpty else { throw fail("empty namespace list") }
        return out
    }
}
