/// A server response (RFC 9051 §7, RFC 3501 §7), as a value: what a client
/// reads and what `encode()` writes back in canonical wire form.
///
/// ```
/// S: * 172 EXISTS                              .untagged(.exists(172))
/// S: A142 OK [READ-WRITE] SELECT completed     .tagged("A142", IMAPStatusResponse(.ok, code: .readWrite, "SELECT completed"))
/// S: + Ready for literal data                  .continuation(code: nil, text: "Ready for literal data")
/// ```
/// `IMAPResponseParser` reads them from a byte stream.
public enum IMAPResponse: Hashable, Sendable {
    /// `"*" SP ...`: status, server and mailbox data, message data.
    case untagged(IMAPUntaggedResponse)
    /// `tag SP resp-cond-state`: the completion of a command (OK, NO or BAD).
    case tagged(String, IMAPStatusResponse)
    /// `continue-req = "+" SP (resp-text / base64)`; a SASL challenge is `text`.
    case continuation(code: IMAPResponseCode?, text: String)
}

/// `resp-cond-state / resp-cond-auth / resp-cond-bye` (RFC 9051 §7.1).
public struct IMAPStatusResponse: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case ok = "OK", no = "NO", bad = "BAD", preauth = "PREAUTH", bye = "BYE"
    }
    public var kind: Kind
    public var code: IMAPResponseCode?
    /// Human-readable text (may be empty); never contains CR or LF.
    public var text: String

    public init(_ kind: Kind, code: IMAPResponseCode? = nil, _ text: String) {
        self.kind = kind; self.code = code; self.text = text
    }
}

/// `resp-text-code` (RFC 9051 §7.1, RFC 3501 §7.1, RFC 5530, RFC 4315,
/// RFC 7162, RFC 5182, RFC 3516, RFC 4978). Unknown codes keep their name and
/// the raw text of their arguments, as clients must ignore what they do not know.
public enum IMAPResponseCode: Hashable, Sendable {
    case alert
    case badCharset([String])
    case capability([String])
    case parse
    case permanentFlags([String])
    case readOnly, readWrite, tryCreate
    case uidNext(UInt32), uidValidity(UInt32)
    /// RFC 3501 only: the first unseen message's sequence number.
    case unseen(UInt32)
    /// RFC 4315: the UID (or, after MULTIAPPEND, UIDs) given to appended messages.
    case appendUID(uidValidity: UInt32, uids: IMAPSequenceSet)
    case copyUID(uidValidity: UInt32, source: IMAPSequenceSet, destination: IMAPSequenceSet)
    case uidNotSticky
    /// RFC 7162.
    case highestModSeq(Int64), noModSeq, modified(IMAPSequenceSet), closed
    /// RFC 5530.
    case unavailable, authenticationFailed, authorizationFailed, expired, privacyRequired, contactAdmin
    case noPerm, inUse, expungeIssued, corruption, serverBug, clientBug, cannot, limit, overQuota
    case alreadyExists, nonExistent
    /// RFC 9051 (HASCHILDREN), RFC 5182 (NOTSAVED), RFC 3516 (UNKNOWN-CTE), RFC 4978.
    case hasChildren, notSaved, unknownCTE, compressionActive
    /// `atom [SP 1*<any TEXT-CHAR except "]">]`: name as sent, arguments as sent.
    case other(String, String?)

