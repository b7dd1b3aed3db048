/// An RFC 5321 mailbox (`Local-part "@" Domain`), as found in SMTP paths.
///
/// Local parts keep their case (RFC 5321 §2.4: only the receiving host may
/// interpret them); domains are compared case-insensitively. With SMTPUTF8
/// (RFC 6531 §3.3) local parts and domains may hold UTF-8.
public struct MailAddress: Hashable, Sendable, CustomStringConvertible {
    /// The local part without surrounding quotes (quoted pairs resolved).
    public var localPart: String
    /// Whether the local part was a Quoted-string on the wire.
    public var wasQuoted: Bool
    /// The domain, or the address literal including its brackets.
    public var domain: String

    public init(localPart: String, domain: String, wasQuoted: Bool = false) {
        self.localPart = localPart
        self.domain = domain
        self.wasQuoted = wasQuoted
    }

    public var isAddressLiteral: Bool { domain.hasPrefix("[") }
    public var isASCII: Bool { localPart.utf8.allSatisfy { $0 < 0x80 } && domain.utf8.allSatisfy { $0 < 0x80 } }
    /// The address in canonical lookup form: lower-cased.
    public var lookupKey: String { (localPart + "@" + domain).lowercased() }

    public var description: String {
        if wasQuoted || !MailAddress.isDotString(localPart) {
            var q = "\""
            for c in localPart {
                if c == "\"" || c == "\\" { q.append("\\") }
                q.append(c)
            }
            return q + "\"@" + domain
        }
        return localPart + "@" + domain
    }

    /// Parses a bare mailbox (no angle brackets), e.g. from configuration.
    public static func parse(_ text: String, utf8Allowed: Bool = true) -> MailAddress? {
        var p = AddressParser(Array(text.utf8), utf8Allowed: utf8Allowed)
        guard let m = p.mailbox(), p.atEnd else { return nil }
        return m
    }

    static func isDotString(_ s: String) -> Bool {
        var p = AddressParser(Array(s.utf8), utf8Allowed: true)
        guard p.dotString() != nil else { return false }
        return p.atEnd
    }
}

/// A reverse-path (`MAIL FROM:<...>`) is a mailbox or the null path.
public enum ReversePath: Hashable, Sendable, CustomStringConvertible {
    case null
    case mailbox(MailAddress)

    public var address: MailAddress? {
        if case .mailbox(let m) = self { return m }
        return nil
    }
    public var description: String {
        switch self {
        case .null: return "<>"
        case .mailbox(let m): return "<\(m)>"
        }
    }
}

/// The grammar of RFC 5321 §4.1.2 for paths and mailboxes, with the UTF-8
/// extensions of RFC 6531 §3.3 when allowed.
public struct AddressParser {
    let bytes: [UInt8]
    var index = 0
    let utf8Allowed: Bool

    public init(_ bytes: [UInt8], utf8Allowed: Bool) {
        self.bytes = bytes
        self.utf8Allowed = utf8Allowed
    }

    public var atEnd: Bool { index == bytes.count }
    public var position: Int { index }

