/// Reading Authentication-Results values (RFC 8601 §2.2), comments and
/// folding anywhere CFWS may go. The engine uses `authservID(of:)` to find
/// fields that claim to be ours and remove them before adding its own (§5).
extension AuthenticationResults {
    /// The field's authserv-id, or nil when the value does not start with one.
    /// Enough to decide §5 removal even when the rest is malformed.
    public static func authservID(of fieldValue: String) -> String? {
        var s = ARScanner(fieldValue)
        s.skipCFWS()
        return s.value()
    }

    /// RFC 8601 §5: whether a received field claims our authserv-id (ASCII
    /// case ignored, as for domain names) and so is to be removed.
    public static func claims(_ fieldValue: String, authservID ours: String) -> Bool {
        guard let id = authservID(of: fieldValue) else { return false }
        return id.lowercased() == ours.lowercased()
    }

    /// Parses a whole value; nil when it does not follow the grammar.
    public static func parse(_ fieldValue: String) -> AuthenticationResults? {
        var s = ARScanner(fieldValue)
        s.skipCFWS()
        guard let id = s.value() else { return nil }
        var parsed = AuthenticationResults(authservID: id, results: [])
        s.skipCFWS()
        if let digits = s.digits() {
            parsed.version = Int(digits)
            s.skipCFWS()
        }
        while true {
            s.skipCFWS()
            if s.atEnd { break }
            guard s.take(";") else { return nil }
            s.skipCFWS()
            if s.atEnd { break }                    // a final ";"
            guard let method = s.keyword() else { return nil }
            s.skipCFWS()
            if method.lowercased() == "none" && parsed.results.isEmpty && (s.atEnd || s.peek == ";") {
                continue                            // no-result
            }
            var result = AuthenticationResult(method: method, result: "")
            if s.take("/") {
                s.skipCFWS()
                guard let v = s.digits() else { return nil }
                result.methodVersion = Int(v)
                s.skipCFWS()
            }
            guard s.take("=") else { return nil }
            s.skipCFWS()
            guard let value = s.keyword() else { return nil }
            result.result = value
            let comments = s.skipCFWS()
            result.comment = comments.first
            while !s.atEnd && s.peek != ";" {
                guard let ptype = s.keyword() else { return nil }
                s.skipCFWS()
                if ptype.lowercased() == "reason" && s.peek == "=" {
                    _ = s.take("=")
                    s.skipCFWS()
                    guard let reason = s.value() else { return nil }
                    result.reason = reason
                    s.skipCFWS()
                    continue
                }
                guard s.take(".") else { return nil }
                s.skipCFWS()
                guard let property = s.keyword() else { return nil }
                s.skipCFWS()
                guard s.take("=") else { return nil }
                s.skipCFWS()
                guard let pvalue = s.pvalue() else { return nil }
                result.properties.append(AuthenticationProperty(ptype, property, pvalue))
                s.skipCFWS()
            }
            parsed.results.append(result)
        }
        return parsed
    }
}

/// A cursor over a field value for the grammar above.
struct ARScanner {
    let chars: [Character]
    var i = 0

    init(_ text: String) { chars = Array(text) }

    var atEnd: Bool { i >= chars.count }
    var peek: Character? { atEnd ? nil : chars[i] }

    mutating func take(_ c: Character) -> Bool {
        guard peek == c else { return false }
        i += 1
        return true
    }

    /// Skips white space, folding and comments (RFC 5322 §3.2.2 CFWS);
    /// returns the comments' texts, unescaped, outermost level.
    @discardableResult
    mutating func skipCFWS() -> [String] {
        var comments: [String] = []
        while let c = peek {
            if c == " " || c == "\t" || c == "\r" || c == "\n" || c == "\r\n" {
                i += 1
            } else if c == "(" {
                guard let text = comment() else { return comments }
                comments.append(text)
            } else {
                break
            }
        }
        return comments
    }

    /// A comment, nested ones included in its text; nil (and the rest
    /// consumed) when it never closes.
    mutating func comment() -> String? {
        var depth = 0, text = ""
        while let c = peek {
            i += 1
            switch c {
            case "\\":
                if let n = peek { i += 1; if !n.unicodeScalars.contains(where: AuthenticationResults.isDropped) { text.append(n) } }
            case "(":
                if depth > 0 { text.append(c) }
                depth += 1
            case ")":
                depth -= 1
                if depth == 0 { return text }
                text.append(c)
            default:
                if !c.unicodeScalars.contains(where: AuthenticationResults.isDropped) { text.append(c) }
            }
        }
        return nil
    }

    /// Keyword (RFC 5321 Let-dig [Ldh-str], and "_" as seen in the wild).
    mutating func keyword() -> String? {
        let start = i
        while let c = peek, c.isASCII, c.isLetter || c.isNumber || c == "-" || c == "_" { i += 1 }
        return i > start ? String(chars[start..<i]) : nil
    }

    mutating func digits() -> String? {
        let start = i
        while let c = peek, c.isASCII, c.isNumber { i += 1 }
        return i > start ? String(chars[start..<i]) : nil
    }

    /// value = token / quoted-string.
    mutating func value() -> String? {
        if peek == "\"" { return quoted() }
        let start = i
        while let c = peek, c.isASCII, !c.isWhitespace, c.asciiValue! > 0x20, c.asciiValue! < 0x7F,
              !"()<>@,;:\\\"/[]?=".contains(c) { i += 1 }
        return i > start ? String(chars[start..<i]) : nil
    }

    /// pvalue: a quoted-string, or a run up to white space, ";" or "(" (a
    /// token, an address, "@domain", base64 with "/" "+" "=").
    mutating func pvalue() -> String? {
        if peek == "\"" { return quoted() }
        let start = i
        while let c = peek, !c.isWhitespace, c != ";", c != "(", c != "\"",
              !c.unicodeScalars.contains(where: AuthenticationResults.isDropped) { i += 1 }
        return i > start ? String(chars[start..<i]) : nil
    }

    mutating func quoted() -> String? {
        guard take("\"") else { return nil }
        var text = ""
        while let c = peek {
            i += 1
            switch c {
            case "\\":
                if let n = peek { i += 1; if !n.unicodeScalars.contains(where: AuthenticationResults.isDropped) { text.append(n) } }
            case "\"": return text
            default:    // unfolding drops CR LF, as the writer drops control characters
                if !c.unicodeScalars.contains(where: AuthenticationResults.isDropped) { text.append(c) }
            }
        }
        return nil
    }
}
