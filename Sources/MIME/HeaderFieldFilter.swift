extension RFC5322Header {
    /// The bytes IMAP returns for BODY[HEADER.FIELDS (…)] or
    /// BODY[HEADER.FIELDS.NOT (…)] (RFC 3501 §6.4.5, RFC 9051 §6.4.5): the
    /// matching fields verbatim (folding kept), in message order, followed by
    /// the empty line that ends a header section. Names compare
    /// case-insensitively.
    ///
    /// `bytes` must be the buffer this header was parsed from.
    public func filteredBytes(_ bytes: [UInt8], names: [String], excluding: Bool) -> [UInt8] {
        let wanted = names.map { $0.asciiBytes }
        var out: [UInt8] = []
        for field in fields {
            let listed = wanted.contains { field.name.equalsIgnoringASCIICase($0) }
            guard listed != excluding else { continue }
            let slice = bytes[field.range.clamped(to: 0..<bytes.count)]
            out.append(contentsOf: slice)
            // A field at the very end of a broken message may lack its line ending.
            if slice.last != ASCII.lf { out.append(contentsOf: [ASCII.cr, ASCII.lf]) }
        }
        out.append(contentsOf: [ASCII.cr, ASCII.lf])
        return out
    }
}
