import MIME
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension IMAPSession {
    // MARK: FETCH (RFC 9051 §6.4.5, §7.5.2)

    /// What one FETCH will send: the messages and items, fixed when it starts.
    struct FetchPlan: Sendable {
        var uids: [UInt32]
        var items: [IMAPFetchItem]
        var marksSeen: Bool
        var changedSince: Int64?
        /// Only the header is needed (ENVELOPE, flags, sizes...): no MIME walk of the body.
        var headerOnly: Bool
        var usesRenderings: Bool {
            items.contains { item in
                switch item {
                case .envelope, .bodyStructure: return true
                case .bodySection, .rfc822Header: return headerOnly
                default: return false
                }
            }
        }
    }

    func fetchPlan(set: IMAPSequenceSet, items requested: [IMAPFetchItem], byUID: Bool, changedSince: Int64?) throws -> FetchPlan {
        let s = selected!
        var items = requested
        if (byUID || qresync) && !items.contains(.uid) { items.insert(.uid, at: 0) }
        if changedSince != nil && !items.contains(.modseq) { items.append(.modseq) }
        let uids = resolve(set, byUID: byUID)
        let marksSeen = !s.readOnly && items.contains(where: \.setsSeen)
        if marksSeen {
            let unseen = s.uids(uids, flag: IMAPMessageInfo.seen, has: false)
            if !unseen.isEmpty {
                _ = try backend.setFlags(user: user!, mailbox: s.name, uids: unseen, mode: .add, flags: ["\\Seen"], unchangedSince: nil)
                try refresh()
            }
        }
        let headerOnly = items.allSatisfy { item in
            switch item {
            case .uid, .flags, .internalDate, .rfc822Size, .modseq, .envelope, .rfc822Header: return true
            case .bodySection(let section, _, _):
                switch section.text {
                case .header, .headerFields, .headerFieldsNot: return section.part.isEmpty
                default: return false
                }
            default: return false
            }
        }
        return FetchPlan(uids: uids, items: items, marksSeen: marksSeen, changedSince: changedSince, headerOnly: headerOnly)
    }

    /// Responses are sent in pieces of about this size (see `Outcome.partial`).
    static let fetchChunkBytes = 256 * 1024

    func fetchChunk(_ start: IMAPWriter, tag: String, plan: FetchPlan, from: Int) -> Outcome {
        var w = start
        var i = from
        do {
            while i < plan.uids.count && w.bytes.count < IMAPSession.fetchChunkBytes {
                let batch = plan.uids[i..<min(i + IMAPSession.sourceBatch, plan.uids.count)]
                let cache = plan.usesRenderings ? renderings(batch) : [:]
                var used: [IMAPMessageSource] = []
                defer { keep(used) }
                for uid in batch {
                    guard w.bytes.count < IMAPSession.fetchChunkBytes else { break }
                    if let source = try fetchOne(&w, plan: plan, uid: uid, cache: cache) { used.append(source) }
                    i += 1
                }
            }
        } catch {
            w.raw(failure(error, tag: tag))
            return .respond(w.bytes)
        }
        if i < plan.uids.count {
            let next = i
            return .partial(w.bytes) { self.fetchChunk(IMAPWriter(), tag: tag, plan: plan, from: next) }
        }
        w.status(tag: tag, "OK", "FETCH completed")
        return .respond(w.bytes)
    }

    /// One FETCH response; returns the message's source when it was read.
    func fetchOne(_ w: inout IMAPWriter, plan: FetchPlan, uid: UInt32, cache: [IMAPStorageKey: IMAPRenderings]) throws -> IMAPMessageSource? {
        let items = plan.items, marksSeen = plan.marksSeen
        // Expunged by another session meanwhile: nothing to say until it may be reported.
        guard selected != nil, let m = selected!.current[uid], let seq = selected!.sequence(of: uid) else { return nil }
        if let since = plan.changedSince, m.modseq <= since { return nil }
        var source = IMAPMessageSource(backend: backend, user: user!, info: m, cached: cache[m.storageKey])
        var parts = IMAPWriter()
        do {
            var body: [UInt8]?
                func bytes() throws -> [UInt8] {
                    if body == nil { body = try backend.messageBytes(user: user!, m) }
                    return body!
                }
                var parsed: MIMEPart?
                func mime() throws -> MIMEPart {
                    if parsed == nil { parsed = MIMEMessage.parse(try bytes()) }
                    return parsed!
                }
                func header() throws -> RFC5322Header {
                    if let parsed { return parsed.header }
                    return RFC5322Header.parse(try bytes())
                }
                var first = true
                func item(_ name: String) { if !first { parts.space() }; first = false; parts.raw(name) }
                var flagsSent = false
                for it in items {
                    switch it {
                    case .uid: item("UID \(uid)")
                    case .flags: item("FLAGS "); parts.flags(of: m); flagsSent = true
                    case .internalDate: item("INTERNALDATE \"\(IMAPDate.formatDateTime(m.internalDate))\"")
                    case .rfc822Size: item("RFC822.SIZE \(m.size)")
                    case .modseq: item("MODSEQ (\(m.modseq))")
                    case .rfc822: item("RFC822 "); parts.literal(IMAPSession.textSafe(try bytes()))
                    case .rfc822Header: item("RFC822.HEADER "); parts.literal(IMAPSession.textSafe(try sectionBytes(try bytes(), try mime(), IMAPSection(text: .header))))
                    case .rfc822Text: item("RFC822.TEXT "); parts.literal(IMAPSession.textSafe(try sectionBytes(try bytes(), try mime(), IMAPSection(text: .text))))
                    case .envelope:
                        item("ENVELOPE ")
                        try source.envelope(into: &parts)
                    case .bodyStructure:
                        item("BODYSTRUCTURE ")
                        try source.bodyStructure(mime, into: &parts)
                    case .body:
                        item("BODY ")
                        IMAPStructure.body(try mime(), extended: false, into: &parts)
                    case .binary(let path, let partial, _):
                        let decoded = try binary(try bytes(), try mime(), path)
                        var name = "BINARY[" + path.map(String.init).joined(separator: ".") + "]"
                        var data = decoded
                        if let p = partial {
                            name += "<\(p.lowerBound)>"
                            let lo = min(p.lowerBound, decoded.count), hi = min(p.upperBound + 1, decoded.count)
                            data = Array(decoded[lo..<hi])
                        }
                        item(name + " ")
                        parts.literal(data, binary: true)
                    case .binarySize(let path):
                        item("BINARY.SIZE[" + path.map(String.init).joined(separator: ".") + "] \(try binary(try bytes(), try mime(), path).count)")
                    case .bodySection(let section, let partial, _):
                        let full = try sectionBytes(try bytes(), try mime(), section)
                        var name = "BODY[" + sectionName(section) + "]"
                        var data = full
                        if let p = partial {
                            name += "<\(p.lowerBound)>"
                            let lo = min(p.lowerBound, full.count), hi = min(p.upperBound + 1, full.count)
                            data = Array(full[lo..<hi])
                        }
                        item(name + " ")
                        parts.literal(IMAPSession.textSafe(data))
                    }
                }
                if marksSeen && !flagsSent { item("FLAGS "); parts.flags(of: m) }
                if flagsSent || marksSeen { selected!.reported[uid] = m.modseq; selected!.dirty.remove(uid) }
        } catch IMAPBackendError.nonexistent {
            return nil // its file went with an expunge by another session; reported later
        }
        w.raw("* \(seq + 1) FETCH (")
        w.raw(parts.bytes)
        w.raw(")")
        w.crlf()
        return source
    }

    /// BODY[] and RFC822 literals cannot carry NUL (RFC 9051 §4.3); content
    /// appended as binary shows 0x80 in their place there, BINARY[] has it exact.
    static func textSafe(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(0) else { return bytes }
        return bytes.map { $0 == 0 ? 0x80 : $0 }
    }

    func sectionName(_ s: IMAPSection) -> String {
        let prefix = s.part.map(String.init).joined(separator: ".")
        let text: String
        switch s.text {
        case .whole: text = ""
        case .header: text = "HEADER"
        case .text: text = "TEXT"
        case .mime: text = "MIME"
        case .headerFields(let f): text = "HEADER.FIELDS (\(f.joined(separator: " ")))"
        case .headerFieldsNot(let f): text = "HEADER.FIELDS.NOT (\(f.joined(separator: " ")))"
        }
        return [prefix, text].filter { !$0.isEmpty }.joined(separator: ".")
    }

    /// BODY[section] (RFC 9051 §6.4.5) through the MIME tree. A section
    /// that does not exist in this message is empty.
    func sectionBytes(_ message: [UInt8], _ root: MIMEPart, _ s: IMAPSection) throws -> [UInt8] {
        func slice(_ r: Range<Int>?) -> [UInt8] {
            guard let r else { return [] }
            return Array(message[r.clamped(to: 0..<message.count)])
        }
        switch s.text {
        case .whole: return s.part.isEmpty ? message : slice(root.bodyBytes(at: s.part))
        case .header: return slice(root.headerBytes(at: s.part))
        case .text: return slice(root.textBytes(at: s.part))
        case .mime: return slice(root.mimeHeaderBytes(at: s.part))
        case .headerFields(let names): return root.headerFieldsBytes(message, at: s.part, names: names, excluding: false) ?? []
        case .headerFieldsNot(let names): return root.headerFieldsBytes(message, at: s.part, names: names, excluding: true) ?? []
        }
    }

    /// BINARY[part] (RFC 3516): the part's content with its transfer
    /// encoding removed; an unknown encoding is NO [UNKNOWN-CTE].
    func binary(_ message: [UInt8], _ root: MIMEPart, _ path: [Int]) throws -> [UInt8] {
        if path.isEmpty { return message }
        guard let part = root.part(at: path) else { return [] }
        switch part.decodedBody(message) {
        case .success(let bytes): return bytes
        case .failure(let e) where e.code == .notALeaf:
            throw SessionError(kind: "NO", code: nil, text: "BINARY needs a leaf part")
        case .failure:
            throw SessionError(kind: "NO", code: "UNKNOWN-CTE", text: "Unknown Content-Transfer-Encoding")
        }
    }

    // MARK: STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3)

    func store(_ w: inout IMAPWriter, set: IMAPSequenceSet, mode: IMAPStoreMode, silent: Bool, flags: [String], byUID: Bool,
               unchangedSince: Int64?) throws -> [UInt32] {
        let s = selected!
        let uids = resolve(set, byUID: byUID)
        let failed = try backend.setFlags(user: user!, mailbox: s.name, uids: uids, mode: mode, flags: flags, unchangedSince: unchangedSince)
        try refresh()
        let failedSet = Set(failed)
        for uid in uids where !failedSet.contains(uid) {
            guard let m = selected!.current[uid], let seq = selected!.sequence(of: uid) else { continue }
            let changedByUs = selected!.reported[uid] != m.modseq
            selected!.reported[uid] = m.modseq
            selected!.dirty.remove(uid)
            // RFC 7162 §3.1.3: with CONDSTORE, a silent STORE still reports MODSEQ.
            if silent && !(condstore && changedByUs) { continue }
            w.raw("* \(seq + 1) FETCH (")
            if byUID || qresync { w.raw("UID \(uid) ") }
            w.raw("FLAGS ")
            w.flags(of: m)
            if condstore { w.raw(" MODSEQ (\(m.modseq))") }
            w.raw(")")
            w.crlf()
        }
        return byUID ? failed : failed.compactMap { u in selected!.sequence(of: u).map { UInt32($0 + 1) } }
    }

    // MARK: SEARCH (RFC 9051 §6.4.4, RFC 4731 ESEARCH, RFC 5182 SEARCHRES)

    /// (sequence number, UID) of the messages matching `key`, in mailbox order.
    func search(_ key: IMAPSearchKey) throws -> [(UInt32, UInt32)] {
        let s = selected!
        var out: [(UInt32, UInt32)] = []
        let count = UInt32(s.uids.count), star = s.uids.last ?? 0
        let saved = key.usesSavedResult ? Set(savedUIDs) : []
        let needsContent = key.needsContent, fieldsOnly = key.readsOnlySearchFields, readsHeader = key.readsHeader
        guard let first = s.current.first else { return [] }
        // One context, reset for each message.
        let ctx = SearchContext(seq: 0, count: count, star: star, info: first, saved: saved, fieldsOnly: fieldsOnly,
                                source: IMAPMessageSource(backend: backend, user: user!, info: first, cached: nil))
        var i = 0, cursor = 0
        while i < s.uids.count {
            let batch = s.uids[i..<min(i + IMAPSession.sourceBatch, s.uids.count)]
            // The cached header block or search fields serve header keys; BODY reads the file anyway.
            let cache = needsContent && readsHeader ? renderings(batch, parts: fieldsOnly ? .searchFields : .header) : [:]
            var used: [IMAPMessageSource] = []
            defer { keep(used) }
            for uid in batch {
                i += 1
                guard let m = s.current.next(uid, cursor: &cursor) else { continue }
                // Flags, sizes, dates and numbers need no content: no source is made for them.
                ctx.reset(seq: UInt32(i), info: m,
                          source: needsContent ? IMAPMessageSource(backend: backend, user: user!, info: m, cached: cache[m.storageKey]) : nil)
                do {
                    if try ctx.matches(key) { out.append((UInt32(i), uid)) }
                } catch IMAPBackendError.nonexistent {
                    continue // expunged by another session meanwhile
                }
                if needsContent && readsHeader { used.append(ctx.source) }  // BODY alone fetched no cache to add to
            }
        }
        return out
    }

    /// SEARCH, or ESEARCH when the client asked for RETURN options or
    /// speaks IMAP4rev2 (RFC 9051 §7.3.4); SAVE keeps the result for `$`.
    func searchResponse(_ w: inout IMAPWriter, tag: String, found: [(UInt32, UInt32)], key: IMAPSearchKey, byUID: Bool,
                        returns: [String]?) {
        let numbers = found.map { byUID ? $0.1 : $0.0 }
        var highest: Int64?
        if key.usesModseq {
            // RFC 7162 §3.1.5: the highest MODSEQ of the matching messages.
            highest = found.compactMap { selected!.current[$0.1]?.modseq }.max()
        }
        guard returns != nil || enabled.contains("IMAP4REV2") else {
            w.raw("* SEARCH")
            for n in numbers { w.raw(" \(n)") }
            if let highest { w.raw(" (MODSEQ \(highest))") }
            w.crlf()
            return
        }
        var options = Set(returns ?? [])
        if options.isEmpty || options == ["SAVE"] && returns!.isEmpty { options.insert("ALL") }
        if options.contains("SAVE") {
            // RFC 5182 §2.1: with only MIN and/or MAX, those are what is saved.
            let uids = found.map(\.1)
            if options.isDisjoint(with: ["ALL", "COUNT"]) && !options.isDisjoint(with: ["MIN", "MAX"]) {
                savedUIDs = [options.contains("MIN") ? uids.first : nil, options.contains("MAX") ? uids.last : nil].compactMap { $0 }
            } else {
                savedUIDs = uids
            }
            options.remove("SAVE")
            if options.isEmpty { return } // SAVE alone: no ESEARCH response
        }
        w.raw("* ESEARCH (TAG "); w.string(tag); w.raw(")")
        if byUID { w.raw(" UID") }
        if options.contains("MIN"), let v = numbers.min() { w.raw(" MIN \(v)") }
        if options.contains("MAX"), let v = numbers.max() { w.raw(" MAX \(v)") }
        if options.contains("ALL"), !numbers.isEmpty { w.raw(" ALL " + IMAPSession.uidSet(numbers.sorted())) }
        if options.contains("COUNT") { w.raw(" COUNT \(numbers.count)") }
        if let highest, !numbers.isEmpty { w.raw(" MODSEQ \(highest)") }
        w.crlf()
    }
}

