/// RFC 2047 encoded words: `=?charset?encoding?encoded-text?=`.
///
/// Decoding follows RFC 2047 §6 with the leniency mail readers apply:
/// - §6.2: whitespace between two adjacent encoded words is dropped;
/// - adjacent words in the same charset are joined before charset decoding,
///   so a UTF-8 sequence split across words survives;
/// - words are recognised inside other text too (not only as whole atoms);
/// - an unknown charset or encoding, or a malformed word, is left as raw text.
public enum EncodedWord {
    /// RFC 2047 §2: an encoded word is at most 75 characters. Widespread
    /// readers accept longer ones; this bound only stops runaway scans.
    public static let maximumScan = 1_000

    /// Decodes every encoded word in `text` (an unfolded header value).
    /// Bytes outside encoded words are read as UTF-8 (RFC 6532).
    public static func decode(_ text: [UInt8]) -> String {
        var result = ""
        var literal: [UInt8] = []            // pending raw bytes
        var pending: (Charset, [UInt8])? = nil  // decoded bytes awaiting charset conversion
        var i = 0

        func flushPending() {
            if let (cs, bytes) = pending { result += cs.decode(bytes); pending = nil }
        }
        func flushLiteral() {
            if !literal.isEmpty { result += String(decoding: literal, as: UTF8.self); literal = [] }
        }

        while i < text.count {
            if text[i] == ASCII.equals, i + 1 < text.count, text[i + 1] == ASCII.question,
               let word = parseWord(text, at: i) {
                // §6.2: linear whitespace between two encoded words is ignored.
                let onlyWhitespaceSincePrevious = pending != nil && literal.allSatisfy(ASCII.isWhitespace)
                if onlyWhitespaceSincePrevious { literal = [] }
                if let (cs, bytes) = pending, cs == word.charset, literal.isEmpty {
                    pending = (cs, bytes + word.bytes)
                } else {
                    flushPending()
                    flushLiteral()
                    pending = (word.charset, word.bytes)
                }
                i = word.end
                continue
            }
            // Text after a word: the word is final once non-whitespace follows.
            if pending != nil && !ASCII.isWhitespace(text[i]) { flushPending() }
            literal.append(text[i])
            i += 1
        }
        flushPending()
        flushLiteral()
        return result
    }

    /// Convenience for a `String` that holds the raw header value.
    public static func decode(_ text: String) -> String { decode(text.asciiBytes) }

    struct Word {
        var charset: Charset
        var bytes: [UInt8]
        var end: Int
    }

    /// RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?=".
    static func parseWord(_ text: [UInt8], at start: Int) -> Word? {
        let limit = min(text.count, start + maximumScan)
        var i = start + 2
        let charsetStart = i
        while i < limit, text[i] != ASCII.question, !ASCII.isWhitespace(text[i]) { i += 1 }
        guard i < limit, text[i] == ASCII.question, i > charsetStart else { return nil }
        let charsetName = String(decoding: text[charsetStart..<i], as: UTF8.self)
        i += 1
        guard i + 1 < limit, text[i + 1] == ASCII.question else { return nil }
        let encoding = ASCII.lower(text[i])
        i += 2
        let payloadStart = i
        // §5: encoded-text may not contain "?" or SPACE.
        while i + 1 < limit, !(text[i] == ASCII.question && text[i + 1] == ASCII.equals) {
            if text[i] == ASCII.space || text[i] == ASCII.tab { return nil }
            i += 1
        }
        guard i + 1 < limit else { return nil }
        let payload = text[payloadStart..<i]
        guard let charset = Charset(name: charsetName) else { return nil }
        let bytes: [UInt8]
        switch encoding {
        case 0x62: bytes = TransferDecoding.base64(payload)      // "B", §4.1
        case 0x71: bytes = TransferDecoding.qEncoding(payload)   // "Q", §4.2
        default: return nil
        }
        return Word(charset: charset, bytes: bytes, end: i + 2)
    }
}
