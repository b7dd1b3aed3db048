/// The header section of a message as received, read before it is stored:
/// each field's name and byte ranges (RFC 5322 §2.2: a field runs to a line
/// end not followed by WSP). Lines end in CRLF; a bare LF is taken as a line
/// end too. Nothing is decoded or copied.
struct HeaderSection {
    struct Field: Hashable {
        /// The name before ":", trailing WSP removed, lowercased; "" for a
        /// line without a colon.
        var name: String
        /// The whole field, its final line end included.
        var range: Range<Int>
        /// After the colon, up to the final line end.
        var value: Range<Int>
    }

    var fields: [Field] = []
    /// Index just past the empty line that ends the section; nil when the
    /// bytes end first (or when the section is longer than the limit).
    var end: Int?

    /// Reads `bytes` from the start; stops after `limit` octets.
    init(_ bytes: [UInt8], limit: Int = Int.max) {
        let n = min(bytes.count, limit)
        var i = 0
        while i < n {
            if bytes[i] == 0x0A { end = i + 1; return }
            if bytes[i] == 0x0D, i + 1 < n, bytes[i + 1] == 0x0A { end = i + 2; return }
            let start = i
            var j = i
            var fieldEnd: Int?
            while j < n {
                if bytes[j] == 0x0A {
                    if j + 1 < n, bytes[j + 1] == 0x20 || bytes[j + 1] == 0x09 { j += 1; continue }
                    fieldEnd = j + 1
                    break
                }
                j += 1
            }
            guard let stop = fieldEnd else { return }   // the bytes end inside a field
            var contentEnd = stop - 1
            if contentEnd > start, bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            var name = ""
            var valueStart = contentEnd
            if let colon = bytes[start..<contentEnd].firstIndex(of: UInt8(ascii: ":")) {
                var nameEnd = colon
                while nameEnd > start, bytes[nameEnd - 1] == 0x20 || bytes[nameEnd - 1] == 0x09 { nameEnd -= 1 }
                name = String(decoding: bytes[start..<nameEnd], as: UTF8.self).lowercased()
                valueStart = colon + 1
            }
            fields.append(Field(name: name, range: start..<stop, value: valueStart..<contentEnd))
            i = stop
        }
    }

    /// The fields called `name` (lowercase), top to bottom.
    func named(_ name: String) -> [Field] { fields.filter { $0.name == name } }

    /// Where the header section ends in `bytes` received so far, looking
    /// from `from` on (an empty line: CRLF CRLF, LF LF or a first empty line).
    /// Returns the index past the empty line; `from` advances so that the
    /// next call does not rescan.
    static func findEnd(_ bytes: [UInt8], from: inout Int) -> Int? {
        let n = bytes.count
        if from == 0 {
            if n >= 2, bytes[0] == 0x0D, bytes[1] == 0x0A { return 2 }
            if n >= 1, bytes[0] == 0x0A { return 1 }
        }
        var i = max(from, 1)
        while i < n {
            if bytes[i] == 0x0A, bytes[i - 1] == 0x0A { return i + 1 }
            if bytes[i] == 0x0A, i >= 3, bytes[i - 1] == 0x0D, bytes[i - 2] == 0x0A { return i + 1 }
            i += 1
        }
        // The next call looks again at the last three octets (a split line end).
        from = n >= 3 ? n - 2 : 0
        return nil
    }
}