/// One message under a search key. A class so that what the key reads
/// (file, header block) is read once whatever the key's shape.
final class SearchContext {
    var seq: UInt32
    let count: UInt32, star: UInt32
    var info: IMAPMessageInfo
    let saved: Set<UInt32>
    var source: IMAPMessageSource

    func reset(seq: UInt32, info: IMAPMessageInfo, source: IMAPMessageSource?) {
        self.seq = seq; self.info = info; parsedHeader = nil
        if let source { self.source = source }
    }

    /// Every header the key reads is a search field (read from that cache).
    let fieldsOnly: Bool

    init(seq: UInt32, count: UInt32, star: UInt32, info: IMAPMessageInfo, saved: Set<UInt32> = [], fieldsOnly: Bool = false,
         source: IMAPMessageSource) {
        self.seq = seq; self.count = count; self.star = star; self.info = info; self.saved = saved; self.fieldsOnly = fieldsOnly
        self.source = source
    }

    /// Reused by `bodyRuledOut` from one message to the next.
    var scratch: [UInt8] = []

    var parsedHeader: RFC5322Header?
    func header() throws -> RFC5322Header {
        if let parsedHeader { return parsedHeader }
        let h = try source.header()
        parsedHeader = h
        return h
    }

    /// The search fields parsed (`Date:` for SENT*); the whole header when parsed already.
    func fieldsHeader() throws -> RFC5322Header {
        if let parsedHeader { return parsedHeader }
        return try source.searchHeader()
    }

