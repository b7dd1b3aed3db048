/// A message as DKIM sees it (RFC 6376 §3.4, §5.4): raw header fields in
/// order, each with its exact bytes, and the body. Nothing is decoded;
/// canonicalization works on these bytes.
///
/// Lines end in CRLF. A message read from a file with bare LF line ends is
/// converted first (§5.3: a message in local form is converted to the
/// network form before signing or verifying).
public struct DKIMMessage: Sendable {
    /// One header field: its name and where its bytes lie in `bytes`,
    /// continuation lines and the final CRLF included.
    public struct Field: Sendable, Hashable {
        /// The name before ":" with trailing WSP removed, lowercased; nil for
        /// a line without a colon (never selected by h=).
        public var name: String?
        /// The whole field, final CRLF included when present.
        public var range: Range<Int>
        /// The value: after the colon, before the final CRLF.
        public var valueRange: Range<Int>
    }

    /// The message in network form (CRLF line ends).
    public let bytes: [UInt8]
    public let fields: [Field]
    /// Where the body starts (after the empty line); `bytes.count` when the
    /// message has no body.
    public let bodyStart: Int

    public var body: ArraySlice<UInt8> { bytes[bodyStart...] }

    public init(_ raw: [UInt8]) {
        let bytes = DKIMMessage.networkForm(raw)
        self.bytes = bytes
        var fields: [Field] = []
        var i = 0
        var bodyStart = bytes.count
        while i < bytes.count {
            // An empty line ends the header (RFC 5322 §2.1).
            if bytes[i] == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A {
                bodyStart = i + 2
                break
            }
            let start = i
            // A field runs until a CRLF not followed by WSP (RFC 5322 §2.2.3).
            var end = bytes.count
            var j = i
            while j < bytes.count {
                if bytes[j] == 0x0A, j > start, bytes[j - 1] == 0x0D {
                    if j + 1 < bytes.count, DKIMBytes.isWSP(bytes[j + 1]) { j += 1; continue }
                    end = j + 1
                    break
                }
                j += 1
            }
            let contentEnd = end >= start + 2 && bytes[end - 1] == 0x0A && bytes[end - 2] == 0x0D ? end - 2 : end
            if let colon = bytes[start..<contentEnd].firstIndex(of: UInt8(ascii: ":")) {
                var nameEnd = colon
                while nameEnd > start, DKIMBytes.isWSP(bytes[nameEnd - 1]) { nameEnd -= 1 }
                let name = String(decoding: DKIMBytes.lowercased(bytes[start..<nameEnd]), as: UTF8.self)
                fields.append(Field(name: name, range: start..<end, valueRange: (colon + 1)..<contentEnd))
            } else {
                fields.append(Field(name: nil, range: start..<end, valueRange: contentEnd..<contentEnd))
            }
            i = end
        }
        self.fields = fields
        self.bodyStart = bodyStart
    }

    /// Bare LF becomes CRLF; everything else is kept.
    static func networkForm(_ raw: [UInt8]) -> [UInt8] {
        var bareLF = 0
        for (i, b) in raw.enumerated() where b == 0x0A && (i == 0 || raw[i - 1] != 0x0D) { bareLF += 1 }
        if bareLF == 0 { return raw }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count + bareLF)
        for (i, b) in raw.enumerated() {
            if b == 0x0A && (i == 0 || raw[i - 1] != 0x0D) { out.append(0x0D) }
            out.append(b)
        }
        return out
    }

    /// The fields named by h=, chosen bottom-up (§5.4.2): each occurrence
    /// of a name takes the last instance not yet taken; a name with no
    /// instance left selects nothing (it "signs the absence", over-signing).
    public func select(_ names: [String]) -> [Field] {
        var byName: [String: [Int]] = [:]
        for (i, f) in fields.enumerated() { if let n = f.name { byName[n, default: []].append(i) } }
        var chosen: [Field] = []
        for name in names {
            guard var list = byName[name], let last = list.popLast() else { continue }
            byName[name] = list
            chosen.append(fields[last])
        }
        return chosen
    }

    /// How many fields carry `name` (lowercase).
    public func count(_ name: String) -> Int { fields.reduce(0) { $0 + ($1.name == name ? 1 : 0) } }
}
