/// Parses RFC 5322 §3.4 address lists (with §4.4 obsolete forms) leniently:
/// never fails, skips what it cannot place, and returns what it found.
public enum AddressParser {
    /// Bounds work on absurd headers; RFC 5322 sets no limit.
    public static let maximumAddresses = 10_000

    /// `address-list = address *("," address)`; `address = mailbox / group`.
    public static func parseList(_ value: [UInt8]) -> [AddressListEntry] {
        var cursor = Cursor(tokens: HeaderTokenizer.tokenize(value))
        var entries: [AddressListEntry] = []
        var count = 0
        while !cursor.atEnd, count < maximumAddresses {
            if cursor.peekSpecial(",") || cursor.peekSpecial(";") || cursor.peekSpecial(">") { cursor.advance(); continue }
            let before = cursor.position
            if let groupName = cursor.groupName() {
                // §3.4 group = display-name ":" [group-list] ";"
                var members: [Address] = []
                while !cursor.atEnd, !cursor.peekSpecial(";"), count < maximumAddresses {
                    if cursor.peekSpecial(",") { cursor.advance(); continue }
                    let p = cursor.position
                    if let m = cursor.mailbox() { members.append(m); count += 1 }
                    if cursor.position == p { cursor.advance() }
                }
                if cursor.peekSpecial(";") { cursor.advance() }
                entries.append(.group(name: groupName, members: members))
            } else if let m = cursor.mailbox() {
                entries.append(.mailbox(m))
                count += 1
            }
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

    /// If a phrase followed by ":" starts here, consumes both and returns the
    /// phrase. A ":" inside "<…>" (obs-route) does not count.
    mutating func groupName() -> [UInt8]? {
        var i = position
        while i < tokens.count {
            let t = tokens[i]
            if t.kind == .special && t.bytes != [0x2E] {
                guard t.isSpecial(ASCII.colon) else { return nil }
                let name = Cursor.phrase(tokens[position..<i])
                position = i + 1
                return name
            }
            i += 1
        }
        return nil
    }

    /// `mailbox = name-addr / addr-spec` (§3.4), also a bare local part.
    mutating func mailbox() -> Address? {
        let start = position
        var i = position
        while i < tokens.count {
            let t = tokens[i]
            if t.kind == .special && t.bytes != [0x2E] { break }
            i += 1
        }
        if i < tokens.count, tokens[i].isSpecial(0x3C) {
            // name-addr = [display-name] angle-addr
            let nameTokens = tokens[start..<i]
            let phrase = Cursor.phrase(nameTokens)
            position = i + 1
            var address = angleAddress()
            address.name = phrase.isEmpty ? Cursor.firstComment(nameTokens) : phrase
            return address
        }
        // addr-spec = local-part "@" domain
        position = start
        var address = Address()
        var comments: [HeaderToken] = []
        let local = collectWord(until: [0x40, 0x2C, 0x3B, 0x3C], comments: &comments)
        if peekSpecial("@") {
            advance()
            address.host = collectWord(until: [0x2C, 0x3B, 0x3C, 0x3E], comments: &comments)
        }
        guard !local.isEmpty || address.host != nil else { return nil }
        address.mailbox = local
        address.name = Cursor.firstComment(comments[...])
        return address
    }

    /// After "<": `[obs-route] addr-spec ">"`.
    mutating func angleAddress() -> Address {
        var address = Address()
        var comments: [HeaderToken] = []
        if peekSpecial("@") {
            // RFC 5322 §4.4 obs-route = obs-domain-list ":"
            var route: [UInt8] = []
            while !atEnd, !peekSpecial(":"), !peekSpecial(">") {
                if tokens[position].kind != .comment { route += tokens[position].bytes }
                advance()
            }
            if peekSpecial(":") { advance() }
            address.route = route.isEmpty ? nil : route
        }
        let local = collectWord(until: [0x40, 0x3E], comments: &comments)
        address.mailbox = local
        if peekSpecial("@") {
            advance()
            address.host = collectWord(until: [0x3E, 0x2C, 0x3B], comments: &comments)
        }
        // Skip anything up to and including ">".
        while !atEnd, !peekSpecial(">"), !peekSpecial(",") { advance() }
        if peekSpecial(">") { advance() }
        if address.mailbox?.isEmpty == true && address.host == nil { address.mailbox = nil }
        return address
    }

    /// Joins atoms, quoted strings, dots and literals into one word
    /// (dot-atom / obs-local-part / domain), stopping at any of `stops`.
    mutating func collectWord(until stops: [UInt8], comments: inout [HeaderToken]) -> [UInt8] {
        var out: [UInt8] = []
        while !atEnd {
            let t = tokens[position]
            if t.kind == .special, let c = t.bytes.first, stops.contains(c) { break }
            let isDot = t.kind == .special && t.bytes == [0x2E]
            if t.kind == .comment {
                comments.append(t)
            } else if t.kind != .special || isDot {
                // Words separated by whitespace (a broken "John Doe" without
                // brackets) keep one space; "a . b" dot-atoms are closed up.
                if t.spaceBefore, !isDot, let last = out.last, last != 0x2E { out.append(ASCII.space) }
                out += t.bytes
            }
            // Any other stray special inside an address is dropped.
            advance()
        }
        return out
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