    func bytes() throws -> [UInt8] { try source.bytes() }

    func contains(_ haystack: String, _ needle: String) -> Bool { SearchContext.textContains(haystack, needle) }

    func matches(_ key: IMAPSearchKey) throws -> Bool {
        switch key {
        case .all: return true
        case .and(let keys): return try keys.allSatisfy { try matches($0) }
        case .or(let a, let b): return try matches(a) || matches(b)
        case .not(let k): return try !matches(k)
        case .sequence(let set): return set.isSavedResult ? saved.contains(info.uid) : set.contains(seq, star: count)
        case .uid(let set): return set.isSavedResult ? saved.contains(info.uid) : set.contains(info.uid, star: star)
        case .flag(let f, let on):
            if f == "\\Recent" { return !on }
            let bit = IMAPMessageInfo.systemBit(f)
            if bit != 0 { return info.has(bit) == on }
            return info.keywords.contains { SearchContext.sameFlag($0, f) } == on
        case .keyword(let k, let on): return info.keywords.contains { SearchContext.sameFlag($0, k) } == on
        case .larger(let n): return info.size > Int64(n)
        case .smaller(let n): return info.size < Int64(n)
        case .modseq(let n): return info.modseq >= n
        case .before(let d), .on(let d), .since(let d):
            guard let day = IMAPDate.parseDate(d) else { throw IMAPSession.SessionError(text: "Bad date") }
            let t = info.internalDate
            if case .before = key { return t < day }
            if case .on = key { return t >= day && t < day + 86400 }
            return t >= day
        case .sentBefore(let d), .sentOn(let d), .sentSince(let d):
            // RFC 9051 §6.4.4: the Date: header's date, its time zone disregarded;
            // the internal date stands in when the header is missing or unreadable.
            guard let day = IMAPDate.parseDate(d) else { throw IMAPSession.SessionError(text: "Bad date") }
            let t = sentDay(try fieldsHeader())
            if case .sentBefore = key { return t < day }
            if case .sentOn = key { return t >= day && t < day + 86400 }
            return t >= day
        case .header(let name, let value):
            // Without `fieldsOnly` the header block was fetched: it holds every field.
            let block = fieldsOnly ? try source.searchFieldsBlock() : try source.headerBlock()
            let values = SearchContext.headerValues(block, named: name)
            if value.isEmpty { return !values.isEmpty }
            return values.contains { SearchContext.headerContains($0, value) }
        case .body(let text):
            if SearchContext.bodyRuledOut(try source.bytes(), text, scratch: &scratch) { return false }
            return contains(try bodyText(), text)
        case .text(let text):
            let h = try header()
            if h.fields.contains(where: { contains(EncodedWord.decode($0.unfoldedValue), text) }) { return true }
            return contains(try bodyText(), text)
        }
    }


