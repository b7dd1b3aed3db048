import MailCore

/// One SMTP command line (RFC 5321 §4.1.1 and the extensions we offer).
public enum SMTPCommand: Hashable, Sendable {
    case helo(String)
    case ehlo(String)
    case mail(ReversePath, MailParameters)
    case rcpt(RecipientPath, [String: String])
    case data
    case bdat(size: Int, last: Bool)
    case rset
    case noop
    case quit
    case vrfy
    case expn
    case help
    case startTLS
    case auth(mechanism: String, initialResponse: String?)
}

/// `RCPT TO:` takes a mailbox or the bare `<Postmaster>` (RFC 5321 §4.1.1.3).
public enum RecipientPath: Hashable, Sendable {
    case postmaster
    case mailbox(MailAddress)
}

/// The MAIL parameters this server understands.
public struct MailParameters: Hashable, Sendable {
    public enum Body: String, Hashable, Sendable { case sevenBit = "7BIT", eightBitMIME = "8BITMIME" }
    public var size: Int?
    public var body: Body?
    public var smtpUTF8 = false
    /// RFC 4954 §5 `AUTH=` on MAIL: accepted and not trusted.
    public var auth: String?
    public init() {}
}

public enum SMTPCommandParser {
    /// RFC 5321 §4.5.3.1.4: 512 octets for a command line; extensions raise it.
    public static let defaultMaxLineLength = 4096
    /// RFC 4954 §4: AUTH lines may be up to 12288 octets.
    public static let maxAuthLineLength = 12288
    /// SIZE values above this are not representable for us; treated as too big.
    static let maxSize = Int(Int32.max)

