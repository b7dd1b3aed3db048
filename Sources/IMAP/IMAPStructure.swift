import MIME

/// ENVELOPE and BODY/BODYSTRUCTURE (RFC 9051 §7.5.2) from a parsed message.
enum IMAPStructure {
    /// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP
    /// env-reply-to SP env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`
    static func envelope(_ e: Envelope, into w: inout IMAPWriter) {
        w.raw("(")
        w.nstring(e.date); w.space()
        w.nstring(e.subject); w.space()
        for list in [e.from, e.sender, e.replyTo, e.to, e.cc, e.bcc] {
            addresses(list, into: &w)
            w.space()
        }
        w.nstring(e.inReplyTo); w.space()
        w.nstring(e.messageID)
        w.raw(")")
    }

    static func addresses(_ entries: [AddressListEntry], into w: inout IMAPWriter) {
        // Only group markers have a NIL host (RFC 9051 §7.5.2); a mailbox
        // lacking a part gets a placeholder (Address.envelopeForm).
        let flat = AddressListEntry.envelopeAddresses(entries)
        guard !flat.isEmpty else { w.raw("NIL"); return }
        w.raw("(")
        for a in flat {
            w.raw("(")
            w.nstring(a.name); w.space()
            w.nstring(a.route); w.space()
            w.nstring(a.mailbox); w.space()
            w.nstring(a.host)
            w.raw(")")
        }
        w.raw(")")
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
