/// One `attribute=value` parameter of a Content-Type or Content-Disposition
/// field, as written (RFC 2045 §5.1, RFC 2183 §2): the name keeps its case,
/// the value has its quoting removed (quoted-pairs unescaped) but is
/// otherwise raw — RFC 2231 sections (`name*0*`) are not yet merged.
/// IMAP BODYSTRUCTURE reports this list with the sections joined
/// (`ContentType.structureParameters`, RFC 9051 §7.5.2 body-fld-param).
public struct MIMEParameter: Hashable, Sendable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }

    public var valueString: String { String(decoding: value, as: UTF8.self) }
}

/// A parameter after RFC 2231 processing: continuations joined (§3), the
/// charset and language of an extended value applied (§4), or, for plain
/// values, RFC 2047 encoded words decoded (a common non-standard practice
/// for `filename` and `name`).
public struct DecodedParameter: Hashable, Sendable {
    /// Lowercased name without any `*N` / `*` suffix.
    public var name: String
    public var value: String
    public var charset: String?
    public var language: String?

    public init(name: String, value: String, charset: String? = nil, language: String? = nil) {
        self.name = name
        self.value = value
        self.charset = charset
        self.language = language
    }
}

/// Splitting of `value *(";" parameter)` header values.
enum ParameterList {
    /// Splits `bytes` into the leading value (trimmed) and its parameters.
    /// Lenient: a value in quotes may hold ";"; an unquoted value runs to the
    /// next ";" (so unquoted spaces survive); parameters without "=" and
    /// empty sections (";;") are skipped; the first of duplicate names wins
    /// as mail readers do.
    static func parse(_ bytes: [UInt8]) -> (value: [UInt8], parameters: [MIMEParameter]) {
        var i = 0
        while i < bytes.count, bytes[i] != ASCII.semicolon { i += 1 }
        let value = stripComments(Array(bytes[0..<i])).trimmingWhitespace()
        var params: [MIMEParameter] = []
        while i < bytes.count {
            i += 1  // past ";"
            let nameStart = i
            while i < bytes.count, bytes[i] != ASCII.equals, bytes[i] != ASCII.semicolon { i += 1 }
            let name = Array(bytes[nameStart..<i]).trimmingWhitespace()
            guard i < bytes.count, bytes[i] == ASCII.equals else { continue }
            i += 1
            while i < bytes.count, ASCII.isWhitespace(bytes[i]) { i += 1 }
            var v: [UInt8] = []
            if i < bytes.count, bytes[i] == ASCII.quote {
                // RFC 5322 §3.2.4 quoted-string with quoted-pairs.
                i += 1
                while i < bytes.count, bytes[i] != ASCII.quote {
                    if bytes[i] == ASCII.backslash, i + 1 < bytes.count { i += 1 }
                    v.append(bytes[i])
                    i += 1
                }
                i += 1
                while i < bytes.count, bytes[i] != ASCII.semicolon { i += 1 }
            } else {
                let start = i
                while i < bytes.count, bytes[i] != ASCII.semicolon { i += 1 }
                v = stripComments(Array(bytes[start..<i])).trimmingWhitespace()
            }
            guard !name.isEmpty else { continue }
            let nameString = String(decoding: name, as: UTF8.self)
            if params.contains(where: { $0.name.asciiBytes.equalsIgnoringASCIICase(name) }) { continue }
            params.append(MIMEParameter(name: nameString, value: v))
        }
        return (value, params)
    }

    /// RFC 5322 §3.2.2 comments "(…)" outside quoted strings are dropped.
    static func stripComments(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(0x28) else { return bytes }
        var out: [UInt8] = []
        var depth = 0, i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == ASCII.backslash, depth > 0 { i += 2; continue }
            if b == 0x28 { depth += 1 } else if b == 0x29, depth > 0 { depth -= 1 } else if depth == 0 { out.append(b) }
            i += 1
        }
        return out
    }
}
