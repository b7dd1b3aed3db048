import MIME

/// One message's content as a command needs it, read at most once: the
/// file, or only the cached header block when that is all that is asked,
/// with the cached ENVELOPE and BODYSTRUCTURE renderings. What it had to
/// compute goes to `fresh`, for the backend to keep.
struct IMAPMessageSource {
    /// Bump when IMAPStructure's output changes: cached renderings of other
    /// versions are ignored and replaced.
    static let renderVersion = 3
    /// Header blocks larger than this are not cached (read from the file).
    static let maxCachedHeader = 64 * 1024

    let backend: IMAPBackend
    let user: String
    let info: IMAPMessageInfo
    let cached: IMAPRenderings?
    var file: [UInt8]?
    /// Where the file's header block ends, once the file has been read.
    var headerEnd: Int?
    var fresh = IMAPRenderings()

    init(backend: IMAPBackend, user: String, info: IMAPMessageInfo, cached: IMAPRenderings?) {
        self.backend = backend; self.user = user; self.info = info; self.cached = cached
    }

    mutating func bytes() throws -> [UInt8] {
        if let file { return file }
        let b = try backend.messageBytes(user: user, info)
        file = b
        if cached?.header == nil {
            let end = RFC5322Header.parse(b).bodyStart
            headerEnd = end
            if end <= IMAPMessageSource.maxCachedHeader { fresh.header = Array(b[0..<end]) }
        }
        return b
    }

    /// The header block (the blank line included): cached, or from the file.
    mutating func headerBlock() throws -> [UInt8] {
        if let h = cached?.header ?? fresh.header { return h }
        let b = try bytes()
        return Array(b[0..<(headerEnd ?? RFC5322Header.parse(b).bodyStart)])
    }

    mutating func header() throws -> RFC5322Header { RFC5322Header.parse(try headerBlock()) }

    /// The fields SEARCH, SORT and THREAD read most, lowercased.
    static let searchFields: Set<String> = ["from", "to", "cc", "bcc", "subject", "date", "message-id", "in-reply-to", "references"]

    /// The header block's lines for `searchFields` (continuations included):
    /// cached, or cut from the header block (and kept).
    mutating func searchFieldsBlock() throws -> [UInt8] {
        if let f = cached?.searchFields ?? fresh.searchFields { return f }
        let f = IMAPMessageSource.cutSearchFields(try headerBlock())
        fresh.searchFields = f
        return f
    }

    /// The parsed header of the search fields only.
    mutating func searchHeader() throws -> RFC5322Header { RFC5322Header.parse(try searchFieldsBlock()) }

    static func cutSearchFields(_ h: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var keep = false
        var i = 0
        while i < h.count {
            var end = i
            while end < h.count && h[end] != 10 { end += 1 }
            let line = h[i..<min(end + 1, h.count)]
            if line.first == 13 || line.first == 10 { break } // the blank line ends the header
            if line.first == 32 || line.first == 9 {
                if keep { out += line }
            } else {
                let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
                var name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased()
                while name.last == " " || name.last == "\t" { name.removeLast() }
                keep = colon != line.endIndex && searchFields.contains(name)
                if keep { out += line }
            }
            i = end + 1
        }
        if let last = out.last, last != 10 { out += [13, 10] }
        out += [13, 10]
        return out
    }

    mutating func envelope(into w: inout IMAPWriter) throws {
        if let e = cached?.envelope { w.raw(e); return }
        var r = IMAPWriter()
        IMAPStructure.envelope(Envelope(header: try header()), into: &r)
        fresh.envelope = r.bytes
        w.raw(r.bytes)
    }

    mutating func bodyStructure(_ root: () throws -> MIMEPart, into w: inout IMAPWriter) throws {
        if let b = cached?.bodyStructure { w.raw(b); return }
        var r = IMAPWriter()
        IMAPStructure.body(try root(), extended: true, into: &r)
        fresh.bodyStructure = r.bytes
        w.raw(r.bytes)
    }

    var hasFresh: Bool { fresh.header != nil || fresh.envelope != nil || fresh.bodyStructure != nil || fresh.searchFields != nil }
}

extension IMAPSession {
    /// Cached renderings for a batch of messages (empty when the backend fails).
    func renderings(_ uids: ArraySlice<UInt32>, parts: IMAPRenderings.Parts = .all) -> [IMAPStorageKey: IMAPRenderings] {
        guard let s = selected else { return [:] }
        var cursor = 0
        let keys = uids.compactMap { s.current.next($0, cursor: &cursor)?.storageKey }
        var found = (try? backend.cachedRenderings(keys: keys, version: IMAPMessageSource.renderVersion, parts: parts)) ?? [:]
        if case .searchFields = parts {
            // Search fields not cut yet: from cached header blocks rather than the files.
            let missing = keys.filter { found[$0] == nil }
            if !missing.isEmpty, let headers = try? backend.cachedRenderings(keys: missing, version: IMAPMessageSource.renderVersion,
                                                                             parts: .header) {
                for (k, r) in headers where r.header != nil { found[k] = IMAPRenderings(header: r.header) }
            }
        }
        return found
    }

    func keep(_ sources: [IMAPMessageSource]) {
        var entries: [IMAPStorageKey: IMAPRenderings] = [:]
        for s in sources where s.hasFresh { entries[s.info.storageKey] = s.fresh }
        if !entries.isEmpty { backend.saveRenderings(entries, version: IMAPMessageSource.renderVersion) }
    }

    /// Messages are read in batches this large (one cache query each).
    static let sourceBatch = 256
}
