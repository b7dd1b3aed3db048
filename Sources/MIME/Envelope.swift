/// The IMAP ENVELOPE of a message (RFC 3501 §7.4.2, RFC 9051 §7.5.2).
///
/// String fields are the unfolded raw header values (RFC 5322 §2.2.3),
/// undecoded, because ENVELOPE returns them as they are; nil when the field
/// is absent. Address fields hold the parsed lists; `sender` and `replyTo`
/// already default to `from` as §7.4.2 requires ("If the Sender or
/// Reply-To lines are absent in the [RFC-2822] header, or are present but
/// empty, the server sets the corresponding member of the envelope to be
/// the same value as the from member").
public struct Envelope: Hashable, Sendable {
    public var date: [UInt8]?
    public var subject: [UInt8]?
    public var from: [AddressListEntry]
    public var sender: [AddressListEntry]
    public var replyTo: [AddressListEntry]
    public var to: [AddressListEntry]
    public var cc: [AddressListEntry]
    public var bcc: [AddressListEntry]
    public var inReplyTo: [UInt8]?
    public var messageID: [UInt8]?

    public init(date: [UInt8]? = nil, subject: [UInt8]? = nil,
                from: [AddressListEntry] = [], sender: [AddressListEntry] = [],
                replyTo: [AddressListEntry] = [], to: [AddressListEntry] = [],
                cc: [AddressListEntry] = [], bcc: [AddressListEntry] = [],
                inReplyTo: [UInt8]? = nil, messageID: [UInt8]? = nil) {
        self.date = date
        self.subject = subject
        self.from = from
        self.sender = sender
        self.replyTo = replyTo
        self.to = to
        self.cc = cc
        self.bcc = bcc
        self.inReplyTo = inReplyTo
        self.messageID = messageID
    }

    /// Builds the envelope from a message header. The first occurrence of
    /// each field is used (RFC 5322 §3.6 allows at most one of each).
    public init(header: RFC5322Header) {
        func list(_ name: String) -> [AddressListEntry] {
            header[name].map(AddressParser.parseList) ?? []
        }
        date = header["Date"]
        subject = header["Subject"]
        from = list("From")
        let senderList = list("Sender")
        let replyToList = list("Reply-To")
        sender = senderList.isEmpty ? from : senderList
        replyTo = replyToList.isEmpty ? from : replyToList
        to = list("To")
        cc = list("Cc")
        bcc = list("Bcc")
        inReplyTo = header["In-Reply-To"]
        messageID = header["Message-ID"]
    }

    /// The subject with RFC 2047 encoded words decoded (for display/search).
    public var decodedSubject: String? { subject.map { EncodedWord.decode($0) } }
}