    /// Parses a command line without its CRLF. Returns the reply for a bad line.
    public static func parse(_ line: [UInt8]) -> Result<SMTPCommand, SMTPReply> {
        if line.contains(0) { return .failure(.nulInCommand) }
        // Verb: up to the first space; case-insensitive.
        let spaceIndex = line.firstIndex(of: UInt8(ascii: " ")) ?? line.count
        let verb = String(decoding: line[0..<spaceIndex], as: UTF8.self).uppercased()
        let rest = spaceIndex < line.count ? Array(line[(spaceIndex + 1)...]) : []
        let argument = String(decoding: rest, as: UTF8.self).trimmingSpaces()

        switch verb {
        case "HELO", "EHLO":
            // RFC 5321 §4.1.1.1: a domain or address literal. We accept any
            // single token; the name is informational only.
            let name = argument.split(separator: " ").first.map(String.init) ?? ""
            guard !name.isEmpty, name.utf8.count <= 255,
                  name.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) || name.utf8.contains(where: { $0 >= 0x80 })
            else { return .failure(.syntaxHelo) }
            return .success(verb == "HELO" ? .helo(name) : .ehlo(name))
        case "MAIL":
            return parseMail(rest)
        case "RCPT":
            return parseRcpt(rest)
        case "DATA":
            return rest.isEmpty ? .success(.data) : .failure(.syntax)
        case "BDAT":
            // RFC 3030 §2: "BDAT" SP chunk-size [ SP end-marker ]
            let parts = argument.split(separator: " ")
            guard parts.count == 1 || (parts.count == 2 && parts[1].uppercased() == "LAST"),
                  parts[0].allSatisfy(\.isASCIIDigit), parts[0].count <= 12, let size = Int(parts[0])
            else { return .failure(.syntax) }
            return .success(.bdat(size: size, last: parts.count == 2))
        case "RSET":
            return rest.isEmpty ? .success(.rset) : .failure(.syntax)
        case "NOOP":
            return .success(.noop)
        case "QUIT":
            return rest.isEmpty ? .success(.quit) : .failure(.syntax)
        case "VRFY":
            return .success(.vrfy)
        case "EXPN":
            return .success(.expn)
        case "HELP":
            return .success(.help)
        case "STARTTLS":
            return rest.isEmpty ? .success(.startTLS) : .failure(.syntax)
        case "AUTH":
            let parts = argument.split(separator: " ")
            guard parts.count == 1 || parts.count == 2 else { return .failure(.syntax) }
            return .success(.auth(mechanism: parts[0].uppercased(), initialResponse: parts.count == 2 ? String(parts[1]) : nil))
        default:
            return .failure(.unknownCommand)
        }
    }

    /// `"MAIL FROM:" Reverse-path [SP Mail-parameters]`
    static func parseMail(_ rest: [UInt8]) -> Result<SMTPCommand, SMTPReply> {
        guard let afterKeyword = stripKeyword("FROM:", rest) else { return .failure(.syntax) }
        var parser = AddressParser(afterKeyword, utf8Allowed: true)
        guard let path = parser.reversePath() else { return .failure(.badSender) }
        guard let params = parseParameters(Array(afterKeyword[parser.position...])) else { return .failure(.syntax) }
        var mp = MailParameters()
        for (key, value) in params {
            switch key {
            case "SIZE":
                guard let v = value, !v.isEmpty, v.count <= 20, v.allSatisfy(\.isASCIIDigit) else { return .failure(.syntax) }
                mp.size = Int(v) ?? maxSize
            case "BODY":
                guard let v = value, let b = MailParameters.Body(rawValue: v.uppercased()) else { return .failure(.unsupportedParameter) }
                mp.body = b
            case "SMTPUTF8":
                guard value == nil else { return .failure(.syntax) }
                mp.smtpUTF8 = true
            case "AUTH":
                mp.auth = value
            default:
                return .failure(.unsupportedParameter)
            }
        }
        if let address = path.address, !address.isASCII, !mp.smtpUTF8 { return .failure(.needUTF8) }
        return .success(.mail(path, mp))
    }

    /// `"RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path ) [SP Rcpt-parameters]`
    static func parseRcpt(_ rest: [UInt8]) -> Result<SMTPCommand, SMTPReply> {
        guard let afterKeyword = stripKeyword("TO:", rest) else { return .failure(.syntax) }
        let lowered = afterKeyword.prefix(12).map { $0 | 0x20 }
        if lowered.count == 12, String(decoding: lowered, as: UTF8.self) == "<postmaster>" {
            guard let params = parseParameters(Array(afterKeyword[12...])), params.isEmpty else { return .failure(.unsupportedParameter) }
            return .success(.rcpt(.postmaster, [:]))
        }
        var parser = AddressParser(afterKeyword, utf8Allowed: true)
        guard let m = parser.path() else { return .failure(.badRecipient) }
        guard let params = parseParameters(Array(afterKeyword[parser.position...])) else { return .failure(.syntax) }
        // DSN (NOTIFY, ORCPT) is not offered, so no RCPT parameter is known.
        guard params.isEmpty else { return .failure(.unsupportedParameter) }
        return .success(.rcpt(.mailbox(m), [:]))
    }

    /// Matches `FROM:`/`TO:` case-insensitively; tolerates one space before the
    /// path, as widespread servers do.
    static func stripKeyword(_ keyword: String, _ bytes: [UInt8]) -> [UInt8]? {
        let k = Array(keyword.utf8)
        guard bytes.count >= k.count else { return nil }
        for (a, b) in zip(bytes, k) where (a | 0x20) != (b | 0x20) { return nil }
        var out = Array(bytes[k.count...])
        if out.first == UInt8(ascii: " ") { out.removeFirst() }
        return out
    }

    /// `*( SP esmtp-param )` where `esmtp-param = esmtp-keyword ["=" esmtp-value]`.
    /// Keys upper-cased; nil on bad syntax or duplicates.
    static func parseParameters(_ bytes: [UInt8]) -> [String: String?]? {
        var result: [String: String?] = [:]
        let text = String(decoding: bytes, as: UTF8.self)
        if text.isEmpty { return result }
        guard text.hasPrefix(" ") else { return nil }
        for token in text.split(separator: " ") {
            let kv = token.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = kv[0].uppercased()
            // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
            guard let first = key.first, first.isASCIILetterOrDigit,
                  key.allSatisfy({ $0.isASCIILetterOrDigit || $0 == "-" }), result[key] == nil
            else { return nil }
            if kv.count == 2 {
                // esmtp-value = 1*(%d33-60 / %d62-126), or UTF-8 under RFC 6531
                guard !kv[1].isEmpty, kv[1].utf8.allSatisfy({ ($0 >= 33 && $0 != 61 && $0 != 127) }) else { return nil }
                result[key] = String(kv[1])
            } else {
                result[key] = .some(nil)
            }
        }
        return result
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
    var isASCIILetterOrDigit: Bool { isASCII && (isLetter || isNumber) }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