    /// Codes without arguments, by their wire name.
    static let simple: [String: IMAPResponseCode] = [
        "ALERT": .alert, "PARSE": .parse, "READ-ONLY": .readOnly, "READ-WRITE": .readWrite,
        "TRYCREATE": .tryCreate, "UIDNOTSTICKY": .uidNotSticky, "NOMODSEQ": .noModSeq, "CLOSED": .closed,
        "UNAVAILABLE": .unavailable, "AUTHENTICATIONFAILED": .authenticationFailed,
        "AUTHORIZATIONFAILED": .authorizationFailed, "EXPIRED": .expired, "PRIVACYREQUIRED": .privacyRequired,
        "CONTACTADMIN": .contactAdmin, "NOPERM": .noPerm, "INUSE": .inUse, "EXPUNGEISSUED": .expungeIssued,
        "CORRUPTION": .corruption, "SERVERBUG": .serverBug, "CLIENTBUG": .clientBug, "CANNOT": .cannot,
        "LIMIT": .limit, "OVERQUOTA": .overQuota, "ALREADYEXISTS": .alreadyExists, "NONEXISTENT": .nonExistent,
        "HASCHILDREN": .hasChildren, "NOTSAVED": .notSaved, "UNKNOWN-CTE": .unknownCTE,
        "COMPRESSIONACTIVE": .compressionActive,
    ]
    static let simpleNames: [IMAPResponseCode: String] = Dictionary(uniqueKeysWithValues: simple.map { ($1, $0) })
}

/// Untagged data (RFC 9051 §7.2–§7.5 and the extensions this server speaks).
public enum IMAPUntaggedResponse: Hashable, Sendable {
    /// `* OK / NO / BAD / PREAUTH / BYE`.
    case status(IMAPStatusResponse)
    case capability([String])
    /// RFC 5161 / RFC 9051 §7.2.1.
    case enabled([String])
    case flags([String])
    case list(IMAPListResponse)
    case lsub(IMAPListResponse)
    /// `* STATUS mailbox (name value ...)`, in the order sent.
    case mailboxStatus(String, [IMAPStatusAttribute])
    case exists(UInt32)
    case recent(UInt32)
    case expunge(UInt32)
    case fetch(UInt32, [IMAPMessageAttribute])
    /// `* SEARCH n...` with the RFC 7162 `(MODSEQ n)` suffix.
    case search([UInt32], modseq: Int64?)
    /// RFC 4731 / RFC 9051 §7.3.4.
    case esearch(IMAPESearchResponse)
    /// RFC 5256 (with RFC 7162's `(MODSEQ n)`).
    case sort([UInt32], modseq: Int64?)
    /// RFC 5256 §4: the thread-lists, in order.
    case thread([IMAPThreadList])
    /// RFC 2971: NIL, or field/value pairs in the order sent.
    case id([IMAPIDParameter]?)
    /// RFC 2342 / RFC 9051 §7.3.2; an empty class is NIL on the wire.
    case namespace(personal: [IMAPNamespace], otherUsers: [IMAPNamespace], shared: [IMAPNamespace])
    /// RFC 9208 §4.3.1.
    case quota(root: String, [IMAPQuotaResource])
    /// RFC 9208 §4.3.2.
    case quotaRoot(mailbox: String, roots: [String])
    /// RFC 7162 §3.2.10: expunged UIDs.
    case vanished(earlier: Bool, IMAPSequenceSet)
    /// A response this codec does not model (`* XPIG-LATIN ...`): the bytes
    /// after `"* "`, literals included with their announcements.
    case unknown([UInt8])
}

/// `mailbox-list` of LIST and LSUB (RFC 9051 §7.3.1, RFC 5258 §3.4).
public struct IMAPListResponse: Hashable, Sendable {
    /// Name attributes as sent (`\Noselect`, `\HasChildren`, `\Sent`...).
    public var attributes: [String]
    /// The hierarchy delimiter; nil for a flat name (NIL).
    public var delimiter: Character?
    /// The name as sent (modified UTF-7 or UTF-8); INBOX in any case reads as "INBOX".
    public var mailbox: String
    /// `mbox-list-extended`: CHILDINFO, OLDNAME and unknown items, in order.
    public var extended: [IMAPListExtendedItem]

    public init(attributes: [String], delimiter: Character?, mailbox: String, extended: [IMAPListExtendedItem] = []) {
        self.attributes = attributes; self.delimiter = delimiter; self.mailbox = mailbox; self.extended = extended
    }

    /// RFC 5258 §3.5: the selection criteria a child matched.
    public var childInfo: [String]? {
        for item in extended where item.tag.uppercased() == "CHILDINFO" {
            if case .list(let l) = item.value { return l.compactMap(\.text) }
        }
        return nil
    }

