/// RFC 2231 parameter value continuations (§3) and charset/language
/// information (§4).
public enum RFC2231 {
    /// RFC 2231 §3 does not bound the number of sections; this does.
    public static let maximumSections = 1_000

    /// Merges `name*0`, `name*1*`, … and decodes `name*=charset'lang'%XX`.
    /// Order follows the first appearance of each base name. Sections are
    /// joined in numeric order; missing sections are skipped. A charset this
    /// target does not know leaves the percent-decoded bytes read as UTF-8.
    public static func decode(_ parameters: [MIMEParameter]) -> [DecodedParameter] {
        struct Pending { var sections: [(Int, [UInt8], Bool)] = []; var plain: [UInt8]? }
        var order: [String] = []
        var byName: [String: Pending] = [:]
        for p in parameters {
            var name = p.name.lowercased()
            var extended = false
            if name.hasSuffix("*") { extended = true; name.removeLast() }
            var section: Int? = nil
            if let star = name.lastIndex(of: "*"), let n = Int(name[name.index(after: star)...]),
               n >= 0, n < maximumSections {
                section = n
                name = String(name[..<star])
            }
            if byName[name] == nil { order.append(name); byName[name] = Pending() }
            if let section {
                byName[name]!.sections.append((section, p.value, extended))
            } else if extended {
                byName[name]!.sections.append((0, p.value, true))
            } else if byName[name]!.plain == nil {
                byName[name]!.plain = p.value
            }
        }
        return order.map { name in
            let pending = byName[name]!
            if pending.sections.isEmpty {
                return DecodedParameter(name: name, value: EncodedWord.decode(pending.plain ?? []))
            }
            let sorted = pending.sections.sorted { $0.0 < $1.0 }
            var charset: String? = nil, language: String? = nil
            var bytes: [UInt8] = []
            for (index, (number, raw, extended)) in sorted.enumerated() {
                var value = raw
                if extended && index == 0 && number == 0 {
                    // §4: charset "'" language "'" value, only in the first section.
                    let parts = value.split(separator: ASCII.apostrophe, maxSplits: 2, omittingEmptySubsequences: false)
                    if parts.count == 3 {
                        charset = String(decoding: parts[0], as: UTF8.self)
                        language = String(decoding: parts[1], as: UTF8.self)
                        value = Array(parts[2])
                    }
                }
                bytes += extended ? percentDecode(value) : value
            }
            let text = (charset.flatMap { Charset(name: $0) } ?? .utf8).decode(bytes)
            return DecodedParameter(name: name, value: text,
                                    charset: charset.flatMap { $0.isEmpty ? nil : $0 },
                                    language: language.flatMap { $0.isEmpty ? nil : $0 })
        }
    }

    /// §4: `%XX` hex escapes; a malformed escape stays literal.
    static func percentDecode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == ASCII.percent, i + 2 < bytes.count,
               let hi = ASCII.hexValue(bytes[i + 1]), let lo = ASCII.hexValue(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
