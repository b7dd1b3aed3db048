/// A macro-string (RFC 7208 §7.1): literal text and `%{…}` macros, found in
/// domain-specs and explanation strings and expanded against one check.
///
///     exists:%{ir}.%{l1r+-}._spf.%{d}
///     exp=explain._spf.%{d}   (TXT: "%{i} is not one of %{d}'s hosts")
public struct SPFMacroString: Hashable, Sendable, CustomStringConvertible {
    public enum Part: Hashable, Sendable {
        /// Text as is, with `%%`, `%_` and `%-` already turned into "%", " " and "%20".
        case literal(String)
        case macro(SPFMacro)
    }

    public var parts: [Part]

    public init(parts: [Part]) { self.parts = parts }

    /// Parses macro-string (RFC 7208 §7.1), or explanation-string when
    /// `explanation` is set (spaces allowed, and the letters c, r and t,
    /// which §7.1 reserves for `exp` text).
    public static func parse(_ text: Substring, explanation: Bool = false) throws(SPFSyntaxError) -> SPFMacroString {
        var parts: [Part] = []
        var literal = ""
        func flush() { if !literal.isEmpty { parts.append(.literal(literal)); literal = "" } }
        var i = text.unicodeScalars.startIndex
        let scalars = text.unicodeScalars
        while i < scalars.endIndex {
            let c = scalars[i]
            i = scalars.index(after: i)
            if c == "%" {
                guard i < scalars.endIndex else { throw .init("a lone % at the end of \"\(text)\"") }
                let n = scalars[i]
                i = scalars.index(after: i)
                switch n {
                case "%": literal += "%"        // RFC 7208 §7.1: "%%" is "%"
                case "_": literal += " "        // "%_" is a space
                case "-": literal += "%20"      // "%-" is a URL-encoded space
                case "{":
                    guard let close = scalars[i...].firstIndex(of: "}") else { throw .init("unclosed %{ in \"\(text)\"") }
                    let body = String(scalars[i..<close])
                    i = scalars.index(after: close)
                    flush()
                    parts.append(.macro(try SPFMacro.parse(body, explanation: explanation)))
                default:
                    // RFC 7208 §7.1: a "%" not followed by "{", "%", "-" or "_" is a syntax error.
                    throw .init("bad macro %\(n) in \"\(text)\"")
                }
            } else if (0x21...0x7E).contains(c.value) || (explanation && c == " ") {
                literal.unicodeScalars.append(c)   // macro-literal = %x21-24 / %x26-7E
            } else {
                throw .init("character U+\(String(c.value, radix: 16, uppercase: true)) not allowed in \"\(text)\"")
            }
        }
        flush()
        return SPFMacroString(parts: parts)
    }

    /// Whether expanding needs the `p` macro's validated name (a DNS lookup).
    public var usesValidatedName: Bool {
        parts.contains { if case .macro(let m) = $0 { return m.letter == .p } else { return false } }
    }

    /// RFC 7208 §12 domain-end: the text ends in a macro, or in "." toplabel [ "." ].
    var hasDomainEnd: Bool {
        guard let last = parts.last else { return false }
        guard case .literal(var text) = last else { return true }
        if text.hasSuffix(".") { text.removeLast() }
        guard let dot = text.lastIndex(of: ".") else { return false }
        return SPFMacroString.isTopLabel(text[text.index(after: dot)...])
    }

    /// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
    static func isTopLabel(_ s: Substring) -> Bool {
        guard let f = s.first, let l = s.last, f != "-", l != "-" else { return false }
        guard s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return false }
        return s.contains { $0.isLetter || $0 == "-" }
    }

    /// The text after expansion (RFC 7208 §7.3).
    public func expand(_ context: SPFMacroContext) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .literal(let s): out += s
            case .macro(let m): out += m.expand(context)
            }
        }
        return out
    }

    public var description: String {
        parts.map { part -> String in
            switch part {
            case .literal(let s): return s.map { $0 == "%" ? "%%" : $0 == " " ? "%_" : String($0) }.joined()
            case .macro(let m): return m.description
            }
        }.joined()
    }
}

/// One `%{…}` macro (RFC 7208 §7.1): a letter, how many right-hand parts to
/// keep, whether to reverse, and the delimiters to split on. An uppercase
/// letter asks for URL escaping (§7.3).
public struct SPFMacro: Hashable, Sendable, CustomStringConvertible {
    /// RFC 7208 §7.2.
    public enum Letter: String, Hashable, Sendable, CaseIterable {
        case s, l, o, d, i, p, v, h
        /// Only in explanation text (§7.1).
        case c, r, t
    }

