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
        merge(parameters).map { m in
            if m.isPlain { return DecodedParameter(name: m.name, value: EncodedWord.decode(m.bytes)) }
            let text = (m.charset.flatMap { Charset(name: $0) } ?? .utf8).decode(m.bytes)
            return DecodedParameter(name: m.name, value: text,
                                    charset: m.charset.flatMap { $0.isEmpty ? nil : $0 },
                                    language: m.language.flatMap { $0.isEmpty ? nil : $0 })
        }
    }

    /// One parameter after §3 merging and §4 percent-decoding, its octets
    /// not yet converted from `charset`.
    struct Merged {
        /// Lowercased name without any `*N` / `*` suffix.
        var name: String
        var bytes: [UInt8]
        var charset: String?
        var language: String?
        /// A plain `name=value`: no sections, not extended.
        var isPlain: Bool
    }

    /// §3 and §4 without the charset conversion: what `decode` builds on,
    /// and what byte-exact values such as the multipart boundary use.
    static func merge(_ parameters: [MIMEParameter]) -> [Merged] {
        if parameters.count == 1, !parameters[0].name.utf8.contains(ASCII.asterisk) {
            // The common case (one lookup's one plain piece): nothing to merge.
            return [Merged(name: parameters[0].name.lowercased(), bytes: parameters[0].value, isPlain: true)]
        }
        struct Pending { var sections: [(Int, [UInt8], Bool)] = []; var plain: [UInt8]? }
        var order: [String] = []
        var byName: [String: Pending] = [:]
        for p in parameters {
            let split = splitName(p.name)
            let name = split.base.lowercased()
            if byName[name] == nil { order.append(name); byName[name] = Pending() }
            if let section = split.section {
                byName[name]!.sections.append((section, p.value, split.extended))
            } else if split.extended {
                byName[name]!.sections.append((0, p.value, true))
            } else if byName[name]!.plain == nil {
                byName[name]!.plain = p.value
            }
        }
        return order.map { name in
            let pending = byName[name]!
            if pending.sections.isEmpty {
                return Merged(name: name, bytes: pending.plain ?? [], isPlain: true)
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
            return Merged(name: name, bytes: bytes, charset: charset, language: language, isPlain: false)
        }
    }

    /// Joins §3 continuations back into one parameter each, for IMAP
    /// BODYSTRUCTURE (RFC 9051 §7.5.2: servers SHOULD decode parameter
    /// value continuations), in a form clients already read:
    /// - only plain sections (`name*0="a"; name*1="b"`): `name` with the
    ///   sections' values concatenated;
    /// - any section extended (§4.1): `name*`, whose value is section 0 as
    ///   written (`charset'language'…`, or `''` and the value when section 0
    ///   is plain), then the further sections: extended ones as written,
    ///   plain ones with "%" escaped as "%25" so the whole still
    ///   percent-decodes to the right octets.
    /// The charset conversion is left to the client, which keeps the label.
    /// Sections that are not exactly 0…n (a gap, a repeat) are left as
    /// written, as is everything that has no section number (`name*=…`
    /// included). A joined parameter takes the place of its first section;
    /// names compare case-insensitively and section 0's spelling is kept.
    public static func joinContinuations(_ parameters: [MIMEParameter]) -> [MIMEParameter] {
        let split = parameters.map { splitName($0.name) }
        var sections: [String: [Int]] = [:]
        for (i, s) in split.enumerated() where s.section != nil {
            sections[s.base.lowercased(), default: []].append(i)
        }
        var joined: [String: MIMEParameter] = [:]
        for (key, indices) in sections {
            let ordered = indices.sorted { split[$0].section! < split[$1].section! }
            guard ordered.map({ split[$0].section! }) == Array(0..<ordered.count) else { continue }
            let extended = ordered.contains { split[$0].extended }
            var value: [UInt8] = []
            for (k, i) in ordered.enumerated() {
                let raw = parameters[i].value
                if !extended || split[i].extended {
                    value += raw
                } else {
                    if k == 0 { value += [ASCII.apostrophe, ASCII.apostrophe] }
                    value += escapePercent(raw)
                }
            }
            let name = String(split[ordered[0]].base) + (extended ? "*" : "")
            joined[key] = MIMEParameter(name: name, value: value)
        }
        var out: [MIMEParameter] = []
        var written = Set<String>()
        for (i, p) in parameters.enumerated() {
            let key = split[i].section == nil ? nil : split[i].base.lowercased()
            guard let key, let j = joined[key] else { out.append(p); continue }
            if written.insert(key).inserted { out.append(j) }
        }
        return out
    }

    /// The parameters that make up the one named `name` (lowercased): its
    /// plain, extended and sectioned forms. Merging just these gives the
    /// same value as merging all, without decoding the others.
    static func pieces(of name: String, in parameters: [MIMEParameter]) -> [MIMEParameter] {
        parameters.filter { p in
            let base = splitName(p.name).base.utf8
            return base.count == name.utf8.count && zip(base, name.utf8).allSatisfy { ASCII.lower($0) == $1 }
        }
    }

    /// A parameter name as §3 and §4 build it: `base` ["*" section] ["*"].
    /// A section is decimal digits below `maximumSections`; anything else
    /// after a "*" is part of the base name.

    static func splitName(_ name: String) -> (base: Substring, section: Int?, extended: Bool) {
        var base = Substring(name)
        var extended = false
        if base.hasSuffix("*") { extended = true; base.removeLast() }
        if let star = base.lastIndex(of: "*") {
            let digits = base[base.index(after: star)...]
            if !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
               let n = Int(digits), n < maximumSections {
                return (base[..<star], n, extended)
            }
        }
        return (base, nil, extended)
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

    /// "%" → "%25", so a plain section can join an extended value (§4).
    static func escapePercent(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(ASCII.percent) else { return bytes }
        var out: [UInt8] = []
        for b in bytes {
            if b == ASCII.percent { out += [ASCII.percent, 0x32, 0x35] } else { out.append(b) }
        }
        return out
    }
}
