/// Writes an `IMAPCommand` the way a client sends it (RFC 9051 §6, §9): the
/// inverse of `IMAPParser`. `encode` gives the pieces `IMAPCommandAssembler`
/// would hand to the parser (text, literal octets, text, ...: literal
/// announcements left out, a `~` before a literal8); `wire` turns them into
/// bytes with `{n}` / `{n+}` announcements and the final CRLF.
///
/// ```
/// C: A003 APPEND saved-messages (\Seen) {326}      chunk 1: wait for "+"
/// S: + Ready for literal data
/// C: Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)    chunk 2: the literal, then CRLF
/// ```
///
/// Strings go as atoms when the grammar allows and every character is an
/// atom character, as quoted strings when they can be, and as literals when
/// they hold CR, LF, NUL, 8-bit octets (unless `utf8Quoted`), or are long.
/// Mailbox names are written as given: the caller encodes them in modified
/// UTF-7 (`ModifiedUTF7.encode`) for an IMAP4rev1 server. Atoms the grammar
/// requires (flags, capability and mechanism names, status items) are
/// written as given too.
public enum IMAPCommandEncoder {
    public struct Options: Hashable, Sendable {
        /// Quoted strings may carry UTF-8 (IMAP4rev2, or UTF8=ACCEPT enabled; RFC 9051 §4.3, RFC 6855).
        public var utf8Quoted: Bool
        /// Longer strings go as literals, which keeps lines short.
        public var maxQuotedLength: Int
        public init(utf8Quoted: Bool = false, maxQuotedLength: Int = 1000) {
            self.utf8Quoted = utf8Quoted; self.maxQuotedLength = maxQuotedLength
        }
    }

    public enum LiteralMode: Hashable, Sendable {
        /// `{n}`: the client waits for a continuation request before each literal.
        case synchronizing
        /// `{n+}` (RFC 7888 LITERAL+): no waiting.
        case nonSynchronizing
        /// RFC 7888 LITERAL-: `{n+}` up to 4096 octets, `{n}` above.
        case literalMinus

        func synchronizes(_ count: Int) -> Bool {
            switch self {
            case .synchronizing: return true
            case .nonSynchronizing: return false
            case .literalMinus: return count > 4096
            }
        }
    }

    public static func encode(tag: String, _ command: IMAPCommand, options: Options = Options()) -> [IMAPToken.Piece] {
        var b = Builder(options: options)
        b.raw(tag)
        b.sp()
        b.command(command)
        return b.finish()
    }

