extension IMAPParser {
    /// `search = "SEARCH" [search-return-opts] SP search-program` (RFC 9051 §6.4.4, RFC 4731 ESEARCH).
    mutating func search(uid: Bool) throws -> IMAPCommand {
        var returns: [String]?
        var charset: String?
        let save = i
        if let w = try? atom(), w.uppercased() == "RETURN" {
            try space()
            try expect(UInt8(ascii: "("), "(")
            var r: [String] = []
            while !take(UInt8(ascii: ")")) {
                if !r.isEmpty { try space() }
                r.append(try atom().uppercased())
            }
            returns = r
            try space()
        } else {
            i = save
        }
        let save2 = i
        if let w = try? atom(), w.uppercased() == "CHARSET" {
            try space()
            charset = try astring().uppercased()
            try space()
        } else {
            i = save2
        }
        return .search(try searchProgram(), uid: uid, returnOptions: returns, charset: charset)
    }

    /// One or more search keys, ANDed.
    mutating func searchProgram() throws -> IMAPSearchKey {
        var keys = [try searchKey(depth: 0)]
        while take(32) { keys.append(try searchKey(depth: 0)) }
        return keys.count == 1 ? keys[0] : .and(keys)
    }

    /// Nesting of NOT/OR/parentheses is bounded.
    static let maxSearchDepth = 64

    mutating func searchKey(depth: Int) throws -> IMAPSearchKey {
        guard depth < IMAPParser.maxSearchDepth else { throw fail("Search too deeply nested") }
        if take(UInt8(ascii: "(")) {
            var keys: [IMAPSearchKey] = []
            while !take(UInt8(ascii: ")")) {
                if !keys.isEmpty { try space() }
                keys.append(try searchKey(depth: depth + 1))
            }
            guard !keys.isEmpty else { throw fail("Empty search group") }
            return keys.count == 1 ? keys[0] : .and(keys)
        }
        if let b = peekByte, (b >= 48 && b <= 57) || b == UInt8(ascii: "*") || b == UInt8(ascii: "$") {
            return .sequence(try sequenceSet())
        }
        let word = try atom().uppercased()
        func arg() throws -> String { try space(); return try astring() }
        func num() throws -> Int { try space(); return try number() }
        switch word {
        case "ALL": return .all
        case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN":
            return .flag("\\" + word.prefix(1) + word.dropFirst().lowercased(), set: true)
        case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
            let f = word.dropFirst(2)
            return .flag("\\" + f.prefix(1) + f.dropFirst().lowercased(), set: false)
        case "NEW": return .and([.flag("\\Recent", set: true), .flag("\\Seen", set: false)])
        case "OLD": return .flag("\\Recent", set: false)
        case "RECENT": return .flag("\\Recent", set: true)
        case "KEYWORD": try space(); return .keyword(try flag(), set: true)
        case "UNKEYWORD": try space(); return .keyword(try flag(), set: false)
        case "BCC", "CC", "FROM", "SUBJECT", "TO": return .header(word.prefix(1) + word.dropFirst().lowercased(), try arg())
        case "HEADER":
            let name = try arg()
            return .header(name, try arg())
        case "BODY": return .body(try arg())
        case "TEXT": return .text(try arg())
        case "BEFORE": return .before(try arg())
        case "ON": return .on(try arg())
        case "SINCE": return .since(try arg())
        case "SENTBEFORE": return .sentBefore(try arg())
        case "SENTON": return .sentOn(try arg())
        case "SENTSINCE": return .sentSince(try arg())
        case "LARGER": return .larger(try num())
        case "SMALLER": return .smaller(try num())
        case "UID": try space(); return .uid(try sequenceSet())
        case "NOT": try space(); return .not(try searchKey(depth: depth + 1))
        case "OR":
            try space()
            let a = try searchKey(depth: depth + 1)
            try space()
            return .or(a, try searchKey(depth: depth + 1))
        case "MODSEQ":
            // RFC 7162 §3.1.5: MODSEQ [entry-name entry-type] mod-sequence-valzer
            try space()
            if startsString {
                _ = try string()
                try space()
                _ = try atom()
                try space()
            }
            return .modseq(Int64(try number()))
        default:
            throw fail("Unknown search key \(word)")
        }
    }
}
