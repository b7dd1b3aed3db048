/// Builds server responses (RFC 9051 §7) byte by byte, choosing the right
/// form for each string: atom, quoted string or literal.
///
/// ```
/// S: * 12 FETCH (FLAGS (\Seen) UID 4827313 BODY[HEADER] {342}
/// S: ...342 octets...)
/// ```
public struct IMAPWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func raw(_ s: String) { bytes += s.utf8 }
    public mutating func raw(_ b: [UInt8]) { bytes += b }
    public mutating func space() { bytes.append(32) }
    public mutating func crlf() { bytes += [13, 10] }

    /// A string as quoted when it can be (RFC 9051 §4.3: no CR, LF or NUL,
    /// at most a reasonable length), else as a literal.
    public mutating func string(_ value: [UInt8]) {
        if value.count <= 1024, value.allSatisfy({ $0 != 13 && $0 != 10 && $0 != 0 && $0 < 0x80 }) {
            bytes.append(UInt8(ascii: "\""))
            for b in value {
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(b)
            }
            bytes.append(UInt8(ascii: "\""))
        } else {
            literal(value)
        }
    }

    public mutating func string(_ value: String) { string(Array(value.utf8)) }

    /// `nstring`: NIL or a string.
    public mutating func nstring(_ value: [UInt8]?) {
        if let value { string(value) } else { raw("NIL") }
    }

    /// `astring` output: a bare atom when every character allows it.
    public mutating func astring(_ value: String) {
        let u = Array(value.utf8)
        if !u.isEmpty, u.allSatisfy({ IMAPParser.isAstringChar($0) }), value.uppercased() != "NIL" { bytes += u } else { string(u) }
    }

    /// `literal = "{" number "}" CRLF *CHAR8`; `literal8` (`~{n}`, RFC 3516)
    /// when the octets contain NUL.
    public mutating func literal(_ value: [UInt8], binary: Bool = false) {
        if binary && value.contains(0) { bytes.append(UInt8(ascii: "~")) }
        raw("{\(value.count)}")
        crlf()
        bytes += value
    }

    /// A tagged or untagged status response: `tag OK [CODE] text`.
    public mutating func status(tag: String?, _ kind: String, code: String? = nil, _ text: String) {
        raw(tag ?? "*")
        space()
        raw(kind)
        if let code { raw(" [\(code)]") }
        space()
        raw(text)
        crlf()
    }

    public mutating func continuation(_ text: String = "Ready") {
        raw("+ \(text)")
        crlf()
    }

    /// A parenthesised flag list.
    public mutating func flags(_ flags: [String]) {
        raw("(" + flags.joined(separator: " ") + ")")
    }

    /// A message's flags as a parenthesised list, without building one.
    public mutating func flags(of m: IMAPMessageInfo) {
        raw("(")
        var first = true
        for (name, bit) in IMAPMessageInfo.systemNames where m.has(bit) {
            if !first { raw(" ") }
            raw(name); first = false
        }
        for k in m.keywords {
            if !first { raw(" ") }
            raw(k); first = false
        }
        raw(")")
    }
}

/// Mailbox names in modified UTF-7 (RFC 3501 §5.1.3), used with IMAP4rev1
/// clients; IMAP4rev2 and UTF8=ACCEPT clients get UTF-8 (RFC 9051 §5.1).
public enum ModifiedUTF7 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)

    public static func encode(_ name: String) -> String {
        var out: [UInt8] = []
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            var bits: UInt32 = 0, count = 0
            out.append(UInt8(ascii: "&"))
            for unit in pending {
                for byte in [UInt8(unit >> 8), UInt8(unit & 0xFF)] {
                    bits = bits << 8 | UInt32(byte)
                    count += 8
                    while count >= 6 {
                        count -= 6
                        out.append(alphabet[Int(bits >> UInt32(count) & 0x3F)])
                    }
                }
            }
            if count > 0 { out.append(alphabet[Int(bits << UInt32(6 - count) & 0x3F)]) }
            out.append(UInt8(ascii: "-"))
            pending = []
        }
        for scalar in name.unicodeScalars {
            if scalar.value >= 0x20 && scalar.value <= 0x7E {
                flush()
                out.append(UInt8(scalar.value))
                if scalar == "&" { out.append(UInt8(ascii: "-")) }
            } else {
                pending += Array(String(scalar).utf16)
            }
        }
        flush()
        return String(decoding: out, as: UTF8.self)
    }

    /// nil when the text is not valid modified UTF-7.
    public static func decode(_ text: String) -> String? {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        let b = Array(text.utf8)
        var out = ""
        var i = 0
        while i < b.count {
            if b[i] != UInt8(ascii: "&") {
                guard b[i] >= 0x20 && b[i] <= 0x7E else { return nil }
                out.unicodeScalars.append(Unicode.Scalar(b[i]))
                i += 1
                continue
            }
            guard let end = b[(i + 1)...].firstIndex(of: UInt8(ascii: "-")) else { return nil }
            if end == i + 1 { out.append("&"); i = end + 1; continue }
            var bits: UInt32 = 0, count = 0
            var units: [UInt16] = []
            var bytes: [UInt8] = []
            for c in b[(i + 1)..<end] {
                let v = table[Int(c)]
                guard v != 0xFF else { return nil }
                bits = bits << 6 | UInt32(v)
                count += 6
                if count >= 8 {
                    count -= 8
                    bytes.append(UInt8(bits >> UInt32(count) & 0xFF))
                }
            }
            guard bytes.count % 2 == 0, !bytes.isEmpty else { return nil }
            for k in stride(from: 0, to: bytes.count, by: 2) { units.append(UInt16(bytes[k]) << 8 | UInt16(bytes[k + 1])) }
            var decoded = ""
            var failed = false
            _ = transcode(units.makeIterator(), from: UTF16.self, to: UTF32.self, stoppingOnError: true) {
                if let s = Unicode.Scalar($0) { decoded.unicodeScalars.append(s) } else { failed = true }
            }
            // Printable ASCII must not be encoded (RFC 3501 §5.1.3).
            guard !failed, !decoded.unicodeScalars.contains(where: { $0.value >= 0x20 && $0.value <= 0x7E }) else { return nil }
            out += decoded
            i = end + 1
        }
        return out
    }
}
