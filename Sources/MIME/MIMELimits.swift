/// Limits that keep `MIMEMessage.parse` bounded on hostile input.
///
/// The parser never throws: when a limit is hit it stops descending and turns
/// the offending entity into a leaf (see `MIMEPart.Demotion`). RFC 2046 §5.1
/// sets no limit on nesting; these values follow what widespread IMAP servers
/// use (Dovecot stops at 100 levels, Cyrus and Gmail lower).
public struct MIMELimits: Hashable, Sendable {
    /// Deepest nesting of multipart/* and message/rfc822 entities below the root.
    public var maximumDepth: Int
    /// Most entities (the root included) one message may produce.
    public var maximumParts: Int

    public static let defaultMaximumDepth = 50
    public static let defaultMaximumParts = 10_000

    public init(maximumDepth: Int = MIMELimits.defaultMaximumDepth,
                maximumParts: Int = MIMELimits.defaultMaximumParts) {
        self.maximumDepth = maximumDepth
        self.maximumParts = maximumParts
    }

    public static let `default` = MIMELimits()
}
