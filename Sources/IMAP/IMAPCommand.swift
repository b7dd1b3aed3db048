/// The pieces of an assembled command: text, and literal octets in between.
public enum IMAPToken {
    public enum Piece: Hashable, Sendable {
        case text([UInt8])
        case literal([UInt8])
    }
}

/// RFC 9051 §6 (and RFC 3501 §6) client commands, as values.
public enum IMAPCommand: Hashable, Sendable {
    case capability
    case noop
    case logout
    case startTLS
    case login(user: String, password: String)
    /// AUTHENTICATE with an optional SASL-IR initial response (RFC 4959), still base64.
    case authenticate(mechanism: String, initialResponse: String?)
    case enable([String])
    case id([String: String]?)
    case namespace
    /// SELECT/EXAMINE with RFC 7162 parameters: (CONDSTORE), (QRESYNC (...)).
    case select(String, condstore: Bool, qresync: IMAPQResync? = nil)
    case examine(String, condstore: Bool, qresync: IMAPQResync? = nil)
    case create(String)
    case delete(String)
    case rename(from: String, to: String)
    case subscribe(String)
    case unsubscribe(String)
    /// LIST with RFC 5258 selection and return options and several patterns.
    case list(reference: String, patterns: [String], selection: [String], returnOptions: [IMAPListReturn])
    case lsub(reference: String, pattern: String)
    case status(String, [String])
    /// APPEND; `binary` when the message came as a literal8 (RFC 3516),
    /// `utf8` for the RFC 6855 `UTF8 (literal8)` form.
    case append(mailbox: String, flags: [String], date: String?, message: [UInt8], binary: Bool = false, utf8: Bool = false)
    case idle
    case check
    case close
    case unselect
    case expunge
    case uidExpunge(IMAPSequenceSet)
    /// FETCH with RFC 7162 modifiers (CHANGEDSINCE n [VANISHED]).
    case fetch(IMAPSequenceSet, [IMAPFetchItem], uid: Bool, changedSince: Int64?, vanished: Bool = false)
    case store(IMAPSequenceSet, IMAPStoreMode, silent: Bool, flags: [String], uid: Bool, unchangedSince: Int64?)
    case copy(IMAPSequenceSet, String, uid: Bool)
    case move(IMAPSequenceSet, String, uid: Bool)
    case search(IMAPSearchKey, uid: Bool, returnOptions: [String]?, charset: String?)
    /// RFC 5256 SORT: criteria, charset, search program.
    case sort([IMAPSortCriterion], charset: String, IMAPSearchKey, uid: Bool)
    /// RFC 5256 THREAD: algorithm (ORDEREDSUBJECT, REFERENCES), charset, search program.
    case thread(String, charset: String, IMAPSearchKey, uid: Bool)
    /// RFC 9208 quota commands.
    case getQuota(String)
    case getQuotaRoot(String)
    case setQuota(String, [IMAPQuotaLimit])
    /// RFC 4978 COMPRESS (DEFLATE).
    case compress(String)
}

/// `QRESYNC (uidvalidity modseq [known-uids [(seq-match)]])` (RFC 7162 §3.2.5).
public struct IMAPQResync: Hashable, Sendable {
    public var uidValidity: UInt32
    public var modseq: Int64
    public var knownUIDs: IMAPSequenceSet?
    /// Known sequence numbers and the UIDs they had, to find expunges cheaply.
    public var knownSequences: IMAPSequenceSet?
    public var knownSequenceUIDs: IMAPSequenceSet?
    public init(uidValidity: UInt32, modseq: Int64, knownUIDs: IMAPSequenceSet? = nil,
                knownSequences: IMAPSequenceSet? = nil, knownSequenceUIDs: IMAPSequenceSet? = nil) {
        self.uidValidity = uidValidity; self.modseq = modseq; self.knownUIDs = knownUIDs
        self.knownSequences = knownSequences; self.knownSequenceUIDs = knownSequenceUIDs
    }
}