    /// The bytes to send, cut where the client must wait for `+` before a
    /// synchronizing literal; one chunk when no wait is needed.
    public static func wire(_ pieces: [IMAPToken.Piece], literals: LiteralMode = .synchronizing) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        var current: [UInt8] = []
        for (k, piece) in pieces.enumerated() {
            switch piece {
            case .text(let t):
                current += t
                if k + 1 < pieces.count, case .literal(let l) = pieces[k + 1] {
                    let sync = literals.synchronizes(l.count)
                    current += Array((sync ? "{\(l.count)}\r\n" : "{\(l.count)+}\r\n").utf8)
                    if sync {
                        chunks.append(current)
                        current = []
                    }
                }
            case .literal(let l):
                current += l
            }
        }
        current += [13, 10]
        chunks.append(current)
        return chunks
    }

    /// The whole command as bytes (the chunks of `wire` joined): what a
    /// LITERAL+ client sends at once, or a test feeds a server.
    public static func bytes(tag: String, _ command: IMAPCommand, literals: LiteralMode = .nonSynchronizing,
                             options: Options = Options()) -> [UInt8] {
        wire(encode(tag: tag, command, options: options), literals: literals).flatMap { $0 }
    }

    struct Builder {
        let options: Options
        var pieces: [IMAPToken.Piece] = []
        var text: [UInt8] = []

        init(options: Options) { self.options = options }

        mutating func raw(_ s: String) { text += s.utf8 }
        mutating func sp() { text.append(32) }

        mutating func literal(_ bytes: [UInt8], binary: Bool = false) {
            if binary { text.append(UInt8(ascii: "~")) }
            pieces.append(.text(text))
            pieces.append(.literal(bytes))
            text = []
        }

        mutating func finish() -> [IMAPToken.Piece] {
            pieces.append(.text(text))
            return pieces
        }

        /// `string = quoted / literal`.
        mutating func string(_ s: String) {
            let u = Array(s.utf8)
            let quotable = u.count <= options.maxQuotedLength
                && u.allSatisfy { $0 != 13 && $0 != 10 && $0 != 0 && ($0 < 0x80 || options.utf8Quoted) }
            guard quotable else { literal(u); return }
            text.append(UInt8(ascii: "\""))
            for b in u {
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { text.append(UInt8(ascii: "\\")) }
                text.append(b)
            }
            text.append(UInt8(ascii: "\""))
        }

        /// `astring`: an atom when possible (never NIL, which reads as nil elsewhere).
        mutating func astring(_ s: String) {
            let u = Array(s.utf8)
            if !u.isEmpty, u.allSatisfy(IMAPParser.isAstringChar), s.uppercased() != "NIL" { text += u } else { string(s) }
        }

        /// `list-mailbox = 1*list-char / string`.
        mutating func listMailbox(_ s: String) {
            let u = Array(s.utf8)
            if !u.isEmpty, u.allSatisfy(IMAPParser.isListChar), s.uppercased() != "NIL" { text += u } else { string(s) }
        }

        mutating func list(_ items: [String]) { raw("(" + items.joined(separator: " ") + ")") }

        mutating func set(_ s: IMAPSequenceSet) { raw(s.wireText) }

        mutating func command(_ c: IMAPCommand) {
            switch c {
            case .capability: raw("CAPABILITY")
            case .noop: raw("NOOP")
            case .logout: raw("LOGOUT")
            case .startTLS: raw("STARTTLS")
            case .idle: raw("IDLE")
            case .check: raw("CHECK")
            case .close: raw("CLOSE")
            case .unselect: raw("UNSELECT")
            case .expunge: raw("EXPUNGE")
            case .namespace: raw("NAMESPACE")
            case .login(let user, let password):
                raw("LOGIN "); astring(user); sp(); astring(password)
            case .authenticate(let mechanism, let initial):
                // RFC 4959: the initial response is base64, "=" when empty, never quoted.
                raw("AUTHENTICATE " + mechanism)
                if let initial { raw(" " + (initial.isEmpty ? "=" : initial)) }
            case .enable(let caps): raw((["ENABLE"] + caps).joined(separator: " "))
            case .id(let params):
                raw("ID ")
                guard let params else { raw("NIL"); break }
                raw("(")
                for (k, key) in params.keys.sorted().enumerated() {
                    if k > 0 { sp() }
                    string(key)
                    sp()
                    if let v = params[key], !v.isEmpty { string(v) } else { raw("NIL") }
                }
                raw(")")
            case .select(let mb, let condstore, let qresync):
                raw("SELECT "); selectArguments(mb, condstore, qresync)
            case .examine(let mb, let condstore, let qresync):
                raw("EXAMINE "); selectArguments(mb, condstore, qresync)
            case .create(let mb): raw("CREATE "); astring(mb)
            case .delete(let mb): raw("DELETE "); astring(mb)
            case .rename(let from, let to): raw("RENAME "); astring(from); sp(); astring(to)
            case .subscribe(let mb): raw("SUBSCRIBE "); astring(mb)
            case .unsubscribe(let mb): raw("UNSUBSCRIBE "); astring(mb)
            case .list(let reference, let patterns, let selection, let returns):
                listCommand(reference, patterns, selection, returns)
            case .lsub(let reference, let pattern):
                raw("LSUB "); astring(reference); sp(); listMailbox(pattern)
            case .status(let mb, let items):
                raw("STATUS "); astring(mb); sp(); list(items)
            case .append(let mb, let flags, let date, let message, let binary, let utf8):
                raw("APPEND "); astring(mb)
                if !flags.isEmpty { sp(); list(flags) }
                if let date { sp(); string(date) }
                sp()
                if utf8 {
                    // RFC 6855 §4: UTF8 (literal8)
                    raw("UTF8 (")
                    literal(message, binary: true)
                    raw(")")
                } else {
                    literal(message, binary: binary)
                }
            case .uidExpunge(let s): raw("UID EXPUNGE "); set(s)
            case .fetch(let s, let items, let uid, let changedSince, let vanished):
                raw(uid ? "UID FETCH " : "FETCH "); set(s); sp()
                fetchItems(items)
                var modifiers: [String] = []
                if let changedSince { modifiers.append("CHANGEDSINCE \(changedSince)") }
                if vanished { modifiers.append("VANISHED") }
                if !modifiers.isEmpty { raw(" (" + modifiers.joined(separator: " ") + ")") }
            case .store(let s, let mode, let silent, let flags, let uid, let unchangedSince):
                raw(uid ? "UID STORE " : "STORE "); set(s); sp()
                if let unchangedSince { raw("(UNCHANGEDSINCE \(unchangedSince)) ") }
                switch mode {
                case .replace: raw("FLAGS")
                case .add: raw("+FLAGS")
                case .remove: raw("-FLAGS")
                }
                if silent { raw(".SILENT") }
                sp()
                list(flags)
            case .copy(let s, let mb, let uid): raw(uid ? "UID COPY " : "COPY "); set(s); sp(); astring(mb)
            case .move(let s, let mb, let uid): raw(uid ? "UID MOVE " : "MOVE "); set(s); sp(); astring(mb)
            case .search(let key, let uid, let returns, let charset):
                raw(uid ? "UID SEARCH" : "SEARCH")
                if let returns { raw(" RETURN "); list(returns) }
                if let charset { raw(" CHARSET "); astring(charset) }
                sp()
                program(key)
            case .sort(let criteria, let charset, let key, let uid):
                raw(uid ? "UID SORT " : "SORT ")
                list(criteria.map { ($0.reverse ? "REVERSE " : "") + $0.key.rawValue })
                sp(); astring(charset); sp()
                program(key)
            case .thread(let algorithm, let charset, let key, let uid):
                raw(uid ? "UID THREAD " : "THREAD ")
                raw(algorithm); sp(); astring(charset); sp()
                program(key)
            case .getQuota(let root): raw("GETQUOTA "); string(root)
            case .getQuotaRoot(let mb): raw("GETQUOTAROOT "); astring(mb)
            case .setQuota(let root, let limits):
                raw("SETQUOTA "); string(root); sp()
                list(limits.map { "\($0.resource) \($0.limit)" })
            case .compress(let mechanism): raw("COMPRESS " + mechanism)
            }
        }

        /// RFC 7162 §3.1.8, §3.2.5: `mailbox [SP "(" select-param *(SP select-param) ")"]`.
        mutating func selectArguments(_ mb: String, _ condstore: Bool, _ qresync: IMAPQResync?) {
            astring(mb)
            var params: [String] = []
            if condstore { params.append("CONDSTORE") }
            if let q = qresync {
                var p = "QRESYNC (\(q.uidValidity) \(q.modseq)"
                if let known = q.knownUIDs { p += " " + known.wireText }
                if let seqs = q.knownSequences, let uids = q.knownSequenceUIDs {
                    p += " (" + seqs.wireText + " " + uids.wireText + ")"
                }
                params.append(p + ")")
            }
            if !params.isEmpty { raw(" (" + params.joined(separator: " ") + ")") }
        }

        /// RFC 5258 §6 / RFC 9051 §6.3.9.
        mutating func listCommand(_ reference: String, _ patterns: [String], _ selection: [String], _ returns: [IMAPListReturn]) {
            raw("LIST ")
            if !selection.isEmpty { list(selection); sp() }
            astring(reference)
            sp()
            if patterns.count == 1 {
                listMailbox(patterns[0])
            } else {
                raw("(")
                for (k, p) in patterns.enumerated() {
                    if k > 0 { sp() }
                    listMailbox(p)
                }
                raw(")")
            }
            guard !returns.isEmpty else { return }
            raw(" RETURN ")
            list(returns.map { r -> String in
                switch r {
                case .subscribed: return "SUBSCRIBED"
                case .children: return "CHILDREN"
                case .specialUse: return "SPECIAL-USE"
                case .status(let items): return "STATUS (" + items.joined(separator: " ") + ")"
                }
            })
        }

        static let macros: [(String, [IMAPFetchItem])] = [
            ("ALL", [.flags, .internalDate, .rfc822Size, .envelope]),
            ("FAST", [.flags, .internalDate, .rfc822Size]),
            ("FULL", [.flags, .internalDate, .rfc822Size, .envelope, .body]),
        ]

        /// `"ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"`.
        mutating func fetchItems(_ items: [IMAPFetchItem]) {
            if let macro = Builder.macros.first(where: { $0.1 == items }) { raw(macro.0); return }
            if items.count == 1 { fetchAtt(items[0]); return }
            raw("(")
            for (k, item) in items.enumerated() {
                if k > 0 { sp() }
                fetchAtt(item)
            }
            raw(")")
        }

        mutating func fetchAtt(_ item: IMAPFetchItem) {
            func partial(_ r: ClosedRange<Int>?) -> String {
                r.map { "<\($0.lowerBound).\($0.count)>" } ?? ""
            }
            func binaryPart(_ p: [Int]) -> String { "[" + p.map(String.init).joined(separator: ".") + "]" }
            switch item {
            case .uid: raw("UID")
            case .flags: raw("FLAGS")
            case .internalDate: raw("INTERNALDATE")
            case .rfc822Size: raw("RFC822.SIZE")
            case .envelope: raw("ENVELOPE")
            case .bodyStructure: raw("BODYSTRUCTURE")
            case .body: raw("BODY")
            case .modseq: raw("MODSEQ")
            case .rfc822: raw("RFC822")
            case .rfc822Header: raw("RFC822.HEADER")
            case .rfc822Text: raw("RFC822.TEXT")
            case .bodySection(let section, let p, let peek):
                raw((peek ? "BODY.PEEK" : "BODY") + "[")
                self.section(section)
                raw("]" + partial(p))
            case .binary(let part, let p, let peek):
                raw((peek ? "BINARY.PEEK" : "BINARY") + binaryPart(part) + partial(p))
            case .binarySize(let part):
                raw("BINARY.SIZE" + binaryPart(part))
            }
        }

        /// `section-spec` (between the brackets); header names are astrings.
        mutating func section(_ s: IMAPSection) {
            raw(s.part.map(String.init).joined(separator: "."))
            let names: [String]
            let spec: String
            switch s.text {
            case .whole: return
            case .header: spec = "HEADER"; names = []
            case .text: spec = "TEXT"; names = []
            case .mime: spec = "MIME"; names = []
            case .headerFields(let l): spec = "HEADER.FIELDS"; names = l
            case .headerFieldsNot(let l): spec = "HEADER.FIELDS.NOT"; names = l
            }
            if !s.part.isEmpty { raw(".") }
            raw(spec)
            if !names.isEmpty { headerList(names) }
        }

        mutating func headerList(_ names: [String]) {
            raw(" (")
            for (k, n) in names.enumerated() {
                if k > 0 { sp() }
                astring(n)
            }
            raw(")")
        }

        /// `search-program`: keys separated by spaces, ANDed.
        mutating func program(_ key: IMAPSearchKey) {
            if case .and(let keys) = key, keys.count > 1 {
                for (k, x) in keys.enumerated() {
                    if k > 0 { sp() }
                    searchKey(x)
                }
            } else {
                searchKey(key)
            }
        }

        static let systemFlags: [String: String] = [
            "\\ANSWERED": "ANSWERED", "\\DELETED": "DELETED", "\\DRAFT": "DRAFT", "\\FLAGGED": "FLAGGED", "\\SEEN": "SEEN",
        ]
        static let headerKeys: [String: String] = ["Bcc": "BCC", "Cc": "CC", "From": "FROM", "Subject": "SUBJECT", "To": "TO"]

        /// `search-key` (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 7162 §3.1.5).
        mutating func searchKey(_ key: IMAPSearchKey) {
            switch key {
            case .all: raw("ALL")
            case .and(let keys):
                switch keys.count {
                case 0: raw("ALL")
                case 1: searchKey(keys[0])
                default:
                    raw("(")
                    program(key)
                    raw(")")
                }
            case .or(let a, let b): raw("OR "); searchKey(a); sp(); searchKey(b)
            case .not(let k): raw("NOT "); searchKey(k)
            case .sequence(let s): set(s)
            case .uid(let s): raw("UID "); set(s)
            case .flag(let name, let isSet):
                let upper = name.uppercased()
                if let word = Builder.systemFlags[upper] {
                    raw(isSet ? word : "UN" + word)
                } else if upper == "\\RECENT" {
                    raw(isSet ? "RECENT" : "OLD")
                } else {
                    raw((isSet ? "KEYWORD " : "UNKEYWORD ") + name)
                }
            case .keyword(let flag, let isSet): raw((isSet ? "KEYWORD " : "UNKEYWORD ") + flag)
            case .header(let name, let value):
                if let short = Builder.headerKeys[name] {
                    raw(short + " ")
                } else {
                    raw("HEADER "); string(name); sp()
                }
                string(value)
            case .body(let s): raw("BODY "); string(s)
            case .text(let s): raw("TEXT "); string(s)
            case .before(let d): raw("BEFORE "); astring(d)
            case .on(let d): raw("ON "); astring(d)
            case .since(let d): raw("SINCE "); astring(d)
            case .sentBefore(let d): raw("SENTBEFORE "); astring(d)
            case .sentOn(let d): raw("SENTON "); astring(d)
            case .sentSince(let d): raw("SENTSINCE "); astring(d)
            case .larger(let n): raw("LARGER \(n)")
            case .smaller(let n): raw("SMALLER \(n)")
            case .modseq(let n): raw("MODSEQ \(n)")
            }
        }
    }
}
