/// RFC 5322 §3.2 lexical tokens of a structured header value, as used by the
/// address parser. CFWS is not a token; a comment is kept (its text may serve
/// as a display name) and every token records whether whitespace or a
/// comment preceded it, so phrases can be re-joined as written.
struct HeaderToken: Hashable {
    enum Kind: Hashable {
        case atom            // 1*atext (RFC 5322 §3.2.3); 8-bit bytes allowed (RFC 6532)
        case quoted          // quoted-string content, quoted-pairs unescaped (§3.2.4)
        case domainLiteral   // "[" … "]", brackets kept (§3.4.1)
        case comment         // "(" … ")" content, nesting flattened (§3.2.2)
        case special         // one of ()<>[]:;@\,." not part of the above
    }
    var kind: Kind
    var bytes: [UInt8]
    var spaceBefore: Bool

    func isSpecial(_ c: UInt8) -> Bool { kind == .special && bytes.first == c }
}

enum HeaderTokenizer {
    /// RFC 5322 §3.2.3 specials.
    static let specials: [UInt8] = Array("()<>[]:;@\\,.\"".utf8)

    static func tokenize(_ value: [UInt8]) -> [HeaderToken] {
        var tokens: [HeaderToken] = []
        var i = 0
        var space = false
        while i < value.count {
            let b = value[i]
            if ASCII.isWhitespace(b) { space = true; i += 1; continue }
            switch b {
            case ASCII.quote:
                var out: [UInt8] = []
                i += 1
                while i < value.count, value[i] != ASCII.quote {
                    if value[i] == ASCII.backslash, i + 1 < value.count { i += 1 }
                    if value[i] != ASCII.cr && value[i] != ASCII.lf { out.append(value[i]) }
                    i += 1
                }
                i += 1
                tokens.append(HeaderToken(kind: .quoted, bytes: out, spaceBefore: space))
            case 0x28: // "("
                var depth = 0
                var out: [UInt8] = []
                while i < value.count {
                    let c = value[i]
                    if c == ASCII.backslash, i + 1 < value.count { out.append(value[i + 1]); i += 2; continue }
                    if c == 0x28 { depth += 1; if depth > 1 { out.append(c) } }
                    else if c == 0x29 { depth -= 1; if depth == 0 { i += 1; break }; out.append(c) }
                    else { out.append(c) }
                    i += 1
                }
                tokens.append(HeaderToken(kind: .comment, bytes: out, spaceBefore: space))
            case 0x5B: // "["
                var out: [UInt8] = []
                while i < value.count {
                    out.append(value[i])
                    i += 1
                    if out.last == 0x5D { break }
                }
                tokens.append(HeaderToken(kind: .domainLiteral, bytes: out, spaceBefore: space))
            default:
                if specials.contains(b) {
                    tokens.append(HeaderToken(kind: .special, bytes: [b], spaceBefore: space))
                    i += 1
                } else {
                    let start = i
                    while i < value.count, !ASCII.isWhitespace(value[i]), !specials.contains(value[i]) { i += 1 }
                    tokens.append(HeaderToken(kind: .atom, bytes: Array(value[start..<i]), spaceBefore: space))
                }
            }
            space = (tokens.last?.kind == .comment)
        }
        return tokens
    }
}