    /// RFC 9051 §6.3.9.7: the name before a rename or normalization.
    public var oldName: String? {
        for item in extended where item.tag.uppercased() == "OLDNAME" {
            if case .list(let l) = item.value, l.count == 1 { return l[0].text }
        }
        return nil
    }
}

/// `mbox-list-extended-item = tag SP tagged-ext-val`.
public struct IMAPListExtendedItem: Hashable, Sendable {
    public var tag: String
    public var value: IMAPExtensionValue
    public init(_ tag: String, _ value: IMAPExtensionValue) { self.tag = tag; self.value = value }

    public static func childInfo(_ criteria: [String]) -> IMAPListExtendedItem {
        IMAPListExtendedItem("CHILDINFO", .list(criteria.map { .string($0) }))
    }
    public static func oldName(_ name: String) -> IMAPListExtendedItem {
        IMAPListExtendedItem("OLDNAME", .list([.string(name)]))
    }
}

/// Extension data kept as its structure: `body-extension` (RFC 9051 §9),
/// `tagged-ext-val` (RFC 4466), unknown FETCH items.
public indirect enum IMAPExtensionValue: Hashable, Sendable {
    case nilValue
    case number(Int64)
    /// A bare token that is not a number: an atom, a sequence set, a flag.
    case atom(String)
    /// A quoted string or literal.
    case string(String)
    case list([IMAPExtensionValue])

    /// The text of a string or atom.
    public var text: String? {
        switch self {
        case .string(let s), .atom(let s): return s
        default: return nil
        }
    }
}

/// One `status-att-val` (RFC 9051 §7.3.3): MESSAGES, UIDNEXT, HIGHESTMODSEQ...
public struct IMAPStatusAttribute: Hashable, Sendable {
    public var name: String
    public var value: Int64
    public init(_ name: String, _ value: Int64) { self.name = name; self.value = value }
}

/// RFC 2971 `string SP nstring`.
public struct IMAPIDParameter: Hashable, Sendable {
    public var key: String
    public var value: String?
    public init(_ key: String, _ value: String?) { self.key = key; self.value = value }
}

/// `Namespace-Descr` (RFC 2342 §5, RFC 9051 §9).
public struct IMAPNamespace: Hashable, Sendable {
    public var prefix: String
    public var delimiter: Character?
    /// `Namespace-Response-Extension = SP string SP "(" string *(SP string) ")"`.
    public var extensions: [Extension]
    public struct Extension: Hashable, Sendable {
        public var name: String
        public var values: [String]
        public init(_ name: String, _ values: [String]) { self.name = name; self.values = values }
    }
    public init(_ prefix: String, _ delimiter: Character?, extensions: [Extension] = []) {
        self.prefix = prefix; self.delimiter = delimiter; self.extensions = extensions
    }
}

/// `quota-resource = resource-name SP resource-usage SP resource-limit` (RFC 9208 §5).
public struct IMAPQuotaResource: Hashable, Sendable {
    public var name: String
    public var usage: Int64
    public var limit: Int64
    public init(_ name: String, usage: Int64, limit: Int64) { self.name = name; self.usage = usage; self.limit = limit }
}

/// `esearch-response` (RFC 4731 §3.1, RFC 9051 §7.3.4, RFC 7162 §3.1.10).
public struct IMAPESearchResponse: Hashable, Sendable {
    /// The search correlator `(TAG "x")`.
    public var tag: String?
    public var uid: Bool
    public var items: [Item]
    public enum Item: Hashable, Sendable {
        case min(UInt32), max(UInt32), count(Int64), modseq(Int64)
        case all(IMAPSequenceSet)
        /// `search-ret-data-ext`: name as sent and its `tagged-ext-val`.
        case other(String, IMAPExtensionValue)
    }
    public init(tag: String?, uid: Bool, items: [Item]) { self.tag = tag; self.uid = uid; self.items = items }
}

