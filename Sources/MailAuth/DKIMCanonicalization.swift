import Crypto

/// The canonicalization algorithms of RFC 6376 §3.4, on raw bytes in
/// network form (CRLF line ends).
public enum DKIMCanonicalization {
    // MARK: header fields (§3.4.1, §3.4.2)

    /// One header field canonicalized, final CRLF included when `field` has one.
    ///
    /// simple (§3.4.1): unchanged.
    /// relaxed (§3.4.2): name lowercased; folds undone; WSP runs become one
    /// SP; WSP at the end of the value and around the colon removed.
    public static func header(_ field: ArraySlice<UInt8>, _ c: DKIMSignature.Canonicalization) -> [UInt8] {
        if c == .simple { return Array(field) }
        var body = field
        var crlf = false
        if body.count >= 2, body[body.endIndex - 1] == 0x0A, body[body.endIndex - 2] == 0x0D {
            body = body.dropLast(2)
            crlf = true
        }
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 2)
        guard let colon = body.firstIndex(of: UInt8(ascii: ":")) else {
            out = DKIMBytes.lowercased(body)
            if crlf { out += [0x0D, 0x0A] }
            return out
        }
        var nameEnd = colon
        while nameEnd > body.startIndex, DKIMBytes.isWSP(body[nameEnd - 1]) { nameEnd -= 1 }
        out += DKIMBytes.lowercased(body[body.startIndex..<nameEnd])
        out.append(UInt8(ascii: ":"))
        var pendingSpace = false
        var started = false
        for b in body[(colon + 1)...] {
            if b == 0x0D || b == 0x0A { continue }  // unfold (§3.4.2: remove the CRLF of folds)
            if DKIMBytes.isWSP(b) { pendingSpace = true; continue }
            if pendingSpace && started { out.append(0x20) }
            pendingSpace = false
            started = true
            out.append(b)
        }
        if crlf { out += [0x0D, 0x0A] }
        return out
    }

    // MARK: body (§3.4.3, §3.4.4)

    /// The canonical body, whole (for tests and small messages).
    public static func body(_ body: ArraySlice<UInt8>, _ c: DKIMSignature.Canonicalization) -> [UInt8] {
        var out: [UInt8] = []
        _ = self.body(body, c) { out += $0 }
        return out
    }

    /// Feeds the canonical body to `sink` in pieces and returns its length.
    ///
    /// simple (§3.4.3): empty lines at the end removed; an empty body
    /// becomes one CRLF; a last line without CRLF gets one.
    /// relaxed (§3.4.4): WSP at line ends removed, WSP runs become one SP,
    /// empty lines at the end removed; an empty body stays empty.
    @discardableResult
    public static func body(_ body: ArraySlice<UInt8>, _ c: DKIMSignature.Canonicalization,
                            _ sink: (ArraySlice<UInt8>) -> Void) -> Int {
        let crlf: [UInt8] = [0x0D, 0x0A]
        var length = 0
        var pendingEmpty = 0
        var line: [UInt8] = []
        var i = body.startIndex
        while i < body.endIndex {
            var end = i
            while end < body.endIndex, !(body[end] == 0x0D && end + 1 < body.endIndex && body[end + 1] == 0x0A) { end += 1 }
            let content = body[i..<end]
            i = min(end + 2, body.endIndex)
            let piece: ArraySlice<UInt8>
            if c == .simple {
                piece = content
            } else {
                line.removeAll(keepingCapacity: true)
                var space = false
                for b in content {
                    if DKIMBytes.isWSP(b) { space = true; continue }
                    if space { line.append(0x20); space = false }
                    line.append(b)
                }
                piece = line[...]
            }
            if piece.isEmpty {
                pendingEmpty += 1
                continue
            }
            while pendingEmpty > 0 { sink(crlf[...]); length += 2; pendingEmpty -= 1 }
            sink(piece)
            sink(crlf[...])
            length += piece.count + 2
        }
        if length == 0 && c == .simple {
            sink(crlf[...])
            length = 2
        }
        return length
    }

    /// SHA-256 of the canonical body, or of its first `limit` octets (l=,
    /// §3.5), with the canonical length; nil when `limit` exceeds it.
    static func bodyHash(_ body: ArraySlice<UInt8>, _ c: DKIMSignature.Canonicalization,
                         limit: Int64?) -> (hash: [UInt8], length: Int64)? {
        var hasher = SHA256()
        var hashed: Int64 = 0
        let total = self.body(body, c) { piece in
            if let limit {
                guard hashed < limit else { return }
                let take = Int(min(Int64(piece.count), limit - hashed))
                hasher.update(data: piece.prefix(take))
                hashed += Int64(take)
            } else {
                hasher.update(data: piece)
            }
        }
        if let limit, limit > Int64(total) { return nil }
        return (Array(hasher.finalize()), Int64(total))
    }
}
