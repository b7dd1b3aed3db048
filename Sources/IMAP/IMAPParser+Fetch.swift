extension IMAPParser {
    /// `"ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"` (RFC 9051 §6.4.5).
    mutating func fetchItems() throws -> [IMAPFetchItem] {
        if take(UInt8(ascii: "(")) {
            var items: [IMAPFetchItem] = []
            while !take(UInt8(ascii: ")")) {
                if !items.isEmpty { try space() }
                items.append(try fetchAtt())
            }
            guard !items.isEmpty else { throw fail("Empty FETCH list") }
            return items
        }
        let save = i
        let word = run { IMAPParser.isAtomChar($0) && $0 != UInt8(ascii: "[") }
        switch String(decoding: word, as: UTF8.self).uppercased() {
        case "ALL": return [.flags, .internalDate, .rfc822Size, .envelope]
        case "FAST": return [.flags, .internalDate, .rfc822Size]
        case "FULL": return [.flags, .internalDate, .rfc822Size, .envelope, .body]
        default:
            i = save
            return [try fetchAtt()]
        }
    }

    mutating func fetchAtt() throws -> IMAPFetchItem {
        let word = String(decoding: run { IMAPParser.isAtomChar($0) && $0 != UInt8(ascii: "[") && $0 != UInt8(ascii: "<") }, as: UTF8.self).uppercased()
        switch word {
        case "UID": return .uid
        case "FLAGS": return .flags
        case "INTERNALDATE": return .internalDate
        case "RFC822.SIZE": return .rfc822Size
        case "ENVELOPE": return .envelope
        case "BODYSTRUCTURE": return .bodyStructure
        case "MODSEQ": return .modseq
        case "RFC822": return .rfc822
        case "RFC822.HEADER": return .rfc822Header
        case "RFC822.TEXT": return .rfc822Text
        case "BODY", "BODY.PEEK":
            guard peekByte == UInt8(ascii: "[") else {
                guard word == "BODY" else { throw fail("BODY.PEEK needs a section") }
                return .body
            }
            let section = try section()
            return .bodySection(section, partial: try partial(), peek: word == "BODY.PEEK")
        case "BINARY", "BINARY.PEEK", "BINARY.SIZE":
            // RFC 3516 §4.2: section-binary = "[" [section-part] "]"
            try expect(UInt8(ascii: "["), "[")
            var part: [Int] = []
            if peekByte != UInt8(ascii: "]") { part = try sectionPart() }
            try expect(UInt8(ascii: "]"), "]")
            if word == "BINARY.SIZE" { return .binarySize(part) }
            return .binary(part, partial: try partial(), peek: word == "BINARY.PEEK")
        default:
            throw fail("Unknown FETCH attribute")
        }
    }

    /// `section = "[" [section-spec] "]"`
    mutating func section() throws -> IMAPSection {
        try expect(UInt8(ascii: "["), "[")
        var s = IMAPSection()
        if take(UInt8(ascii: "]")) { return s }
        if let b = peekByte, b >= 49 && b <= 57 {
            s.part = try sectionPart()
            if take(UInt8(ascii: "]")) { return s }
            try expect(UInt8(ascii: "."), ".")
        }
        let word = String(decoding: run { IMAPParser.isAtomChar($0) && $0 != UInt8(ascii: "[") }, as: UTF8.self).uppercased()
        switch word {
        case "HEADER": s.text = .header
        case "TEXT": s.text = .text
        case "MIME":
            guard !s.part.isEmpty else { throw fail("MIME needs a part number") }
            s.text = .mime
        case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
            try space()
            try expect(UInt8(ascii: "("), "(")
            var names: [String] = []
            while !take(UInt8(ascii: ")")) {
                if !names.isEmpty { try space() }
                names.append(try astring())
            }
            guard !names.isEmpty else { throw fail("Empty header list") }
            s.text = word == "HEADER.FIELDS" ? .headerFields(names) : .headerFieldsNot(names)
        default:
            throw fail("Unknown section")
        }
        try expect(UInt8(ascii: "]"), "]")
        return s
    }

    /// `section-part = nz-number *("." nz-number)`
    mutating func sectionPart() throws -> [Int] {
        var parts = [Int(try nzNumber())]
        while peekByte == UInt8(ascii: "."), i + 1 < units.count, case .byte(let n) = units[i + 1], n >= 48 && n <= 57 {
            i += 1
            parts.append(Int(try nzNumber()))
        }
        return parts
    }

    /// `partial = "<" number "." nz-number ">"`: first octet and count.
    mutating func partial() throws -> ClosedRange<Int>? {
        guard take(UInt8(ascii: "<")) else { return nil }
        let start = try number()
        // RFC 9051 §9: number is 32-bit; a larger offset would overflow below.
        guard start <= Int(UInt32.max) else { throw fail("Partial offset out of range") }
        try expect(UInt8(ascii: "."), ".")
        let count = Int(try nzNumber())
        try expect(UInt8(ascii: ">"), ">")
        return start...(start + count - 1)
    }
}