    /// The day (UTC midnight) of the Date: header in its own zone.
    func sentDay(_ h: RFC5322Header) -> Int64 {
        if let raw = h["Date"], let d = RFC5322Date.parseZoned(raw) {
            let local = d.utc + Int64(d.offsetMinutes) * 60
            return local - ((local % 86400) + 86400) % 86400
        }
        return info.internalDate - ((info.internalDate % 86400) + 86400) % 86400
    }

    /// The text of every text part, transfer encoding removed and converted
    /// to UTF-8 (what a person would search in).
    func bodyText() throws -> String { SearchContext.bodyText(of: try bytes()) }

    static func bodyText(of message: [UInt8]) -> String {
        let root = MIMEMessage.parse(message)
        var out = ""
        func walk(_ p: MIMEPart) {
            if p.isMultipart { p.children.forEach(walk); return }
            if p.isMessage, let inner = p.message {
                for f in inner.header.fields { out += EncodedWord.decode(f.unfoldedValue); out += "\n" }
                walk(inner)
                return
            }
            guard p.contentType.type == "text" else { return }
            let raw: [UInt8]
            switch p.decodedBody(message) {
            case .success(let d): raw = d
            case .failure: raw = Array(message[p.bodyRange.clamped(to: 0..<message.count)])
            }
            let charset = p.contentType.parameter("charset").flatMap { Charset(name: $0) } ?? .utf8
            out += charset.decode(raw)
            out += "\n"
            guard out.utf8.count < SearchContext.maxText else { return }
        }
        walk(root)
        return out
    }

