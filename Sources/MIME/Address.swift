/// A mailbox as IMAP ENVELOPE reports it (RFC 3501 §7.4.2, RFC 9051 §7.5.2):
/// `(name adl mailbox host)`, each possibly NIL.
///
/// The fields are raw bytes from the header, not decoded: quoting is
/// removed but RFC 2047 encoded words stay encoded, since ENVELOPE returns
/// them that way. `decodedName` is for display and search. A part the
/// header lacks is nil here; `envelopeForm` is what ENVELOPE writes.
public struct Address: Hashable, Sendable {
    /// Display name (RFC 5322 §3.4 display-name), or a comment when there is none.
    public var name: [UInt8]?
    /// Obsolete source route, "@a,@b" (RFC 5322 §4.4 obs-route; IMAP "adl").
    public var route: [UInt8]?
    /// Local part (RFC 5322 §3.4.1), or a group name in an IMAP group marker;
    /// nil when the header has none (`<>`, `@example.com`, a bare name).
    public var mailbox: [UInt8]?
    /// Domain; nil when the header has none (a bare local part) and in group markers.
    public var host: [UInt8]?
    /// The address inside "<…>" did not end where RFC 5322 §3.4 requires
    /// (`<Undisclosed Recipients>`): `mailbox` and `host` hold what was
    /// read before the error.
    public var hasSyntaxError: Bool

    public init(name: [UInt8]? = nil, route: [UInt8]? = nil, mailbox: [UInt8]? = nil, host: [UInt8]? = nil,
                hasSyntaxError: Bool = false) {
        self.name = name
        self.route = route
        self.mailbox = mailbox
        self.host = host
        self.hasSyntaxError = hasSyntaxError
    }

    public var decodedName: String? { name.map { EncodedWord.decode($0) } }

    /// "local@domain" as text (no quoting added).
    public var addressString: String {
        let local = String(decoding: mailbox ?? [], as: UTF8.self)
        guard let host else { return local }
        return local + "@" + String(decoding: host, as: UTF8.self)
    }
}

/// One entry of an address-list (RFC 5322 §3.4): a mailbox or a group.
public enum AddressListEntry: Hashable, Sendable {
    case mailbox(Address)
    /// `display-name ":" [group-list] ";"`; the name is raw like `Address.name`.
    case group(name: [UInt8], members: [Address])
}

extension AddressListEntry {
    /// Flattens a list the way IMAP ENVELOPE writes groups (RFC 3501 §7.4.2):
    /// a start marker (host NIL, mailbox = group name), the members, and an
    /// end marker (mailbox and host NIL). Mailboxes stay as parsed (nil
    /// where the header lacks a part), as SORT wants them (RFC 5256 §3);
    /// ENVELOPE itself is written from `envelopeAddresses`.
    public static func imapAddresses(_ entries: [AddressListEntry]) -> [Address] {
        var out: [Address] = []
        for entry in entries {
            switch entry {
            case .mailbox(let a):
                out.append(a)
            case .group(let name, let members):
                out.append(Address(mailbox: name))
                out.append(contentsOf: members)
                out.append(Address())
            }
        }
        return out
    }

    /// `imapAddresses` as ENVELOPE writes them: every mailbox, group
    /// members included, in its `envelopeForm`, so that only the group
    /// markers have a NIL host.
    public static func envelopeAddresses(_ entries: [AddressListEntry]) -> [Address] {
        var out: [Address] = []
        for entry in entries {
            switch entry {
            case .mailbox(let a):
                out.append(a.envelopeForm)
            case .group(let name, let members):
                out.append(Address(mailbox: name))
                out.append(contentsOf: members.map(\.envelopeForm))
                out.append(Address())
            }
        }
        return out
    }
}

extension Address {
    /// Placeholders ENVELOPE writes for what a mailbox lacks, because RFC
    /// 3501 §7.4.2 / RFC 9051 §7.5.2 give a NIL host (and a NIL mailbox) to
    /// group markers only. These are the names widespread IMAP servers use,
    /// so clients already recognise them.
    public static let missingMailbox = Array("MISSING_MAILBOX".utf8)
    public static let missingDomain = Array("MISSING_DOMAIN".utf8)
    public static let syntaxErrorHost = Array("SYNTAX_ERROR".utf8)

    /// This mailbox as an ENVELOPE address: an absent or empty local part
    /// becomes MISSING_MAILBOX, an absent domain MISSING_DOMAIN, and the
    /// host of an address with a syntax error SYNTAX_ERROR. Never a group marker.
    public var envelopeForm: Address {
        var a = self
        if a.mailbox?.isEmpty ?? true { a.mailbox = Address.missingMailbox }
        if hasSyntaxError {
            a.host = Address.syntaxErrorHost
        } else if a.host?.isEmpty ?? true {
            a.host = Address.missingDomain
        }
        return a
    }
}
