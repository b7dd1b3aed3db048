/// One entity of a parsed message (RFC 2045 §2.4, RFC 2046): its header,
/// where its body lies in the original bytes, and the MIME facts IMAP
/// BODYSTRUCTURE reports (RFC 3501 §7.4.2, RFC 9051 §7.5.2).
///
/// The root of `MIMEMessage.parse` is the message itself: `header` is the
/// RFC 5322 header, `envelope` is set. A message/rfc822 (or message/global)
/// entity has `message`, the encapsulated message's root. A multipart has
/// `children`. All ranges are byte offsets into the parsed buffer.
public struct MIMEPart: Hashable, Sendable {
    /// The entity's header section (for the root: the message header).
    public var header: RFC5322Header
    /// The body: after the empty line that ends the header up to (not
    /// including) the CR LF that belongs to the next boundary (RFC 2046 §5.1.1).
    public var bodyRange: Range<Int>
    /// The content type the structure follows: the declared one, the
    /// RFC 2045 §5.2 / RFC 2046 §5.1.5 default, or text/plain after a demotion.
    public var contentType: ContentType
    /// The Content-Type as written, if the field was present and parsable.
    public var declaredContentType: ContentType?
    /// Set when the entity could not be treated as its declared type.
    public var demotion: Demotion?
    /// Content-ID (RFC 2045 §7), unfolded raw value.
    public var id: [UInt8]?
    /// Content-Description (RFC 2045 §8), unfolded raw value (may hold encoded words).
    public var description: [UInt8]?
    /// Content-Transfer-Encoding (RFC 2045 §6.1), lowercased; nil when absent (means 7bit).
    public var encoding: String?
    /// Content-Disposition (RFC 2183).
    public var disposition: ContentDisposition?
    /// Content-Language tags (RFC 3282), as written.
    public var languages: [String]
    /// Content-Location (RFC 2557 §4.2), unfolded raw value.
    public var location: [UInt8]?
    /// Content-MD5 (RFC 1864), unfolded raw value.
    public var md5: [UInt8]?
    /// Size of the body in lines (RFC 3501 §7.4.2 body-fld-lines): line
    /// endings, plus one for a final line without one.
    public var bodyLines: Int
    /// Parts of a multipart, in order (RFC 2046 §5.1). Empty for leaves and
    /// for a multipart whose boundary never occurs.
    public var children: [MIMEPart]
    /// Multipart preamble and epilogue (RFC 2046 §5.1.1), when present.
    public var preambleRange: Range<Int>?
    public var epilogueRange: Range<Int>?
    /// True on message roots: the top-level message and every `message`.
    public var isMessageRoot: Bool
    /// The envelope of a message root, made when asked (a parse for SEARCH
    /// or BODY[...] never needs it).
    public var envelope: Envelope? { isMessageRoot ? Envelope(header: header) : nil }
    // Boxed in an array: a struct cannot contain itself directly.
    var encapsulated: [MIMEPart]

    /// Why an entity is not treated as what its Content-Type says.
    public enum Demotion: Hashable, Sendable {
        /// multipart/* without a usable boundary parameter: a text/plain leaf.
        case missingBoundary
        /// message/rfc822 with a non-identity transfer encoding (RFC 2046
        /// §5.2.1 forbids it): an application/octet-stream leaf.
        case encodedMessage
        /// `MIMELimits.maximumDepth` reached: a text/plain leaf.
        case depthLimit
        /// `MIMELimits.maximumParts` reached: a text/plain leaf.
        case partLimit
    }

    /// The encapsulated message of a message/rfc822 (RFC 2046 §5.2.1) entity.
    public var message: MIMEPart? { encapsulated.first }

    /// The header section including its terminating empty line (BODY[n.MIME]).
    public var headerRange: Range<Int> { header.range }
    /// The whole entity, header and body.
    public var range: Range<Int> { header.range.lowerBound..<bodyRange.upperBound }
    /// Size of the body in octets (RFC 3501 §7.4.2 body-fld-octets).
    public var bodyOctets: Int { bodyRange.count }

    public var isMultipart: Bool { contentType.isMultipart }
    public var isMessage: Bool { contentType.isMessage && !encapsulated.isEmpty }

    /// Number of entities in this subtree, this one included.
    public var partCount: Int {
        1 + children.reduce(0) { $0 + $1.partCount } + encapsulated.reduce(0) { $0 + $1.partCount }
    }
}
