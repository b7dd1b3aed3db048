/// FETCH response items (RFC 9051 §7.5.2, RFC 3501 §7.4.2, RFC 3516 §4.3,
/// RFC 7162 §3.1.4): envelopes, body structures, sections.
extension IMAPResponseGrammar {
    mutating func fetchAttribute() throws -> IMAPMessageAttribute {
        let start = i
        let name = keyword()
        switch name {
        case "FLAGS":
            try sp()
            return .flags(try flagList())
        case "UID":
            try sp()
            return .uid(try nzNumber32())
        case "INTERNALDATE":
            try sp()
            return .internalDate(try stringText())
        case "RFC822.SIZE":
            try sp()
            return .rfc822Size(try number())
        case "ENVELOPE":
            try sp()
            return .envelope(try envelope())
        case "BODYSTRUCTURE":
            try sp()
            return .bodyStructure(try body())
        case "BODY", "BODY.PEEK":
            guard peek == UInt8(ascii: "[") else {
                try sp()
                return .body(try body())
            }
            let section = try section()
            let origin = try origin()
            try sp()
            return .bodySection(section, origin: origin, data: try nstring())
        case "BINARY", "BINARY.PEEK":
            let part = try binaryPart()
            let origin = try origin()
            try sp()
            return .binary(part, origin: origin, data: try nstring())
        case "BINARY.SIZE":
            let part = try binaryPart()
            try sp()
            return .binarySize(part, try number())
        case "MODSEQ":
            try sp()
            try enter()
            try expect(UInt8(ascii: "("), "(")
            let n = try number()
            try expect(UInt8(ascii: ")"), ")")
            leave()
            return .modseq(n)
        case "RFC822":
            try sp()
            return .rfc822(try nstring())
        case "RFC822.HEADER":
            try sp()
            return .rfc822Header(try nstring())
        case "RFC822.TEXT":
            try sp()
            return .rfc822Text(try nstring())
        default:
            // An extension's item (X-GM-LABELS, EMAILID, PREVIEW...): kept.
            i = start
            let raw = try atom()
            try sp()
            return .other(raw, try value())
        }
    }

    /// `["<" number ">"]` after a section.
    mutating func origin() throws -> Int64? {
        guard take(UInt8(ascii: "<")) else { return nil }
        let n = try number()
        try expect(UInt8(ascii: ">"), ">")
        return n
    }

    /// `section-binary = "[" [section-part] "]"`.
    mutating func binaryPart() throws -> [Int] {
        try expect(UInt8(ascii: "["), "[")
        var part: [Int] = []
        if peek != UInt8(ascii: "]") { part = try sectionPart() }
        try expect(UInt8(ascii: "]"), "]")
        return part
    }

    /// `section-part = nz-number *("." nz-number)`, stopping before `.TEXT` and the like.
    mutating func sectionPart() throws -> [Int] {
        var part = [Int(try nzNumber32())]
        while peek == UInt8(ascii: "."), i + 1 < text.count, IMAPResponseGrammar.isDigit(text[i + 1]) {
            i += 1
            part.append(Int(try nzNumber32()))
        }
        return part
    }

    /// `section = "[" [section-spec] "]"` (RFC 9051 §9).
    mutating func section() throws -> IMAPSection {
        try expect(UInt8(ascii: "["), "[")
        var s = IMAPSection()
        if take(UInt8(ascii: "]")) { return s }
        if let b = peek, IMAPResponseGrammar.isDigit(b) {
            s.part = try sectionPart()
            if take(UInt8(ascii: "]")) { return s }
            try expect(UInt8(ascii: "."), ".")
        }
        let word = String(decoding: run { IMAPParser.isAtomChar($0) && $0 != UInt8(ascii: "[") }, as: UTF8.self).uppercased()
        switch word {
        case "HEADER": s.text = .header
        case "TEXT": s.text = .text
        case "MIME": s.text = .mime
        case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
            try sp()
            let names = try list { try $0.astring() }
            guard !names.isEmpty else { throw fail("empty header list") }
            s.text = word == "HEADER.FIELDS" ? .headerFields(names) : .headerFieldsNot(names)
        default:
            throw fail("unknown section")
        }
        try expect(UInt8(ascii: "]"), "]")
        return s
    }