    public var letter: Letter
    public var urlEscape: Bool
    /// Rightmost parts to keep; nil keeps all.
    public var keep: Int?
    public var reverse: Bool
    /// Split characters, from "." "-" "+" "," "/" "_" "="; empty means ".".
    public var delimiters: [Character]

    static func parse(_ body: String, explanation: Bool) throws(SPFSyntaxError) -> SPFMacro {
        var chars = Substring(body)
        guard let first = chars.popFirst(), let letter = Letter(rawValue: first.lowercased()) else {
            throw .init("unknown macro letter in %{\(body)}")
        }
        // RFC 7208 §7.1: c, r and t only in "exp" text.
        if !explanation && [.c, .r, .t].contains(letter) { throw .init("%{\(first)} outside an explanation") }
        let digits = chars.prefix { $0.isASCII && $0.isNumber }
        chars = chars.dropFirst(digits.count)
        var keep: Int?
        if !digits.isEmpty {
            // "If a DIGIT is specified, the value MUST be nonzero."
            guard let n = Int(digits.prefix(4)), n > 0 else { throw .init("zero part count in %{\(body)}") }
            keep = n
        }
        var reverse = false
        if chars.first == "r" || chars.first == "R" { reverse = true; chars = chars.dropFirst() }
        let delimiterSet: Set<Character> = [".", "-", "+", ",", "/", "_", "="]
        guard chars.allSatisfy({ delimiterSet.contains($0) }) else { throw .init("bad transformer in %{\(body)}") }
        return SPFMacro(letter: letter, urlEscape: first.isUppercase, keep: keep, reverse: reverse, delimiters: Array(chars))
    }

    /// RFC 7208 §7.3: split on the delimiters, reverse if asked, keep the
    /// rightmost parts, join with ".", URL-escape for an uppercase letter.
    func expand(_ context: SPFMacroContext) -> String {
        let value = context.value(of: letter)
        var result = value
        if keep != nil || reverse || !delimiters.isEmpty {
            let split = delimiters.isEmpty ? ["."] : delimiters
            var labels = value.split(omittingEmptySubsequences: false, whereSeparator: { split.contains($0) }).map(String.init)
            if reverse { labels.reverse() }
            if let keep, keep < labels.count { labels = Array(labels.suffix(keep)) }
            result = labels.joined(separator: ".")
        }
        return urlEscape ? SPFMacro.urlEscaped(result) : result
    }

    /// Escapes every octet outside RFC 3986's unreserved set as %XX.
    static func urlEscaped(_ s: String) -> String {
        let hex = Array("0123456789ABCDEF")
        var out = ""
        for b in s.utf8 {
            let c = Character(UnicodeScalar(b))
            if b < 0x80 && (c.isLetter || c.isNumber || "-._~".contains(c)) {
                out.append(c)
            } else {
                out += "%" + String(hex[Int(b >> 4)]) + String(hex[Int(b & 0xF)])
            }
        }
        return out
    }

    public var description: String {
        let l = urlEscape ? letter.rawValue.uppercased() : letter.rawValue
        return "%{" + l + (keep.map(String.init) ?? "") + (reverse ? "r" : "") + String(delimiters) + "}"
    }
}

/// What the macros of one check expand to (RFC 7208 §7.2).
public struct SPFMacroContext: Sendable {
    /// <sender>: the MAIL FROM or "postmaster@" + HELO identity.
    public var sender: String
    /// <domain>: the domain whose record is being evaluated.
    public var domain: String
    public var ip: IPAddress
    public var helo: String
    /// `p`: the validated domain name of <ip> ("unknown" when none).
    public var validatedName: String?
    /// `r`: the checking host's name (RFC 7208 §7.2: "unknown" if none).
    public var receiver: String
    /// `t`: seconds since the epoch.
    public var timestamp: Int64

    public init(sender: String, domain: String, ip: IPAddress, helo: String, validatedName: String? = nil,
                receiver: String = "unknown", timestamp: Int64) {
        self.sender = sender
        self.domain = domain
        self.ip = ip
        self.helo = helo
        self.validatedName = validatedName
        self.receiver = receiver
        self.timestamp = timestamp
    }

    func value(of letter: SPFMacro.Letter) -> String {
        switch letter {
        case .s: return sender
        case .l: return SPFIdentity.localPart(of: sender)
        case .o: return SPFIdentity.domain(of: sender)
        case .d: return domain
        case .i: return ip.dottedForm
        case .p: return validatedName ?? "unknown"
        case .v: return ip.isIPv4 ? "in-addr" : "ip6"
        case .h: return helo
        case .c: return ip.description
        case .r: return receiver
        case .t: return String(timestamp)
        }
    }
}