    /// Text searched per message is bounded (large attachments are not text).
    static let maxText = 4 << 20
}

extension SearchContext {
    /// Flag names compare case-insensitively (RFC 9051 §2.3.2), without allocating.
    static func sameFlag(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        return zip(x, y).allSatisfy { ($0 | 0x20) == ($1 | 0x20) && (($0 | 0x20) >= 97 && ($0 | 0x20) <= 122 || $0 == $1) }
    }

    /// The unfolded values of the fields called `name` in a header block,
    /// found by scanning lines (no full parse: SEARCH visits every message).
    static func headerValues(_ h: [UInt8], named name: String) -> [[UInt8]] {
        let n = Array(name.utf8)
        var out: [[UInt8]] = []
        var current: [UInt8]?
        var i = 0
        while i < h.count {
            var end = i
            while end < h.count && h[end] != 10 { end += 1 }
            var lineEnd = end
            if lineEnd > i && h[lineEnd - 1] == 13 { lineEnd -= 1 }
            if lineEnd == i { break } // the blank line ends the header
            if h[i] == 32 || h[i] == 9 {
                if current != nil { current! += h[i..<lineEnd] }
            } else {
                if let c = current { out.append(c); current = nil }
                if lineEnd - i > n.count {
                    var matches = true
                    for j in 0..<n.count where (h[i + j] | 0x20) != (n[j] | 0x20) { matches = false; break }
                    if matches {
                        var k = i + n.count
                        while k < lineEnd && (h[k] == 32 || h[k] == 9) { k += 1 }
                        if k < lineEnd && h[k] == UInt8(ascii: ":") { current = Array(h[(k + 1)..<lineEnd]) }
                    }
                }
            }
            i = end + 1
        }
        if let c = current { out.append(c) }
        return out
    }

