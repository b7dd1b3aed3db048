/// Parses RFC 5322 §3.4 address lists (with §4.4 obsolete forms) leniently:
/// never fails, skips what it cannot place, and returns what it found.
///
/// Recovery follows the list grammar: addresses are separated by ","
/// (`address-list = address *("," address)`), so when a mailbox is followed
/// by anything else, the rest up to the next "," (or the ";" closing a
/// group) is skipped. `a@b <c@d>` is therefore one address, a@b: an
/// unquoted display name is a phrase and cannot contain "@" (§3.2.5), so
/// the only reading the grammar allows is an addr-spec followed by junk.
public enum AddressParser {
    /// Bounds work on absurd headers; RFC 5322 sets no limit.
    public static let maximumAddresses = 10_000

    /// `address-list = address *("," address)`; `address = mailbox / group`.
    public static func parseList(_ value: [UInt8]) -> [AddressListEntry] {
        var cursor = Cursor(tokens: HeaderTokenizer.tokenize(value))
        var entries: [AddressListEntry] = []
        var count = 0
        while !cursor.atEnd, count < maximumAddresses {
            // §4.4 obs-addr-list: empty list elements ("a, , b") are allowed and ignored.
            if cursor.peekSpecial(",") || cursor.peekSpecial(";") || cursor.peekSpecial(">") { cursor.advance(); continue }
            let before = cursor.position
            if let groupName = cursor.groupName() {
                // §3.4 group = display-name ":" [group-list] ";"
                var members: [Address] = []
                while !cursor.atEnd, !cursor.peekSpecial(";"), count < maximumAddresses {
                    if cursor.peekSpecial(",") { cursor.advance(); continue }
                    let p = cursor.position
                    if let m = cursor.mailbox() { members.append(m); count += 1 }
                    cursor.skipJunk(inGroup: true)
                    if cursor.position == p { cursor.advance() }
                }
                if cursor.peekSpecial(";") { cursor.advance() }
                entries.append(.group(name: groupName, members: members))
            } else if let m = cursor.mailbox() {
                entries.append(.mailbox(m))
                count += 1
            }
            cursor.skipJunk(inGroup: false)
            if cursor.position == before { cursor.advance() }
        }
        return entries
    }

    /// Every mailbox in the list, group members included (for display).
    public static func parseMailboxes(_ value: [UInt8]) -> [Address] {
        parseList(value).flatMap { entry -> [Address] in
            switch entry {
            case .mailbox(let a): return [a]
            case .group(_, let members): return members
            }
        }
    }
}

private struct Cursor {
    var tokens: [HeaderToken]
    var position = 0

    var atEnd: Bool { position >= tokens.count }
    mutating func advance() { position += 1 }
    func peekSpecial(_ c: Character) -> Bool {
        position < tokens.count && tokens[position].isSpecial(c.asciiValue!)
    }

    static func isDot(_ t: HeaderToken) -> Bool { t.isSpecial(0x2E) }
    /// RFC 5322 §3.2.5 word = atom / quoted-string.
    static func isWord(_ t: HeaderToken) -> Bool { t.kind == .atom || t.kind == .quoted }

    /// If a phrase followed by ":" starts here, consumes both and returns the
    /// phrase. A ":" inside "<…>" (obs-route) does not count.
    mutating func groupName() -> [UInt8]? {
        var i = position
        while i < tokens.count {
            let t = tokens[i]
            if t.kind == .special && !Cursor.isDot(t) {
                guard t.isSpecial(ASCII.colon) else { return nil }
                let name = Cursor.phrase(tokens[position..<i])
                position = i + 1
                return name
            }
            i += 1
        }
        return nil
    }

    /// Skips what follows a mailbox up to the "," that ends it (or, in a
    /// group, the ";" that ends the group), leaving that separator unread.
    /// "<…>" is skipped whole, so a "," inside it does not count.
    mutating func skipJunk(inGroup: Bool) {
        var depth = 0
        while !atEnd {
            let t = tokens[position]
            if depth == 0, t.isSpecial(0x2C) || (inGroup && t.isSpecial(ASCII.semicolon)) { return }
            if t.isSpecial(0x3C) { depth += 1 } else if t.isSpecial(0x3E), depth > 0 { depth -= 1 }
            advance()
        }
    }

