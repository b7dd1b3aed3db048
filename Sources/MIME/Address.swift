/// A mailbox as IMAP ENVELOPE reports it (RFC 3501 §7.4.2, RFC 9051 §7.5.2):
/// `(name adl mailbox host)`, each possibly NIL.
///
/// The fields are raw bytes from the header, not decoded: quoting is
/// removed but RFC 2047 encoded words stay encoded, since ENVELOPE returns
/// them that way. `decodedName` is for display and search.
public struct Address: Hashable, Sendable {
    /// Display name (RFC 5322 §3.4 display-name), or a comment when there is none.
    public var name: [UInt8]?
    /// Obsolete source route, "@a,@b" (RFC 5322 §4.4 obs-route; IMAP "adl").
    public var route: [UInt8]?
    /// Local part (RFC 5322 §3.4.1), or a group name in an IMAP group marker.
    public var mailbox: [UInt8]?
    /// Domain; nil for a local part without "@" and in group markers.
    public var host: [UInt8]?

    public init(name: [UInt8]? = nil, route: [UInt8]? = nil, mailbox: [UInt8]? = nil, host: [UInt8]? = nil) {
        self.name = name
        self.route = route
        self.mailbox = mailbox
        self.host = host
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
    /// end marker (mailbox and host NIL).
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
}