    /// `haystack` contains `needle`, case-insensitively (both lowercased), as
    /// a search of UTF-8 bytes: an ASCII needle folds only ASCII letters of
    /// the haystack in place, others compare the lowercased strings.
    static func textContains(_ haystack: String, _ needle: String) -> Bool {
        let n = Array(needle.lowercased().utf8)
        guard !n.isEmpty else { return true }
        var h: [UInt8]
        if n.allSatisfy({ $0 < 0x80 }) {
            h = Array(haystack.utf8)
            h.withUnsafeMutableBufferPointer { b in
                for i in b.indices where b[i] >= 65 && b[i] <= 90 { b[i] |= 0x20 }
            }
        } else {
            h = Array(haystack.lowercased().utf8)
        }
        guard h.count >= n.count else { return false }
        return h.withUnsafeBufferPointer { hb in n.withUnsafeBufferPointer { nb in
            // memchr finds candidates for the first byte; memcmp checks the rest.
            let first = Int32(nb[0]), last = hb.count - nb.count
            var i = 0
            while i <= last {
                guard let p = memchr(hb.baseAddress! + i, first, last - i + 1) else { return false }
                i = hb.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self))
                if memcmp(hb.baseAddress! + i, nb.baseAddress!, nb.count) == 0 { return true }
                i += 1
            }
            return false
        } }
    }

    /// Whether a message's raw bytes prove that BODY `needle` cannot match,
    /// without a MIME parse. For a needle of printable ASCII without spaces:
    /// every charset the search decodes keeps ASCII bytes as they are and
    /// makes no ASCII from other bytes, and the search folds ASCII case only
    /// (`textContains`). So unless some part is transfer-encoded or is an
    /// encapsulated message (`hasDecodingField`), the text searched is made
    /// of pieces of the raw bytes. False when unsure.
    static func bodyRuledOut(_ raw: [UInt8], _ needle: String, scratch: inout [UInt8]) -> Bool {
        let n = Array(needle.utf8).map(ASCIIFold.lower)
        guard !n.isEmpty, n.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return false }
        raw.withUnsafeBufferPointer { ASCIIFold.lowercase($0, into: &scratch) }
        return scratch.withUnsafeBufferPointer { folded in
            let text = UnsafeBufferPointer(rebasing: folded[0..<raw.count])
            return ASCIIFold.firstIndex(of: n, in: text, from: 0) == nil && !hasDecodingField(text)
        }
    }

    static let contentType = Array("content-type".utf8), transferEncoding = Array("content-transfer-encoding".utf8)
    static let identityEncodings = ["7bit", "8bit", "binary"].map { Array($0.utf8) }

    /// Whether a message (lowercased) has, anywhere, a Content-Type or
    /// Content-Transfer-Encoding field that makes the search decode: a
    /// transfer encoding other than 7bit, 8bit or binary, a message/* or
    /// multipart/digest type (encapsulated headers are unfolded and RFC
    /// 2047-decoded), or a value the parser may read otherwise than written
    /// (a comment). Field names are matched as the header parser does: at a
    /// line's start, then white space and a colon; values unfolded.
    static func hasDecodingField(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        let lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        func isWSP(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
        for name in [transferEncoding, contentType] {
            var from = 0
            while let at = ASCIIFold.firstIndex(of: name, in: text, from: from) {
                from = at + 1
                guard at == 0 || text[at - 1] == lf else { continue }
                var i = at + name.count
                while i < text.count && isWSP(text[i]) { i += 1 }
                guard i < text.count, text[i] == UInt8(ascii: ":") else { continue }
                // The value, folded lines included, without CR and LF (as HeaderField.unfoldedValue).
                var value: [UInt8] = []
                i += 1
                while i < text.count {
                    if text[i] == lf {
                        guard i + 1 < text.count, isWSP(text[i + 1]) else { break }
                    } else if text[i] != cr {
                        value.append(text[i])
                    }
                    i += 1
                }
                if value.contains(UInt8(ascii: "(")) { return true }
                let trimmed = value.drop { isWSP($0) }.reversed().drop { isWSP($0) }.reversed()
                if name == contentType {
                    let main = Array(trimmed.prefix { $0 != UInt8(ascii: ";") })
                    if ASCIIFold.firstIndex(of: Array("message".utf8), in: main) != nil
                        || ASCIIFold.firstIndex(of: Array("digest".utf8), in: main) != nil { return true }
                } else if !identityEncodings.contains(Array(trimmed)) {
                    return true
                }
            }
        }
        return false
    }

    /// A header value contains `needle`, case-insensitively, once RFC 2047
    /// words are decoded. Plain ASCII values (most) are compared as bytes.
    static func headerContains(_ raw: [UInt8], _ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard !n.isEmpty else { return true }
        var plain = true
        for (i, b) in raw.enumerated() where b >= 0x80 || (b == UInt8(ascii: "=") && i + 1 < raw.count && raw[i + 1] == UInt8(ascii: "?")) {
            plain = false
            break
        }
        guard plain, n.allSatisfy({ $0 < 0x80 }) else {
            return textContains(EncodedWord.decode(raw), needle)
        }
        func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b | 0x20 : b }
        let ln = n.map(lower)
        guard raw.count >= ln.count else { return false }
        outer: for start in 0...(raw.count - ln.count) {
            for j in 0..<ln.count where lower(raw[start + j]) != ln[j] { continue outer }
            return true
        }
        return false
    }
}