    /// `Path = "<" [ A-d-l ":" ] Mailbox ">"`; the source route is parsed and
    /// dropped (RFC 5321 §4.1.1.3: receivers MUST accept and SHOULD ignore it).
    public mutating func path() -> MailAddress? {
        guard consume(UInt8(ascii: "<")) else { return nil }
        if peek == UInt8(ascii: "@") {
            // A-d-l = At-domain *( "," At-domain )
            repeat {
                guard consume(UInt8(ascii: "@")), domain() != nil else { return nil }
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: ":")) else { return nil }
        }
        guard let m = mailbox(), consume(UInt8(ascii: ">")) else { return nil }
        return m
    }

    /// `Reverse-path = Path / "<>"`
    public mutating func reversePath() -> ReversePath? {
        if bytes.count - index >= 2, bytes[index] == UInt8(ascii: "<"), bytes[index + 1] == UInt8(ascii: ">") {
            index += 2
            return .null
        }
        return path().map { .mailbox($0) }
    }

    /// `Mailbox = Local-part "@" ( Domain / address-literal )`
    public mutating func mailbox() -> MailAddress? {
        let start = index
        var quoted = false
        let local: String
        if peek == UInt8(ascii: "\"") {
            guard let q = quotedString() else { index = start; return nil }
            local = q
            quoted = true
        } else {
            guard let d = dotString() else { index = start; return nil }
            local = d
        }
        // RFC 5321 §4.5.3.1.1: local part at most 64 octets.
        guard local.utf8.count <= 64, consume(UInt8(ascii: "@")) else { index = start; return nil }
        let dom: String
        if peek == UInt8(ascii: "[") {
            guard let lit = addressLiteral() else { index = start; return nil }
            dom = lit
        } else {
            guard let d = domain() else { index = start; return nil }
            dom = d
        }
        return MailAddress(localPart: local, domain: dom, wasQuoted: quoted)
    }

    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func consume(_ b: UInt8) -> Bool {
        if peek == b { index += 1; return true }
        return false
    }

    /// atext (RFC 5322 §3.2.3), plus UTF8-non-ascii under RFC 6531.
    func isAtext(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "/"),
             UInt8(ascii: "="), UInt8(ascii: "?"), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"),
             UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: "}"), UInt8(ascii: "~"):
            return true
        default:
            return b >= 0x80 && utf8Allowed
        }
    }

    /// `Dot-string = Atom *("." Atom)`
    mutating func dotString() -> String? {
        let start = index
        while true {
            let atomStart = index
            while let b = peek, isAtext(b) { index += 1 }
            if index == atomStart { index = start; return nil }
            if peek == UInt8(ascii: "."), index + 1 < bytes.count, isAtext(bytes[index + 1]) {
                index += 1
                continue
            }
            break
        }
        return String(validating: bytes[start..<index], as: UTF8.self) ?? { index = start; return nil }()
    }

    /// `Quoted-string = DQUOTE *QcontentSMTP DQUOTE`
    mutating func quotedString() -> String? {
        let start = index
        guard consume(UInt8(ascii: "\"")) else { return nil }
        var out: [UInt8] = []
        while let b = peek {
            index += 1
            if b == UInt8(ascii: "\"") {
                return String(validating: out, as: UTF8.self) ?? { index = start; return nil }()
            }
            if b == UInt8(ascii: "\\") {
                // quoted-pairSMTP = %d92 %d32-126
                guard let n = peek, n >= 32, n <= 126 else { index = start; return nil }
                out.append(n)
                index += 1
                continue
            }
            // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF-8 under RFC 6531
            guard (b >= 32 && b <= 126) || (b >= 0x80 && utf8Allowed) else { index = start; return nil }
            out.append(b)
        }
        index = start
        return nil
    }

    /// `Domain = sub-domain *("." sub-domain)`; `sub-domain = Let-dig [Ldh-str]`,
    /// or a U-label under RFC 6531. Lower-cased. At most 255 octets (§4.5.3.1.2).
    public mutating func domain() -> String? {
        let start = index
        func isLetDig(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x80 && utf8Allowed)
        }
        while true {
            let labelStart = index
            while let b = peek, isLetDig(b) || b == UInt8(ascii: "-") { index += 1 }
            let label = bytes[labelStart..<index]
            if label.isEmpty || label.first == UInt8(ascii: "-") || label.last == UInt8(ascii: "-") || label.count > 63 {
                index = start
                return nil
            }
            if peek == UInt8(ascii: "."), index + 1 < bytes.count, isLetDig(bytes[index + 1]) {
                index += 1
                continue
            }
            break
        }
        guard index - start <= 255, let s = String(validating: bytes[start..<index], as: UTF8.self) else {
            index = start
            return nil
        }
        return s.lowercased()
    }

    /// `address-literal = "[" ( IPv4-address-literal / IPv6-address-literal / General-address-literal ) "]"`
    mutating func addressLiteral() -> String? {
        let start = index
        guard consume(UInt8(ascii: "[")) else { return nil }
        while let b = peek, b != UInt8(ascii: "]") {
            // dcontent = %d33-90 / %d94-126
            guard (b >= 33 && b <= 90) || (b >= 94 && b <= 126) else { index = start; return nil }
            index += 1
        }
        guard consume(UInt8(ascii: "]")), index - start > 2 else { index = start; return nil }
        return String(decoding: bytes[start..<index], as: UTF8.self).lowercased()
    }
}