    /// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP
    /// env-reply-to SP env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`.
    mutating func envelope() throws -> IMAPEnvelope {
        try enter()
        defer { leave() }
        try expect(UInt8(ascii: "("), "(")
        skipSpaces()
        var e = IMAPEnvelope()
        e.date = try nstring()
        try sp()
        e.subject = try nstring()
        try sp()
        e.from = try addresses()
        try sp()
        e.sender = try addresses()
        try sp()
        e.replyTo = try addresses()
        try sp()
        e.to = try addresses()
        try sp()
        e.cc = try addresses()
        try sp()
        e.bcc = try addresses()
        try sp()
        e.inReplyTo = try nstring()
        try sp()
        e.messageID = try nstring()
        skipSpaces()
        try expect(UInt8(ascii: ")"), ")")
        return e
    }

    /// `"(" 1*address ")" / nil`; `()` is read as none.
    mutating func addresses() throws -> [IMAPAddress] {
        if takeNil() { return [] }
        try enter()
        defer { leave() }
        try expect(UInt8(ascii: "("), "(")
        var out: [IMAPAddress] = []
        skipSpaces()
        while peek == UInt8(ascii: "(") {
            try enter()
            _ = take(UInt8(ascii: "("))
            let name = try nstring()
            try sp()
            let adl = try nstring()
            try sp()
            let mailbox = try nstring()
            try sp()
            let host = try nstring()
            try expect(UInt8(ascii: ")"), ")")
            leave()
            out.append(IMAPAddress(name: name, adl: adl, mailbox: mailbox, host: host))
            skipSpaces()
        }
        try expect(UInt8(ascii: ")"), ")")
        return out
    }

    /// `body = "(" (body-type-1part / body-type-mpart) ")"`.
    mutating func body() throws -> IMAPBodyStructure {
        try enter()
        defer { leave() }
        try expect(UInt8(ascii: "("), "(")
        skipSpaces()
        if peek == UInt8(ascii: "(") {
            // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
            var parts: [IMAPBodyStructure] = []
            while peek == UInt8(ascii: "(") {
                parts.append(try body())
                skipSpaces()
            }
            let subtype = try stringText()
            let extensions = try extensionData()
            return .multipart(IMAPMultipartBody(parts: parts, subtype: subtype, extensions: extensions))
        }
        let type = try stringText()
        try sp()
        let subtype = try stringText()
        try sp()
        let parameters = try bodyParameters()
        try sp()
        let id = try nstring().map { String(decoding: $0, as: UTF8.self) }
        try sp()
        let description = try nstring().map { String(decoding: $0, as: UTF8.self) }
        try sp()
        // body-fld-enc is a string; some servers send NIL.
        let encoding = try nstring().map { String(decoding: $0, as: UTF8.self) } ?? ""
        try sp()
        let size = try number()
        var kind = IMAPBodyPart.Kind.basic
        let upperType = type.uppercased(), upperSubtype = subtype.uppercased()
        let save = i
        if upperType == "MESSAGE", upperSubtype == "RFC822" || upperSubtype == "GLOBAL", skipSpaces(), peek == UInt8(ascii: "(") {
            // body-type-msg: envelope, body, lines
            let env = try envelope()
            try sp()
            let inner = try body()
            try sp()
            kind = .message(envelope: env, body: inner, lines: try number())
        } else if upperType == "TEXT", skipSpaces(), let b = peek, IMAPResponseGrammar.isDigit(b) {
            kind = .text(lines: try number())
        } else {
            i = save
        }
        let extensions = try extensionData()
        return .single(IMAPBodyPart(type: type, subtype: subtype, parameters: parameters, contentID: id,
                                    contentDescription: description, encoding: encoding, size: size, kind: kind,
                                    extensions: extensions))
    }

    /// `*(SP body-extension)` up to and including the closing `)`.
    mutating func extensionData() throws -> [IMAPExtensionValue] {
        var out: [IMAPExtensionValue] = []
        while true {
            let spaced = skipSpaces()
            if take(UInt8(ascii: ")")) { return out }
            guard spaced else { throw fail(atEnd ? "unbalanced parentheses" : "expected a space or )") }
            out.append(try value())
        }
    }

    /// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`.
    mutating func bodyParameters() throws -> [IMAPBodyParameter] {
        if takeNil() { return [] }
        let strings = try list { try $0.stringText() }
        guard strings.count % 2 == 0 else { throw fail("a body parameter without a value") }
        return stride(from: 0, to: strings.count, by: 2).map { IMAPBodyParameter(strings[$0], strings[$0 + 1]) }
    }
}