extension IMAPSearchKey {
    /// Whether matching reads message content (headers or text).
    var needsContent: Bool {
        switch self {
        case .header, .body, .text, .sentBefore, .sentOn, .sentSince: return true
        case .and(let keys): return keys.contains { $0.needsContent }
        case .or(let a, let b): return a.needsContent || b.needsContent
        case .not(let k): return k.needsContent
        default: return false
        }
    }

    /// Whether matching reads header fields (BODY alone reads only the text).
    var readsHeader: Bool {
        switch self {
        case .header, .text, .sentBefore, .sentOn, .sentSince: return true
        case .and(let keys): return keys.contains { $0.readsHeader }
        case .or(let a, let b): return a.readsHeader || b.readsHeader
        case .not(let k): return k.readsHeader
        default: return false
        }
    }

    /// Whether the content the key reads is only among the search fields
    /// (`IMAPMessageSource.searchFields`): no other header, no text.
    var readsOnlySearchFields: Bool {
        switch self {
        case .header(let name, _): return IMAPMessageSource.searchFields.contains(name.lowercased())
        case .body, .text: return false
        case .and(let keys): return keys.allSatisfy { $0.readsOnlySearchFields }
        case .or(let a, let b): return a.readsOnlySearchFields && b.readsOnlySearchFields
        case .not(let k): return k.readsOnlySearchFields
        default: return true
        }
    }

