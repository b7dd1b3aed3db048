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

    var hasFresh: Bool { fresh.header != nil || fresh.envelope != nil || fresh.bodyStructure != nil }
}

extension IMAPSession {
    /// Cached renderings for a batch of messages (empty when the backend fails).
    func renderings(_ uids: ArraySlice<UInt32>, headersOnly: Bool = false) -> [String: IMAPRenderings] {
        guard let s = selected else { return [:] }
        let keys = uids.compactMap { s.current[$0]?.storageKey }
        return (try? backend.cachedRenderings(keys: keys, version: IMAPMessageSource.renderVersion, headersOnly: headersOnly)) ?? [:]
    }

    func keep(_ sources: [IMAPMessageSource]) {
        var entries: [String: IMAPRenderings] = [:]
        for s in sources where s.hasFresh { entries[s.info.storageKey] = s.fresh }
        if !entries.isEmpty { backend.saveRenderings(entries, version: IMAPMessageSource.renderVersion) }
    }

    /// Messages are read in batches this large (one cache query each).
    static let sourceBatch = 256
}
