import MIME

/// ENVELOPE and BODY/BODYSTRUCTURE (RFC 9051 §7.5.2) from a parsed message.
enum IMAPStructure {
    /// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP
    /// env-reply-to SP env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`,
    /// written by the response encoder from the message's envelope.
    static func envelope(_ e: Envelope, into w: inout IMAPWriter) {
        IMAPResponse.envelope(value(e), into: &w)
    }

    /// The response model's envelope. Only group markers have a NIL host
    /// (RFC 9051 §7.5.2); a mailbox lacking a part gets a placeholder
    /// (Address.envelopeForm).
    static func value(_ e: Envelope) -> IMAPEnvelope {
        func list(_ entries: [AddressListEntry]) -> [IMAPAddress] {
            AddressListEntry.envelopeAddresses(entries).map { IMAPAddress(name: $0.name, adl: $0.route, mailbox: $0.mailbox, host: $0.host) }
        }
        return IMAPEnvelope(date: e.date, subject: e.subject, from: list(e.from), sender: list(e.sender), replyTo: list(e.replyTo),
                            to: list(e.to), cc: list(e.cc), bcc: list(e.bcc), inReplyTo: e.inReplyTo, messageID: e.messageID)
    }

    /// BODYSTRUCTURE when `extended`, else BODY.
    static func body(_ p: MIMEPart, extended: Bool, into w: inout IMAPWriter) {
        if p.isMultipart {
            w.raw("(")
            if p.children.isEmpty {
                // A multipart needs one part at least; an empty text part stands in.
                w.raw("(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)")
            }
            for c in p.children { body(c, extended: extended, into: &w) }
            w.space()
            w.string(p.contentType.subtype)
            if extended {
                w.space(); parameters(p.contentType.structureParameters, into: &w)
                w.space(); disposition(p, into: &w)
                w.space(); languages(p, into: &w)
                w.space(); w.nstring(p.location)
            }
            w.raw(")")
            return
        }
        w.raw("(")
        w.string(p.contentType.type); w.space()
        w.string(p.contentType.subtype); w.space()
        parameters(p.contentType.structureParameters, into: &w); w.space()
        w.nstring(p.id); w.space()
        w.nstring(p.description); w.space()
        w.string((p.encoding ?? "7bit").uppercased()); w.space()
        w.raw(String(p.bodyOctets))
        if p.isMessage, let m = p.message {
            w.space()
            IMAPStructure.envelope(m.envelope ?? Envelope(header: m.header), into: &w)
            w.space()
            body(m, extended: extended, into: &w)
            w.space()
            w.raw(String(p.bodyLines))
        } else if p.contentType.isText {
            w.space()
            w.raw(String(p.bodyLines))
        }
        if extended {
            w.space(); w.nstring(p.md5)
            w.space(); disposition(p, into: &w)
            w.space(); languages(p, into: &w)
            w.space(); w.nstring(p.location)
        }
        w.raw(")")
    }

    static func parameters(_ params: [MIMEParameter], into w: inout IMAPWriter) {
        guard !params.isEmpty else { w.raw("NIL"); return }
        w.raw("(")
        for (i, p) in params.enumerated() {
            if i > 0 { w.space() }
            w.string(p.name); w.space(); w.string(p.value)
        }
        w.raw(")")
    }

    static func disposition(_ p: MIMEPart, into w: inout IMAPWriter) {
        guard let d = p.disposition else { w.raw("NIL"); return }
        w.raw("(")
        w.string(d.value); w.space()
        parameters(d.structureParameters, into: &w)
        w.raw(")")
    }

    static func languages(_ p: MIMEPart, into w: inout IMAPWriter) {
        guard !p.languages.isEmpty else { w.raw("NIL"); return }
        if p.languages.count == 1 { w.string(p.languages[0]); return }
        w.raw("(")
        for (i, l) in p.languages.enumerated() {
            if i > 0 { w.space() }
            w.string(l)
        }
        w.raw(")")
    }
}