/// `sort-criterion = ["REVERSE" SP] sort-key` (RFC 5256 §3; DISPLAYFROM/DISPLAYTO of RFC 5957).
public struct IMAPSortCriterion: Hashable, Sendable {
    public enum Key: String, Hashable, Sendable, CaseIterable {
        case arrival = "ARRIVAL", cc = "CC", date = "DATE", from = "FROM", size = "SIZE", subject = "SUBJECT", to = "TO"
        case displayFrom = "DISPLAYFROM", displayTo = "DISPLAYTO"
    }
    public var key: Key
    public var reverse: Bool
    public init(_ key: Key, reverse: Bool = false) { self.key = key; self.reverse = reverse }
}

/// `quota-resource SP number` in SETQUOTA (RFC 9208 §4.1.3); the limit in
/// the resource's unit (KiB for STORAGE).
public struct IMAPQuotaLimit: Hashable, Sendable {
    public var resource: String
    public var limit: Int64
    public init(resource: String, limit: Int64) { self.resource = resource; self.limit = limit }
}

public enum IMAPListReturn: Hashable, Sendable {
    case subscribed, children, specialUse
    case status([String])
}

public enum IMAPStoreMode: Hashable, Sendable { case replace, add, remove }

/// `sequence-set` (RFC 9051 §9): ranges of numbers where `*` is the largest
/// in use; `$` (RFC 5182 SEARCHRES) is the saved result.
public struct IMAPSequenceSet: Hashable, Sendable {
    public enum Bound: Hashable, Sendable {
        case number(UInt32)
        case star
    }
    public var ranges: [(Bound, Bound)] {
        storage.map { ($0.a, $0.b) }
    }
    var storage: [Pair]
    public var isSavedResult = false
    struct Pair: Hashable, Sendable {
        var a: Bound, b: Bound
        init(_ a: Bound, _ b: Bound) { self.a = a; self.b = b }
    }

    public init(ranges: [(Bound, Bound)]) { storage = ranges.map { Pair($0.0, $0.1) } }
    public static let savedResult: IMAPSequenceSet = { var s = IMAPSequenceSet(ranges: []); s.isSavedResult = true; return s }()

    /// Whether `n` is in the set, `star` being the largest number in use.
    public func contains(_ n: UInt32, star: UInt32) -> Bool {
        for p in storage {
            let a: UInt32, b: UInt32
            switch p.a { case .number(let v): a = v; case .star: a = star }
            switch p.b { case .number(let v): b = v; case .star: b = star }
            if n >= min(a, b) && n <= max(a, b) { return true }
        }
        return false
    }
}

/// `fetch-att` (RFC 9051 §6.4.5).
public enum IMAPFetchItem: Hashable, Sendable {
    case uid, flags, internalDate, rfc822Size, envelope, bodyStructure, body, modseq
    /// BODY[section]<partial>, BODY.PEEK (peek: no \Seen), and the RFC822 forms.
    case bodySection(IMAPSection, partial: ClosedRange<Int>?, peek: Bool)
    /// BINARY[part]<partial> and BINARY.PEEK (RFC 3516).
    case binary([Int], partial: ClosedRange<Int>?, peek: Bool)
    case binarySize([Int])
    case rfc822, rfc822Header, rfc822Text
}

/// `section` (RFC 9051 §6.4.5): a part path and what of it.
public struct IMAPSection: Hashable, Sendable {
    public enum Text: Hashable, Sendable {
        case whole, header, text, mime
        case headerFields([String]), headerFieldsNot([String])
    }
    public var part: [Int]
    public var text: Text
    public init(part: [Int] = [], text: Text = .whole) { self.part = part; self.text = text }
}

/// `search-key` (RFC 9051 §6.4.4) as a tree.
public indirect enum IMAPSearchKey: Hashable, Sendable {
    case all
    case and([IMAPSearchKey])
    case or(IMAPSearchKey, IMAPSearchKey)
    case not(IMAPSearchKey)
    case sequence(IMAPSequenceSet)
    case uid(IMAPSequenceSet)
    case flag(String, set: Bool)
    case keyword(String, set: Bool)
    case header(String, String)
    case body(String)
    case text(String)
    case before(String), on(String), since(String)
    case sentBefore(String), sentOn(String), sentSince(String)
    case larger(Int), smaller(Int)
    case modseq(Int64)
}