    /// Whether `$` (RFC 5182) appears anywhere in the key.
    var usesSavedResult: Bool {
        switch self {
        case .sequence(let s), .uid(let s): return s.isSavedResult
        case .and(let keys): return keys.contains { $0.usesSavedResult }
        case .or(let a, let b): return a.usesSavedResult || b.usesSavedResult
        case .not(let k): return k.usesSavedResult
        default: return false
        }
    }

    /// Whether a MODSEQ criterion appears (RFC 7162 §3.1.5).
    var usesModseq: Bool {
        switch self {
        case .modseq: return true
        case .and(let keys): return keys.contains { $0.usesModseq }
        case .or(let a, let b): return a.usesModseq || b.usesModseq
        case .not(let k): return k.usesModseq
        default: return false
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}

/// ASCII case folding over raw bytes.
enum ASCIIFold {
    static func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b | 0x20 : b }

    /// `bytes` with ASCII letters lowercased, into `scratch` (kept between
    /// calls: one allocation for a whole search).
    static func lowercase(_ bytes: UnsafeBufferPointer<UInt8>, into scratch: inout [UInt8]) {
        if scratch.count < bytes.count { scratch = [UInt8](repeating: 0, count: bytes.count) }
        guard let src = bytes.baseAddress else { return }
        scratch.withUnsafeMutableBufferPointer { dst in
            let d = dst.baseAddress!
            // Branch-free, so the compiler vectorises it.
            for i in 0..<bytes.count {
                let b = src[i]
                d[i] = b &+ (b &- 65 < 26 ? 32 : 0)
            }
        }
    }

    /// Where `needle` first starts in `hay` at or after `from`. memchr looks
    /// for the needle's least common byte (in mail text), so it stops rarely;
    /// each stop is checked with memcmp.
    static func firstIndex(of needle: [UInt8], in hay: UnsafeBufferPointer<UInt8>, from: Int = 0) -> Int? {
        guard let base = hay.baseAddress, !needle.isEmpty, from >= 0, hay.count - from >= needle.count else { return nil }
        let k = needle.indices.min { commonness[Int(needle[$0])] < commonness[Int(needle[$1])] }!
        let probe = Int32(needle[k])
        let lastStart = hay.count - needle.count
        var i = from + k  // where the probe byte may be: a start + k
        while i <= lastStart + k, let p = memchr(base + i, probe, lastStart + k - i + 1) {
            let start = base.distance(to: p.assumingMemoryBound(to: UInt8.self)) - k
            if memcmp(base + start, needle, needle.count) == 0 { return start }
            i = start + k + 1
        }
        return nil
    }

    static func firstIndex(of needle: [UInt8], in hay: [UInt8]) -> Int? {
        hay.withUnsafeBufferPointer { firstIndex(of: needle, in: $0) }
    }

    /// How common a byte is in mail text, higher is more common: letters by
    /// English frequency, then markup and digits; anything else is rare.
    static let commonness: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 256)
        let order = Array("zqxj9876543210\"'><:=/-,.kvbpygfwmucldrhsnioate \r\n".utf8)
        for (rank, b) in order.enumerated() { table[Int(b)] = UInt8(rank + 1) }
        return table
    }()
}