    /// `mailbox = name-addr / addr-spec` (§3.4), read leniently:
    /// - `[phrase] "<" … ">"`: a name-addr (see `angleAddress`);
    /// - `local-part ["@" domain]`: an addr-spec, or a bare local part
    ///   without domain; a comment gives the name;
    /// - words with white space between them, or a lone quoted-string,
    ///   followed by neither "<" nor "@": a display name whose address is
    ///   missing.
    /// Stops after the mailbox; what follows is the caller's to skip.
    mutating func mailbox() -> Address? {
        let start = position
        // The run a display-name could span: words, "." (§4.1 obs-phrase),
        // comments, and "[…]" as in "[Bot] Jenkins <a@b>" (not RFC syntax,
        // but common enough to keep as part of the name).
        var end = start
        while end < tokens.count {
            let t = tokens[end]
            guard Cursor.isWord(t) || Cursor.isDot(t) || t.kind == .comment || t.kind == .domainLiteral else { break }
            end += 1
        }
        if end < tokens.count, tokens[end].isSpecial(0x3C) {
            // name-addr = [display-name] angle-addr
            let nameTokens = tokens[start..<end]
            let phrase = Cursor.phrase(nameTokens)
            position = end + 1
            var address = angleAddress()
            address.name = phrase.isEmpty ? Cursor.firstComment(nameTokens) : phrase
            return address
        }
        var comments: [HeaderToken] = []
        let local = localPart(comments: &comments)
        if peekSpecial("@") {
            // addr-spec = local-part "@" domain
            advance()
            var address = Address(mailbox: local.isEmpty ? nil : local)
            address.host = domain(comments: &comments)
            takeComments(into: &comments)
            address.name = Cursor.firstComment(comments[...])
            return address
        }
        // A local part without domain is already outside RFC 5322 (local
        // recipients such as "root" are its only use): words with white
        // space between them ("x y z", "J. Smith"), or a quoted string alone,
        // are read as the display name of a missing address instead.
        let words = tokens[start..<end].filter { $0.kind != .comment }
        if position < end || words.dropFirst().contains(where: \.spaceBefore) || words.first?.kind == .quoted {
            position = end
            return Address(name: Cursor.phrase(tokens[start..<end]))
        }
        guard !local.isEmpty else { position = start; return nil }
        takeComments(into: &comments)
        return Address(name: Cursor.firstComment(comments[...]), mailbox: local)
    }

    /// After "<": `[obs-route] addr-spec ">"`. `<>` (RFC 5321's null path)
    /// gives an address with neither local part nor domain. Anything
    /// other than ">" where the address should end makes the address a
    /// syntax error (`hasSyntaxError`) holding what was read before it;
    /// the rest up to ">" is skipped. A missing ">" at the end of the field
    /// or before "," is forgiven.
    mutating func angleAddress() -> Address {
        var address = Address()
        var comments: [HeaderToken] = []
        if peekSpecial("@"), let colon = routeEnd() {
            // RFC 5322 §4.4 obs-route = obs-domain-list ":"
            var route: [UInt8] = []
            for t in tokens[position..<colon] where t.kind != .comment { route += t.bytes }
            position = colon + 1
            address.route = route.isEmpty ? nil : route
        }
        let local = localPart(comments: &comments)
        address.mailbox = local.isEmpty ? nil : local
        if peekSpecial("@") {
            advance()
            address.host = domain(comments: &comments)
        }
        takeComments(into: &comments)
        if peekSpecial(">") {
            advance()
        } else if !atEnd, !peekSpecial(",") {
            address.hasSyntaxError = true
            while !atEnd, !peekSpecial(">"), !peekSpecial(",") { advance() }
            if peekSpecial(">") { advance() }
        }
        return address
    }

    /// The index of the ":" ending an obs-route that starts here, if the
    /// angle-addr has one (a "@" first is otherwise an empty local part).
    func routeEnd() -> Int? {
        var i = position
        while i < tokens.count {
            if tokens[i].isSpecial(ASCII.colon) { return i }
            if tokens[i].isSpecial(0x3E) || tokens[i].isSpecial(0x3C) { return nil }
            i += 1
        }
        return nil
    }

    /// RFC 5322 §3.4.1 local-part: dot-atom / quoted-string, or §4.4
    /// obs-local-part (`word *("." word)`, dots also leading, trailing or
    /// doubled as real mail has them). Stops before a word that follows a
    /// word with no "." between: that is no longer one local part.
    mutating func localPart(comments: inout [HeaderToken]) -> [UInt8] {
        var out: [UInt8] = []
        var afterWord = false
        while !atEnd {
            let t = tokens[position]
            if t.kind == .comment {
                comments.append(t)
            } else if Cursor.isDot(t) {
                out += t.bytes
                afterWord = false
            } else if Cursor.isWord(t), !afterWord {
                out += t.bytes
                afterWord = true
            } else {
                break
            }
            advance()
        }
        return out
    }

    /// RFC 5322 §3.4.1 domain: dot-atom / domain-literal, or §4.4
    /// obs-domain (`atom *("." atom)`). Nil when nothing follows "@".
    mutating func domain(comments: inout [HeaderToken]) -> [UInt8]? {
        var out: [UInt8] = []
        var afterAtom = false
        while !atEnd {
            let t = tokens[position]
            if t.kind == .comment {
                comments.append(t)
            } else if Cursor.isDot(t) {
                out += t.bytes
                afterAtom = false
            } else if t.kind == .atom || t.kind == .domainLiteral, !afterAtom {
                out += t.bytes
                afterAtom = true
            } else {
                break
            }
            advance()
        }
        return out.isEmpty ? nil : out
    }

    /// Consumes comments that follow an address (`a@b (Name)`).
    mutating func takeComments(into comments: inout [HeaderToken]) {
        while !atEnd, tokens[position].kind == .comment {
            comments.append(tokens[position])
            advance()
        }
    }

    /// RFC 5322 §3.2.5 phrase, re-joined with single spaces where the
    /// original had whitespace; quoting removed; encoded words untouched.
    static func phrase(_ tokens: ArraySlice<HeaderToken>) -> [UInt8] {
        var out: [UInt8] = []
        for t in tokens where t.kind != .comment {
            if t.spaceBefore && !out.isEmpty { out.append(ASCII.space) }
            out += t.bytes
        }
        return out
    }

    static func firstComment(_ tokens: ArraySlice<HeaderToken>) -> [UInt8]? {
        guard let c = tokens.first(where: { $0.kind == .comment }) else { return nil }
        let text = c.bytes.trimmingWhitespace()
        return text.isEmpty ? nil : text
    }
}
