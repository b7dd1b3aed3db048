/// One header field as it appears in the message (RFC 5322 §2.2).
///
/// `rawValue` is everything after the colon up to (not including) the final
/// line ending, folding CR LF and all; `range` covers the whole field, name to
/// final line ending, as byte offsets into the buffer that was parsed — the
/// bytes IMAP HEADER.FIELDS returns verbatim (RFC 3501 §6.4.5).
public struct HeaderField: Hashable, Sendable {
    public var name: [UInt8]
    public var rawValue: [UInt8]
    public var range: Range<Int>

    public init(name: [UInt8], rawValue: [UInt8], range: Range<Int>) {
        self.name = name
        self.rawValue = rawValue
        self.range = range
    }

    /// The field name as text (field names are printable US-ASCII, RFC 5322 §2.2).
    public var nameString: String { String(decoding: name, as: UTF8.self) }

    /// RFC 5322 §2.2.3: unfolding removes each CR LF that is followed by WSP.
    /// Leading and trailing whitespace is trimmed; the WSP that followed the
    /// line break is kept. A bare LF fold is tolerated like CR LF.
    public var unfoldedValue: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(rawValue.count)
        for b in rawValue where b != ASCII.cr && b != ASCII.lf { out.append(b) }
        return out.trimmingWhitespace()
    }

    /// The unfolded value with RFC 2047 encoded words decoded, for display and search.
    public var decodedValue: String { EncodedWord.decode(unfoldedValue) }

    /// ASCII case-insensitive name comparison (RFC 5322 §1.2.2).
    public func hasName(_ other: String) -> Bool { name.equalsIgnoringASCIICase(other.asciiBytes) }
}