/// `thread-list` (RFC 5256 §4) as written: a chain of messages, each the
/// parent of the next, then (when the thread branches) the sub-threads of
/// the last one. `(3 6 (4 23)(44 7 96))` is members [3, 6] with branches
/// [4 23] and [44 7 96]; `((3)(5))` has no members (a missing parent).
/// Chains stay flat arrays, so a long thread costs no nesting.
public struct IMAPThreadList: Hashable, Sendable {
    public var members: [UInt32]
    public var branches: [IMAPThreadList]
    public init(_ members: [UInt32], branches: [IMAPThreadList] = []) { self.members = members; self.branches = branches }
}

/// `msg-att` items (RFC 9051 §7.5.2, RFC 3501 §7.4.2, RFC 3516, RFC 7162).
public enum IMAPMessageAttribute: Hashable, Sendable {
    case flags([String])
    case uid(UInt32)
    /// The `date-time` text without its quotes: `17-Jul-1996 02:44:25 -0700`.
    case internalDate(String)
    case rfc822Size(Int64)
    case envelope(IMAPEnvelope)
    /// BODY: the structure without extension data.
    case body(IMAPBodyStructure)
    case bodyStructure(IMAPBodyStructure)
    /// `BODY[section]<origin> nstring`.
    case bodySection(IMAPSection, origin: Int64?, data: [UInt8]?)
    /// `BINARY[part]<origin> (nstring / literal8)` (RFC 3516 §4.3).
    case binary([Int], origin: Int64?, data: [UInt8]?)
    case binarySize([Int], Int64)
    /// RFC 7162 §3.1.4: `MODSEQ (n)`.
    case modseq(Int64)
    case rfc822([UInt8]?), rfc822Header([UInt8]?), rfc822Text([UInt8]?)
    /// An item this codec does not model (`X-GM-MSGID 1278455344230334865`).
    case other(String, IMAPExtensionValue)
}

/// `envelope` (RFC 9051 §7.5.2): raw header values, as the server sent them.
/// An empty address list is NIL on the wire.
public struct IMAPEnvelope: Hashable, Sendable {
    public var date: [UInt8]?
    public var subject: [UInt8]?
    public var from: [IMAPAddress]
    public var sender: [IMAPAddress]
    public var replyTo: [IMAPAddress]
    public var to: [IMAPAddress]
    public var cc: [IMAPAddress]
    public var bcc: [IMAPAddress]
    public var inReplyTo: [UInt8]?
    public var messageID: [UInt8]?

    public init(date: [UInt8]? = nil, subject: [UInt8]? = nil, from: [IMAPAddress] = [], sender: [IMAPAddress] = [],
                replyTo: [IMAPAddress] = [], to: [IMAPAddress] = [], cc: [IMAPAddress] = [], bcc: [IMAPAddress] = [],
                inReplyTo: [UInt8]? = nil, messageID: [UInt8]? = nil) {
        self.date = date; self.subject = subject; self.from = from; self.sender = sender; self.replyTo = replyTo
        self.to = to; self.cc = cc; self.bcc = bcc; self.inReplyTo = inReplyTo; self.messageID = messageID
    }
}

