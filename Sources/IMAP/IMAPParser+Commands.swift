extension IMAPParser {
    mutating func command() throws -> IMAPCommand {
        let name = try atom().uppercased()
        switch name {
        case "CAPABILITY": return .capability
        case "NOOP": return .noop
        case "LOGOUT": return .logout
        case "STARTTLS": return .startTLS
        case "IDLE": return .idle
        case "CHECK": return .check
        case "CLOSE": return .close
        case "UNSELECT": return .unselect
        case "EXPUNGE": return .expunge
        case "NAMESPACE": return .namespace
        case "LOGIN":
            try space()
            let user = try astring()
            try space()
            return .login(user: user, password: try astring())
        case "AUTHENTICATE":
            try space()
            let mech = try atom().uppercased()
            var initial: String?
            if take(32) {
                // RFC 4959: the initial response, "=" for empty.
                let r = run { $0 > 32 && $0 < 127 }
                guard !r.isEmpty else { throw fail("Expected an initial response") }
                initial = String(decoding: r, as: UTF8.self)
            }
            return .authenticate(mechanism: mech, initialResponse: initial)
        case "ENABLE":
            var caps: [String] = []
            while take(32) { caps.append(try atom().uppercased()) }
            guard !caps.isEmpty else { throw fail("ENABLE needs a capability") }
            return .enable(caps)
        case "ID":
            try space()
            return .id(try idParameters())
        case "SELECT", "EXAMINE":
            try space()
            let mb = try mailbox()
            var condstore = false
            var qresync: IMAPQResync?
            if take(32) {
                // RFC 7162 §3.1.8 (CONDSTORE) and §3.2.5 (QRESYNC (...)).
                try expect(UInt8(ascii: "("), "(")
                while !take(UInt8(ascii: ")")) {
                    if condstore || qresync != nil { try space() }
                    switch try atom().uppercased() {
                    case "CONDSTORE": condstore = true
                    case "QRESYNC":
                        try space()
                        qresync = try qresyncParameters()
                    case let p: throw fail("Unsupported SELECT parameter \(p)")
                    }
                }
            }
            return name == "SELECT" ? .select(mb, condstore: condstore, qresync: qresync)
                : .examine(mb, condstore: condstore, qresync: qresync)
        case "GETQUOTA":
            try space()
            return .getQuota(try astring())
        case "GETQUOTAROOT":
            try space()
            return .getQuotaRoot(try mailbox())
        case "SETQUOTA":
            // RFC 9208 §4.1.3: SETQUOTA root (resource limit ...)
            try space()
            let root = try astring()
            try space()
            try expect(UInt8(ascii: "("), "(")
            var limits: [IMAPQuotaLimit] = []
            while !take(UInt8(ascii: ")")) {
                if !limits.isEmpty { try space() }
                let r = try atom().uppercased()
                try space()
                limits.append(IMAPQuotaLimit(resource: r, limit: Int64(try number())))
            }
            return .setQuota(root, limits)
        case "COMPRESS":
            try space()
            return .compress(try atom().uppercased())
        case "SORT", "THREAD":
            return name == "SORT" ? try sort(uid: false) : try thread(uid: false)
        case "CREATE":
            try space()
            return .create(try mailbox())
        case "DELETE":
            try space()
            return .delete(try mailbox())
        case "RENAME":
            try space()
            let from = try mailbox()
            try space()
            return .rename(from: from, to: try mailbox())
        case "SUBSCRIBE":
            try space()
            return .subscribe(try mailbox())
        case "UNSUBSCRIBE":
            try space()
            return .unsubscribe(try mailbox())
        case "LIST":
            return try list()
        case "LSUB":
            try space()
            let ref = try mailbox()
            try space()
            return .lsub(reference: ref, pattern: try listMailbox())
        case "STATUS":
            try space()
            let mb = try mailbox()
            try space()
            let items = try atomList().map { $0.uppercased() }
            return .status(mb, items)
        case "APPEND":
            return try append()
        case "FETCH", "STORE", "COPY", "MOVE", "SEARCH":
            return try messageCommand(name, uid: false)
        case "UID":
            try space()
            let sub = try atom().uppercased()
            if sub == "EXPUNGE" {
                try space()
                return .uidExpunge(try sequenceSet())
            }
            if sub == "SORT" { return try sort(uid: true) }
            if sub == "THREAD" { return try thread(uid: true) }
            guard ["FETCH", "STORE", "COPY", "MOVE", "SEARCH"].contains(sub) else { throw fail("Unknown UID command") }
            return try messageCommand(sub, uid: true)
        default:
            throw fail("Unknown command")
        }
    }

    /// RFC 2971: `"(" string SP nstring *(SP string SP nstring) ")" / nil`
    mutating func idParameters() throws -> [String: String]? {
        if try nilToken() { return nil }
        try expect(UInt8(ascii: "("), "(")
        var out: [String: String] = [:]
        while !take(UInt8(ascii: ")")) {
            if !out.isEmpty { try space() }
            let k = String(decoding: try string(), as: UTF8.self)
            try space()
            out[k] = try nilToken() ? "" : String(decoding: try string(), as: UTF8.self)
            guard out.count <= 30 else { throw fail("Too many ID parameters") }
        }
        return out
    }

    mutating func nilToken() throws -> Bool {
        let save = i
        if let a = try? atom(), a.uppercased() == "NIL" { return true }
        i = save
        return false
    }

    /// RFC 5258 §6: `LIST [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`
    mutating func list() throws -> IMAPCommand {
        try space()
        var selection: [String] = []
        if peekByte == UInt8(ascii: "(") {
            selection = try atomList().map { $0.uppercased() }
            try space()
        }
        let ref = try mailbox()
        try space()
        var patterns: [String] = []
        if take(UInt8(ascii: "(")) {
            while !take(UInt8(ascii: ")")) {
                if !patterns.isEmpty { try space() }
                patterns.append(try listMailbox())
            }
        } else {
            patterns.append(try listMailbox())
        }
        var returns: [IMAPListReturn] = []
        if take(32) {
            guard try atom().uppercased() == "RETURN" else { throw fail("Expected RETURN") }
            try space()
            try expect(UInt8(ascii: "("), "(")
            while !take(UInt8(ascii: ")")) {
                if !returns.isEmpty { try space() }
                switch try atom().uppercased() {
                case "SUBSCRIBED": returns.append(.subscribed)
                case "CHILDREN": returns.append(.children)
                case "SPECIAL-USE": returns.append(.specialUse)
                case "STATUS":
                    try space()
                    returns.append(.status(try atomList().map { $0.uppercased() }))
                default: throw fail("Unknown LIST return option")
                }
            }
        }
        return .list(reference: ref, patterns: patterns, selection: selection, returnOptions: returns)
    }

    /// `append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal`
    mutating func append() throws -> IMAPCommand {
        try space()
        let mb = try mailbox()
        try space()
        var flags: [String] = []
        var date: String?
        if peekByte == UInt8(ascii: "(") {
            flags = try flagList()
            try space()
        }
        if peekByte == UInt8(ascii: "\"") {
            date = String(decoding: try string(), as: UTF8.self)
            try space()
        }
        // RFC 6855 §4: UTF8 (literal8); RFC 3516 §4.4: literal8 (~{n}).
        var utf8 = false
        let save = i
        if let w = try? atom(), w.uppercased() == "UTF8" {
            try space()
            try expect(UInt8(ascii: "("), "(")
            utf8 = true
        } else {
            i = save
        }
        let binary = take(UInt8(ascii: "~"))
        if utf8 && !binary { throw fail("UTF8 APPEND needs a literal8") }
        guard i < units.count, case .literal(let message) = units[i] else { throw fail("APPEND needs the message as a literal") }
        i += 1
        if utf8 { try expect(UInt8(ascii: ")"), ")") }
        return .append(mailbox: mb, flags: flags, date: date, message: message, binary: binary, utf8: utf8)
    }

    /// `uid-set` known / sequence-match data of QRESYNC (RFC 7162 §3.2.5).
    mutating func qresyncParameters() throws -> IMAPQResync {
        try expect(UInt8(ascii: "("), "(")
        let validity = try nzNumber()
        try space()
        let modseq = try number()
        guard modseq > 0 else { throw fail("Expected a non-zero mod-sequence") }
        var q = IMAPQResync(uidValidity: validity, modseq: Int64(modseq))
        if take(32) {
            if peekByte == UInt8(ascii: "(") {
                try seqMatch(&q)
            } else {
                q.knownUIDs = try sequenceSet()
                if take(32) { try seqMatch(&q) }
            }
        }
        try expect(UInt8(ascii: ")"), ")")
        return q
    }

    mutating func seqMatch(_ q: inout IMAPQResync) throws {
        try expect(UInt8(ascii: "("), "(")
        q.knownSequences = try sequenceSet()
        try space()
        q.knownSequenceUIDs = try sequenceSet()
        try expect(UInt8(ascii: ")"), ")")
    }

    /// `sort = ["UID" SP] "SORT" SP sort-criteria SP search-criteria` (RFC 5256 §5).
    mutating func sort(uid: Bool) throws -> IMAPCommand {
        try space()
        try expect(UInt8(ascii: "("), "(")
        var criteria: [IMAPSortCriterion] = []
        var reverse = false
        while !take(UInt8(ascii: ")")) {
            if !criteria.isEmpty || reverse { try space() }
            let a = try atom().uppercased()
            if a == "REVERSE" { reverse = true; continue }
            guard let k = IMAPSortCriterion.Key(rawValue: a) else { throw fail("Unknown sort key \(a)") }
            criteria.append(IMAPSortCriterion(k, reverse: reverse))
            reverse = false
        }
        guard !criteria.isEmpty, !reverse else { throw fail("Expected sort criteria") }
        try space()
        let charset = try astring().uppercased()
        try space()
        return .sort(criteria, charset: charset, try searchProgram(), uid: uid)
    }

    /// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-charset SP search-key` (RFC 5256 §5).
    mutating func thread(uid: Bool) throws -> IMAPCommand {
        try space()
        let algorithm = try atom().uppercased()
        try space()
        let charset = try astring().uppercased()
        try space()
        return .thread(algorithm, charset: charset, try searchProgram(), uid: uid)
    }

    mutating func messageCommand(_ name: String, uid: Bool) throws -> IMAPCommand {
        try space()
        if name == "SEARCH" { return try search(uid: uid) }
        let set = try sequenceSet()
        try space()
        switch name {
        case "FETCH":
            let items = try fetchItems()
            var changedSince: Int64?
            var vanished = false
            if take(32) {
                // RFC 7162 §3.1.4 and §3.2.6: (CHANGEDSINCE n [VANISHED])
                try expect(UInt8(ascii: "("), "(")
                var first = true
                while !take(UInt8(ascii: ")")) {
                    if !first { try space() }
                    first = false
                    switch try atom().uppercased() {
                    case "CHANGEDSINCE":
                        try space()
                        changedSince = Int64(try number())
                    case "VANISHED": vanished = true
                    default: throw fail("Unknown FETCH modifier")
                    }
                }
                if vanished && (changedSince == nil || !uid) { throw fail("VANISHED needs UID FETCH with CHANGEDSINCE") }
            }
            return .fetch(set, items, uid: uid, changedSince: changedSince, vanished: vanished)
        case "STORE":
            var unchangedSince: Int64?
            if take(UInt8(ascii: "(")) {
                guard try atom().uppercased() == "UNCHANGEDSINCE" else { throw fail("Unknown STORE modifier") }
                try space()
                unchangedSince = Int64(try number())
                try expect(UInt8(ascii: ")"), ")")
                try space()
            }
            let op = try atom().uppercased()
            let mode: IMAPStoreMode
            var base = op
            let silent = op.hasSuffix(".SILENT")
            if silent { base = String(op.dropLast(7)) }
            switch base {
            case "FLAGS": mode = .replace
            case "+FLAGS": mode = .add
            case "-FLAGS": mode = .remove
            default: throw fail("Expected FLAGS, +FLAGS or -FLAGS")
            }
            try space()
            let flags: [String]
            if peekByte == UInt8(ascii: "(") { flags = try flagList() } else {
                var f = [try flag()]
                while take(32) { f.append(try flag()) }
                flags = f
            }
            return .store(set, mode, silent: silent, flags: flags, uid: uid, unchangedSince: unchangedSince)
        case "COPY":
            return .copy(set, try mailbox(), uid: uid)
        default:
            return .move(set, try mailbox(), uid: uid)
        }
    }
}
