/// IMAP section addressing (RFC 3501 §6.4.5, RFC 9051 §6.4.5) over a parsed
/// message. Call these on the root returned by `MIMEMessage.parse`.
///
///     C: a FETCH 1 (BODY[1.2.MIME] BODY[1.2])
///
/// Part numbers start at 1. A non-multipart message has one part, 1, which
/// is its body. For a message/rfc822 part, the next number addresses the
/// encapsulated message's parts, by the same rule.
extension MIMEPart {
    /// The entity a part path such as [1, 2] names; `[]` is the message itself.
    public func part(at path: [Int]) -> MIMEPart? {
        var container = self          // the entity whose parts the next number indexes
        var current: MIMEPart? = nil
        for (index, n) in path.enumerated() {
            if index > 0 {
                guard let c = current else { return nil }
                if let m = c.message { container = m }     // into message/rfc822
                else if c.isMultipart { container = c }    // into a nested multipart
                else { return nil }
            }
            if container.isMultipart {
                guard n >= 1, n <= container.children.count else { return nil }
                current = container.children[n - 1]
            } else {
                // A non-multipart message has one part: its body.
                guard n == 1 else { return nil }
                current = container
            }
        }
        return current ?? self
    }

    /// The message a HEADER / TEXT section refers to: the root for `[]`,
    /// otherwise the encapsulated message of the message/rfc822 part at
    /// `path` (RFC 3501 §6.4.5: HEADER and TEXT need such a part).
    public func message(at path: [Int]) -> MIMEPart? {
        guard !path.isEmpty else { return self }
        return part(at: path)?.message
    }

    /// BODY[path.HEADER]: the message header including its empty line.
    public func headerBytes(at path: [Int]) -> Range<Int>? { message(at: path)?.headerRange }

    /// BODY[path.TEXT]: the message body, without its header.
    public func textBytes(at path: [Int]) -> Range<Int>? { message(at: path)?.bodyRange }

    /// BODY[path.MIME]: the part's MIME header including its empty line.
    /// Not defined for the root (`[]`).
    public func mimeHeaderBytes(at path: [Int]) -> Range<Int>? {
        guard !path.isEmpty else { return nil }
        return part(at: path)?.headerRange
    }

    /// BODY[path]: the part's body; for `[]` the whole message.
    public func bodyBytes(at path: [Int]) -> Range<Int>? {
        guard !path.isEmpty else { return range }
        return part(at: path)?.bodyRange
    }

    /// BODY[path.HEADER.FIELDS (names)] / HEADER.FIELDS.NOT.
    public func headerFieldsBytes(_ bytes: [UInt8], at path: [Int], names: [String], excluding: Bool) -> [UInt8]? {
        message(at: path)?.header.filteredBytes(bytes, names: names, excluding: excluding)
    }
}