/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`.
/// A NIL host marks RFC 5322 group syntax: the group's name in `mailbox`
/// at its start, everything NIL at its end.
public struct IMAPAddress: Hashable, Sendable {
    public var name: [UInt8]?
    public var adl: [UInt8]?
    public var mailbox: [UInt8]?
    public var host: [UInt8]?
    public init(name: [UInt8]?, adl: [UInt8]?, mailbox: [UInt8]?, host: [UInt8]?) {
        self.name = name; self.adl = adl; self.mailbox = mailbox; self.host = host
    }
}

/// `body` (RFC 9051 §7.5.2): one part, or a multipart of parts.
public indirect enum IMAPBodyStructure: Hashable, Sendable {
    case single(IMAPBodyPart)
    case multipart(IMAPMultipartBody)
}

/// `body-type-1part`: basic, text or message/rfc822 (message/global) fields.
public struct IMAPBodyPart: Hashable, Sendable {
    public indirect enum Kind: Hashable, Sendable {
        case basic
        case text(lines: Int64)
        case message(envelope: IMAPEnvelope, body: IMAPBodyStructure, lines: Int64)
    }
    public var type: String
    public var subtype: String
    /// `body-fld-param`; NIL on the wire when empty.
    public var parameters: [IMAPBodyParameter]
    public var contentID: String?
    public var contentDescription: String?
    public var encoding: String
    public var size: Int64
    public var kind: Kind
    /// `body-ext-1part` as sent (BODYSTRUCTURE only): md5, disposition,
    /// language, location, then later extensions. Empty for BODY.
    public var extensions: [IMAPExtensionValue]

    public init(type: String, subtype: String, parameters: [IMAPBodyParameter] = [], contentID: String? = nil,
                contentDescription: String? = nil, encoding: String = "7BIT", size: Int64, kind: Kind = .basic,
                extensions: [IMAPExtensionValue] = []) {
        self.type = type; self.subtype = subtype; self.parameters = parameters; self.contentID = contentID
        self.contentDescription = contentDescription; self.encoding = encoding; self.size = size; self.kind = kind
        self.extensions = extensions
    }

    public var md5: String? { extensions.first?.text }
    public var disposition: IMAPBodyDisposition? { extensions.count > 1 ? IMAPBodyDisposition(extensions[1]) : nil }
    public var language: [String]? { extensions.count > 2 ? IMAPBodyDisposition.strings(extensions[2]) : nil }
    public var location: String? { extensions.count > 3 ? extensions[3].text : nil }
}

/// `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`.
public struct IMAPMultipartBody: Hashable, Sendable {
    public var parts: [IMAPBodyStructure]
    public var subtype: String
    /// `body-ext-mpart` as sent: parameters, disposition, language, location, more.
    public var extensions: [IMAPExtensionValue]

    public init(parts: [IMAPBodyStructure], subtype: String, extensions: [IMAPExtensionValue] = []) {
        self.parts = parts; self.subtype = subtype; self.extensions = extensions
    }

    public var parameters: [IMAPBodyParameter] { extensions.first.map(IMAPBodyParameter.list) ?? [] }
    public var disposition: IMAPBodyDisposition? { extensions.count > 1 ? IMAPBodyDisposition(extensions[1]) : nil }
    public var language: [String]? { extensions.count > 2 ? IMAPBodyDisposition.strings(extensions[2]) : nil }
    public var location: String? { extensions.count > 3 ? extensions[3].text : nil }
}

/// One `string SP string` of `body-fld-param`.
public struct IMAPBodyParameter: Hashable, Sendable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }

    /// The pairs of a parameter list value; NIL gives none.
    static func list(_ v: IMAPExtensionValue) -> [IMAPBodyParameter] {
        guard case .list(let l) = v else { return [] }
        var out: [IMAPBodyParameter] = []
        var k = 0
        while k + 1 < l.count {
            if let n = l[k].text, let v = l[k + 1].text { out.append(IMAPBodyParameter(n, v)) }
            k += 2
        }
        return out
    }

    /// The extension value for a parameter list (NIL when empty).
    static func value(_ params: [IMAPBodyParameter]) -> IMAPExtensionValue {
        params.isEmpty ? .nilValue : .list(params.flatMap { [.string($0.name), .string($0.value)] })
    }
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil` (RFC 2183).
public struct IMAPBodyDisposition: Hashable, Sendable {
    public var type: String
    public var parameters: [IMAPBodyParameter]
    public init(_ type: String, parameters: [IMAPBodyParameter] = []) { self.type = type; self.parameters = parameters }

    init?(_ v: IMAPExtensionValue) {
        guard case .list(let l) = v, let t = l.first?.text else { return nil }
        self.init(t, parameters: l.count > 1 ? IMAPBodyParameter.list(l[1]) : [])
    }

    /// The extension value for this disposition.
    public var value: IMAPExtensionValue { .list([.string(type), IMAPBodyParameter.value(parameters)]) }

    /// `body-fld-lang = nstring / "(" string *(SP string) ")"`.
    static func strings(_ v: IMAPExtensionValue) -> [String]? {
        switch v {
        case .string(let s), .atom(let s): return [s]
        case .list(let l): return l.compactMap(\.text)
        default: return nil
        }
    }
}
