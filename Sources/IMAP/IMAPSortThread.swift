import MIME

// RFC 5256 SORT and THREAD, and RFC 5957 DISPLAYFROM / DISPLAYTO, as pure
// functions over header facts. The session gathers one `IMAPSortInput` per
// message that matched the search program; nothing here touches the store.
//
// Untrusted input: every header value comes from stored mail. Work is
// bounded by `maximumReferences` per message; the thread algorithms are
// iterative so deep reply chains do not grow the stack.

/// One message as SORT and THREAD see it (RFC 5256 §2.2, §3; RFC 5957 §3).
public struct IMAPSortInput: Hashable, Sendable {
    /// The number to report: a sequence number, or a UID for UID SORT /
    /// UID THREAD. Ties are broken by this number, ascending, which is
    /// mailbox order either way.
    public var id: UInt32
    /// INTERNALDATE, Unix seconds (ARRIVAL; fallback sent date).
    public var arrival: Int64
    /// RFC822.SIZE (SIZE).
    public var size: Int64
    /// The parsed Date field, Unix seconds; nil when absent or unparseable.
    public var date: Int64?
    /// The unfolded Subject value, encoded words still encoded; nil when absent.
    public var subject: [UInt8]?
    public var from: [AddressListEntry]
    public var to: [AddressListEntry]
    public var cc: [AddressListEntry]
    /// Unfolded raw values of Message-ID, In-Reply-To and References.
    public var messageID: [UInt8]?
    public var inReplyTo: [UInt8]?
    public var references: [UInt8]?

    public init(id: UInt32, arrival: Int64, size: Int64, date: Int64? = nil, subject: [UInt8]? = nil,
                from: [AddressListEntry] = [], to: [AddressListEntry] = [], cc: [AddressListEntry] = [],
                messageID: [UInt8]? = nil, inReplyTo: [UInt8]? = nil, references: [UInt8]? = nil) {
        self.id = id
        self.arrival = arrival
        self.size = size
        self.date = date
        self.subject = subject
        self.from = from
        self.to = to
        self.cc = cc
        self.messageID = messageID
        self.inReplyTo = inReplyTo
        self.references = references
    }

    /// Takes the fields from a parsed header section (the first of each).
    public init(id: UInt32, arrival: Int64, size: Int64, header: RFC5322Header) {
        func list(_ name: String) -> [AddressListEntry] { header[name].map(AddressParser.parseList) ?? [] }
        self.init(id: id, arrival: arrival, size: size,
                  date: header["Date"].flatMap { RFC5322Date.parse($0) },
                  subject: header["Subject"],
                  from: list("From"), to: list("To"), cc: list("Cc"),
                  messageID: header["Message-ID"], inReplyTo: header["In-Reply-To"],
                  references: header["References"])
    }

    /// Parses `headerBytes` (the header section, or the whole message).
    public init(id: UInt32, arrival: Int64, size: Int64, headerBytes: [UInt8]) {
        self.init(id: id, arrival: arrival, size: size, header: RFC5322Header.parse(headerBytes))
    }

    /// RFC 5256 §2.2: the Date field, or INTERNALDATE when it is missing or
    /// cannot be parsed. Zones are already normalised to UTC.
    public var sentDate: Int64 { date ?? arrival }
}

/// RFC 5256 §2.1 base subject of a message, and whether extracting it
/// removed a reply/forward marker (a subj-refwd, a "(fwd)" trailer, or a
/// "[fwd:" … "]" wrapper), which REFERENCES threading uses in step 5.
public struct IMAPBaseSubject: Hashable, Sendable {
    public var text: String
    public var isReplyOrForward: Bool
    /// `text` under i;ascii-casemap (RFC 4790 §9.2): the bytes compared.
    public var key: [UInt8]

    public init(text: String, isReplyOrForward: Bool) {
        self.text = text
        self.isReplyOrForward = isReplyOrForward
        self.key = IMAPSortThread.asciiCasemap(Array(text.utf8))
    }
}

/// RFC 5256 §3 THREAD algorithms.
public enum IMAPThreadAlgorithm: String, Hashable, Sendable, CaseIterable {
    case orderedSubject = "ORDEREDSUBJECT"
    case references = "REFERENCES"

    /// Algorithm names are case-insensitive atoms.
    public init?(name: String) {
        guard let a = IMAPThreadAlgorithm(rawValue: name.uppercased()) else { return nil }
        self = a
    }
}

/// A node of a THREAD result (RFC 5256 §4): a message with its replies, or
/// a dummy that only holds its children together (a missing parent, or
/// messages gathered by subject).
public enum IMAPThreadNode: Hashable, Sendable {
    case message(UInt32, children: [IMAPThreadNode])
    case dummy(children: [IMAPThreadNode])

    public var children: [IMAPThreadNode] {
        switch self {
        case .message(_, let c), .dummy(let c): return c
        }
    }
}

/// SORT, THREAD and the pieces they share.
public enum IMAPSortThread {
    /// References kept per message (the last ones, nearest the message);
    /// RFC 5256 §3 already expects truncated References fields.
    public static let maximumReferences = 1_000

    // MARK: - SORT (RFC 5256 §3, RFC 5957 §4)

    private enum SortValue {
        case number(Int64)
        case text([UInt8])

        func compare(_ other: SortValue) -> Int {
            switch (self, other) {
            case (.number(let a), .number(let b)): return a < b ? -1 : (a > b ? 1 : 0)
            case (.text(let a), .text(let b)): return IMAPSortThread.compareBytes(a, b)
            default: return 0
            }
        }
    }

    /// The ids of `inputs` in SORT order. Messages equal under every
    /// criterion keep mailbox order (ascending id), also under REVERSE.
    /// No criteria gives mailbox order.
    public static func sort(_ inputs: [IMAPSortInput], by criteria: [IMAPSortCriterion]) -> [UInt32] {
        let keys: [[SortValue]] = inputs.map { input in criteria.map { sortValue($0.key, input) } }
        let order = inputs.indices.sorted { a, b in
            for (k, criterion) in criteria.enumerated() {
                let r = keys[a][k].compare(keys[b][k])
                if r != 0 { return criterion.reverse ? r > 0 : r < 0 }
            }
            return inputs[a].id < inputs[b].id
        }
        return order.map { inputs[$0].id }
    }

    private static func sortValue(_ key: IMAPSortCriterion.Key, _ input: IMAPSortInput) -> SortValue {
        switch key {
        case .arrival: return .number(input.arrival)
        case .date: return .number(input.sentDate)
        case .size: return .number(input.size)
        case .subject: return .text(baseSubject(input.subject ?? []).key)
        case .from: return .text(asciiCasemap(firstMailbox(input.from)))
        case .to: return .text(asciiCasemap(firstMailbox(input.to)))
        case .cc: return .text(asciiCasemap(firstMailbox(input.cc)))
        case .displayFrom: return .text(asciiCasemap(Array(displayValue(input.from).utf8)))
        case .displayTo: return .text(asciiCasemap(Array(displayValue(input.to).utf8)))
        }
    }

    /// RFC 5256 §3 FROM / TO / CC: the IMAP addr-mailbox (local part) of the
    /// first address as ENVELOPE would list it, so a leading group gives its
    /// name; empty when there is none.
    public static func firstMailbox(_ list: [AddressListEntry]) -> [UInt8] {
        AddressListEntry.imapAddresses(list).first?.mailbox ?? []
    }

    /// RFC 5957 §3, the display sort value of the first address: its name
    /// with encoded words decoded if that is not empty, else
    /// "mailbox@host", else the mailbox, else the empty string.
    public static func displayValue(_ list: [AddressListEntry]) -> String {
        guard let first = AddressListEntry.imapAddresses(list).first else { return "" }
        if let name = first.decodedName, !name.isEmpty { return name }
        if first.mailbox != nil, first.host != nil { return first.addressString }
        return first.mailbox.map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// i;ascii-casemap (RFC 4790 §9.2): a–z become A–Z, other octets stay.
    public static func asciiCasemap(_ bytes: [UInt8]) -> [UInt8] {
        bytes.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }
    }

    /// Octet-by-octet order, a prefix first (RFC 4790 §9.2's ordering).
    static func compareBytes(_ a: [UInt8], _ b: [UInt8]) -> Int {
        for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
        return a.count < b.count ? -1 : (a.count > b.count ? 1 : 0)
    }

    // MARK: - Base subject (RFC 5256 §2.1)

    /// Extracts the base subject of a raw (unfolded, still encoded) Subject value.
    public static func baseSubject(_ raw: [UInt8]) -> IMAPBaseSubject {
        baseSubject(decoded: EncodedWord.decode(raw))
    }

    /// Steps (2)–(7) of §2.1 on an already decoded subject; step (1)'s
    /// whitespace rules are applied here.
    public static func baseSubject(decoded: String) -> IMAPBaseSubject {
        // (1) Tabs and line breaks become spaces; runs of spaces become one.
        var s: [UInt8] = []
        s.reserveCapacity(decoded.utf8.count)
        for b in decoded.utf8 {
            let c: UInt8 = (b == 0x09 || b == 0x0A || b == 0x0D) ? 0x20 : b
            if c == 0x20, s.last == 0x20 { continue }
            s.append(c)
        }
        var lo = 0, hi = s.count
        var replyOrForward = false
        while true {
            // (2) Trailing subj-trailer = "(fwd)" / WSP, repeatedly.
            while hi > lo {
                if s[hi - 1] == 0x20 { hi -= 1 }
                else if hi - lo >= 5, matches(s, hi - 5, "(fwd)") { hi -= 5; replyOrForward = true }
                else { break }
            }
            // (3)–(5) Leading subj-leader, then a subj-blob that leaves
            // something behind, until neither matches.
            var changed = true
            while changed {
                changed = false
                while lo < hi {
                    if s[lo] == 0x20 { lo += 1; changed = true; continue }
                    guard let end = leaderEnd(s, lo, hi) else { break }
                    lo = end
                    replyOrForward = true
                    changed = true
                }
                if let end = blobEnd(s, lo, hi), end < hi {
                    lo = end
                    changed = true
                }
            }
            // (6) "[fwd:" … "]" around the whole: unwrap and go again from (2).
            if hi - lo >= 6, matches(s, lo, "[fwd:"), s[hi - 1] == 0x5D {
                lo += 5
                hi -= 1
                replyOrForward = true
                continue
            }
            break
        }
        return IMAPBaseSubject(text: String(decoding: s[lo..<hi], as: UTF8.self), isReplyOrForward: replyOrForward)
    }

    /// ASCII case-insensitive match of `word` (lowercase) at `at`.
    private static func matches(_ s: [UInt8], _ at: Int, _ word: StaticString) -> Bool {
        let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard at >= 0, at + w.count <= s.count else { return false }
        for (i, c) in w.enumerated() {
            let b = s[at + i]
            if (b >= 0x41 && b <= 0x5A ? b | 0x20 : b) != c { return false }
        }
        return true
    }

    /// `subj-blob = "[" *BLOBCHAR "]" *WSP`: the end of a blob at `i`.
    private static func blobEnd(_ s: [UInt8], _ i: Int, _ hi: Int) -> Int? {
        guard i < hi, s[i] == 0x5B else { return nil }
        var j = i + 1
        while j < hi, s[j] != 0x5B, s[j] != 0x5D { j += 1 }
        guard j < hi, s[j] == 0x5D else { return nil }
        j += 1
        while j < hi, s[j] == 0x20 { j += 1 }
        return j
    }

    /// `subj-leader = (*subj-blob subj-refwd)` (the WSP alternative is
    /// handled by the caller), with
    /// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`.
    private static func leaderEnd(_ s: [UInt8], _ lo: Int, _ hi: Int) -> Int? {
        var i = lo
        while let end = blobEnd(s, i, hi) { i = end }
        for word: StaticString in ["re", "fwd", "fw"] where matches(s, i, word) {
            var j = i + word.utf8CodeUnitCount
            while j < hi, s[j] == 0x20 { j += 1 }
            if let end = blobEnd(s, j, hi) { j = end }
            if j < hi, s[j] == 0x3A { return j + 1 }
        }
        return nil
    }

    // MARK: - Message IDs (RFC 5322 §3.6.4)

    /// The msg-ids in a Message-ID, In-Reply-To or References value, in
    /// order. Comments and quoted phrases outside "<…>" are skipped; inside,
    /// CFWS is dropped and quoting removed, so `<"a"@b>` equals `<a@b>`
    /// (RFC 5256 §3 REFERENCES asks for this normalisation). An id without
    /// "@" between non-empty sides is not valid and is skipped.
    public static func messageIDs(_ value: [UInt8]?) -> [[UInt8]] {
        guard let v = value else { return [] }
        var ids: [[UInt8]] = []
        var i = 0
        while i < v.count {
            switch v[i] {
            case 0x28: i = commentEnd(v, i)
            case 0x22:
                var skipped: [UInt8] = []
                i = quotedEnd(v, i, into: &skipped)
            case 0x3C:
                var id: [UInt8] = []
                var j = i + 1
                var closed = false
                while j < v.count {
                    let b = v[j]
                    if b == 0x3E { closed = true; j += 1; break }
                    if b == 0x3C { id = []; j += 1; continue }   // "<<id>": start again
                    if b == 0x22 { j = quotedEnd(v, j, into: &id); continue }
                    if b == 0x28 { j = commentEnd(v, j); continue }
                    if b != 0x20 && b != 0x09 && b != 0x0D && b != 0x0A { id.append(b) }
                    j += 1
                }
                if closed, let at = id.firstIndex(of: 0x40), at > 0, at < id.count - 1 { ids.append(id) }
                i = j
            default: i += 1
            }
        }
        return ids
    }

    /// The first valid msg-id of a field value, if any.
    public static func firstMessageID(_ value: [UInt8]?) -> [UInt8]? { messageIDs(value).first }

    private static func commentEnd(_ v: [UInt8], _ start: Int) -> Int {
        var depth = 0
        var i = start
        while i < v.count {
            switch v[i] {
            case 0x5C: i += 1
            case 0x28: depth += 1
            case 0x29: depth -= 1; if depth == 0 { return i + 1 }
            default: break
            }
            i += 1
        }
        return v.count
    }

    /// Skips a quoted-string at `start`, appending its unescaped content.
    private static func quotedEnd(_ v: [UInt8], _ start: Int, into out: inout [UInt8]) -> Int {
        var i = start + 1
        while i < v.count, v[i] != 0x22 {
            if v[i] == 0x5C, i + 1 < v.count { i += 1 }
            if v[i] != 0x0D && v[i] != 0x0A { out.append(v[i]) }
            i += 1
        }
        return min(i + 1, v.count)
    }
}

// MARK: - THREAD (RFC 5256 §3)

extension IMAPSortThread {
    /// Runs `algorithm` over `inputs`: the threads in order, as flat arrays.
    /// `render()` of the result is the THREAD response's data.
    public static func threads(_ inputs: [IMAPSortInput], algorithm: IMAPThreadAlgorithm) -> IMAPThreadForest {
        switch algorithm {
        case .orderedSubject: return orderedSubject(inputs)
        case .references: return references(inputs)
        }
    }

    /// The same as nested values. Fine for tests and ordinary mailboxes;
    /// a value nests as deep as the deepest thread, and releasing a very
    /// deep one (tens of thousands of replies in one chain) recurses, so
    /// the session should prefer `threads(_:algorithm:).render()`.
    public static func thread(_ inputs: [IMAPSortInput], algorithm: IMAPThreadAlgorithm) -> [IMAPThreadNode] {
        threads(inputs, algorithm: algorithm).nodes
    }

    /// The thread-lists for `threads` (see `IMAPThreadForest.render()`).
    public static func render(_ threads: [IMAPThreadNode]) -> String {
        IMAPThreadForest(threads).render()
    }

    /// THREAD=ORDEREDSUBJECT: messages sorted by base subject, then sent
    /// date; each run of one base subject is a thread whose first message
    /// is the root and every later one a child of it (siblings, no depth);
    /// threads ordered by their root's sent date.
    static func orderedSubject(_ inputs: [IMAPSortInput]) -> IMAPThreadForest {
        let subjects = inputs.map { baseSubject($0.subject ?? []).key }
        let order = inputs.indices.sorted { a, b in
            let r = compareBytes(subjects[a], subjects[b])
            return r != 0 ? r < 0 : sentEarlier(inputs[a], inputs[b])
        }
        var threads: [(root: Int, children: [Int])] = []
        for i in order {
            if let last = threads.last, subjects[last.root] == subjects[i] {
                threads[threads.count - 1].children.append(i)
            } else {
                threads.append((i, []))
            }
        }
        threads.sort { sentEarlier(inputs[$0.root], inputs[$1.root]) }
        var forest = IMAPThreadForest()
        for t in threads {
            let root = forest.add(inputs[t.root].id)
            forest.roots.append(root)
            for c in t.children { forest.children[root].append(forest.add(inputs[c].id)) }
        }
        return forest
    }

    /// RFC 5256 §2.2: by sent date, equal dates in mailbox order.
    static func sentEarlier(_ a: IMAPSortInput, _ b: IMAPSortInput) -> Bool {
        a.sentDate != b.sentDate ? a.sentDate < b.sentDate : a.id < b.id
    }

    /// THREAD=REFERENCES, steps (1)–(6) of RFC 5256 §3.
    static func references(_ inputs: [IMAPSortInput]) -> IMAPThreadForest {
        var forest = ThreadLinks()
        let subjects = inputs.map { baseSubject($0.subject ?? []) }

        // (1) Parent/child links from References (or else the first
        // In-Reply-To id), in mailbox order. A duplicate or missing
        // Message-ID gets a node no reference can reach (a unique id);
        // a reference to an unknown id gets a dummy.
        var idTable: [[UInt8]: Int] = [:]
        for m in inputs.indices.sorted(by: { inputs[$0].id < inputs[$1].id }) {
            let messageID = firstMessageID(inputs[m].messageID)
            let node: Int
            if let messageID, let known = idTable[messageID], forest.message[known] == nil {
                node = known
                forest.message[known] = m
            } else {
                node = forest.add(m)
                if let messageID, idTable[messageID] == nil { idTable[messageID] = node }
            }
            var refs = messageIDs(inputs[m].references)
            if refs.isEmpty, let parent = firstMessageID(inputs[m].inReplyTo) { refs = [parent] }
            if refs.count > maximumReferences { refs = Array(refs.suffix(maximumReferences)) }
            // (1A) Each reference is the parent of the next, unless the
            // child already has a parent or the link would close a loop.
            var previous: Int? = nil
            for ref in refs {
                let r: Int
                if let known = idTable[ref] { r = known } else { r = forest.add(nil); idTable[ref] = r }
                if let p = previous, forest.parent[r] == nil, !forest.wouldLoop(parent: p, child: r) {
                    forest.link(r, to: p)
                }
                previous = r
            }
            // (1B) The last reference is this message's parent, replacing a
            // link guessed from someone else's References; no reference, no
            // parent. A link that would close a loop is not made.
            if let p = previous {
                if forest.parent[node] != p, !forest.wouldLoop(parent: p, child: node) {
                    forest.unlink(node)
                    forest.link(node, to: p)
                }
            } else {
                forest.unlink(node)
            }
        }

        // (2) The parentless nodes are the top level.
        let roots = (0..<forest.count).filter { forest.parent[$0] == nil }

        // (3) Prune dummies: below the top a dummy is replaced by its
        // children (none: it goes); at the top only when it has one child.
        for n in forest.postOrder(roots) {
            var kept: [Int] = []
            for c in forest.children[n] {
                if forest.message[c] != nil { kept.append(c); continue }
                for g in forest.children[c] { forest.parent[g] = n; kept.append(g) }
                forest.children[c] = []
                forest.parent[c] = nil
            }
            forest.children[n] = kept
        }
        var top: [Int] = []
        for r in roots {
            if forest.message[r] != nil { top.append(r); continue }
            switch forest.children[r].count {
            case 0: continue
            case 1:
                let only = forest.children[r][0]
                forest.parent[only] = nil
                forest.children[r] = []
                top.append(only)
            default: top.append(r)
            }
        }

        func firstMessage(_ n: Int) -> Int? {
            var x = n
            while forest.message[x] == nil {
                guard let first = forest.children[x].first else { return nil }
                x = first
            }
            return forest.message[x]
        }
        func earlierNode(_ a: Int, _ b: Int) -> Bool {
            guard let ma = firstMessage(a) else { return false }
            guard let mb = firstMessage(b) else { return true }
            return sentEarlier(inputs[ma], inputs[mb])
        }
        func isReplyOrForward(_ n: Int) -> Bool { forest.message[n].map { subjects[$0].isReplyOrForward } ?? false }
        func sortChildren(_ n: Int) {
            let sorted = forest.children[n].sorted(by: earlierNode)   // reads the forest: sort a copy
            forest.children[n] = sorted
        }

        // (4) Sort the top level by sent date; a dummy by its first child
        // once its children are sorted.
        for r in top where forest.message[r] == nil { sortChildren(r) }
        top.sort(by: earlierNode)

        // (5) Gather top-level threads with the same base subject (the
        // message's, or a dummy's first child's), compared case-insensitively.
        var subjectTable: [[UInt8]: Int] = [:]
        for r in top {
            guard let m = firstMessage(r), !subjects[m].key.isEmpty else { continue }
            let key = subjects[m].key
            // (5B) Prefer a dummy, then a message that is not a reply or forward.
            if let t = subjectTable[key] {
                if forest.message[t] != nil, forest.message[r] == nil || (isReplyOrForward(t) && !isReplyOrForward(r)) {
                    subjectTable[key] = r
                }
            } else {
                subjectTable[key] = r
            }
        }
        var isTop = [Bool](repeating: false, count: forest.count)
        for r in top { isTop[r] = true }
        var added: [Int] = []
        for r in top where isTop[r] {
            guard let m = firstMessage(r), !subjects[m].key.isEmpty,
                  let t = subjectTable[subjects[m].key], t != r else { continue }
            let rIsDummy = forest.message[r] == nil, tIsDummy = forest.message[t] == nil
            if rIsDummy && tIsDummy {
                // (5C) Both dummies: r's children join t's.
                for c in forest.children[r] { forest.parent[c] = t; forest.children[t].append(c) }
                forest.children[r] = []
            } else if tIsDummy || (isReplyOrForward(r) && !isReplyOrForward(t)) {
                forest.link(r, to: t)
            } else {
                // Neither is the other's reply: both go under a new dummy.
                let d = forest.add(nil)
                isTop.append(true)
                forest.link(t, to: d)
                forest.link(r, to: d)
                isTop[t] = false
                subjectTable[subjects[m].key] = d
                added.append(d)
            }
            isTop[r] = false
        }
        top = (top + added).filter { isTop[$0] }

        // (6) Sort every set of siblings by sent date, deepest first, so
        // that a dummy is placed by its first child.
        for n in forest.postOrder(top) { sortChildren(n) }
        top.sort(by: earlierNode)

        // The reachable nodes, renumbered in thread order.
        var result = IMAPThreadForest()
        var stack: [(node: Int, parent: Int?)] = top.reversed().map { ($0, nil) }
        while let (n, parent) = stack.popLast() {
            let index = result.add(forest.message[n].map { inputs[$0].id })
            if let parent { result.children[parent].append(index) } else { result.roots.append(index) }
            stack.append(contentsOf: forest.children[n].reversed().map { ($0, index) })
        }
        return result
    }
}

/// A THREAD result as flat arrays (no nesting, so no depth limits): node
/// `i` is message `ids[i]`, or a dummy when nil, with replies `children[i]`
/// in order; `roots` are the threads in order.
public struct IMAPThreadForest: Hashable, Sendable {
    public var ids: [UInt32?] = []
    public var children: [[Int]] = []
    public var roots: [Int] = []

    public init() {}

    public init(ids: [UInt32?], children: [[Int]], roots: [Int]) {
        self.ids = ids
        self.children = children
        self.roots = roots
    }

    /// Flattens nested nodes (without recursion).
    public init(_ threads: [IMAPThreadNode]) {
        var stack: [(node: IMAPThreadNode, parent: Int?)] = threads.reversed().map { ($0, nil) }
        while let (node, parent) = stack.popLast() {
            let id: UInt32?
            if case .message(let n, _) = node { id = n } else { id = nil }
            let index = add(id)
            if let parent { children[parent].append(index) } else { roots.append(index) }
            stack.append(contentsOf: node.children.reversed().map { ($0, index) })
        }
    }

    mutating func add(_ id: UInt32?) -> Int {
        ids.append(id)
        children.append([])
        return ids.count - 1
    }

    /// The threads as nested values, built bottom-up.
    public var nodes: [IMAPThreadNode] {
        var built = [IMAPThreadNode?](repeating: nil, count: ids.count)
        for n in postOrder() {
            var kids: [IMAPThreadNode] = []
            kids.reserveCapacity(children[n].count)
            for c in children[n] {
                if let k = built[c] { kids.append(k) }
                built[c] = nil
            }
            built[n] = ids[n].map { .message($0, children: kids) } ?? .dummy(children: kids)
        }
        return roots.compactMap { built[$0] }
    }

    /// Every node under the roots, each after all of its descendants.
    func postOrder() -> [Int] {
        var preorder: [Int] = []
        var stack = roots
        while let n = stack.popLast() {
            preorder.append(n)
            stack.append(contentsOf: children[n])
        }
        return preorder.reversed()
    }

    /// RFC 5256 §4 thread-lists, the data of `* THREAD`:
    /// `(2)(3 6 (4 23)(44 7 96))`. `thread-list = "(" (thread-members /
    /// thread-nested) ")"`: a chain of only children is written flat
    /// (`thread-members`), several replies each as a list (`thread-nested`),
    /// a dummy with several children as a list of lists `((3)(5))`. An
    /// empty dummy vanishes and a dummy with one child is written as that
    /// child. Iterative: no depth limit.
    public func render() -> String {
        // Children with dummies resolved: a dummy left in a list has ≥ 2.
        var live = [[Int]](repeating: [], count: ids.count)
        func resolve(_ nodes: [Int]) -> [Int] {
            var out: [Int] = []
            for c in nodes {
                if ids[c] != nil { out.append(c); continue }
                if live[c].count == 1 { out.append(live[c][0]) } else if !live[c].isEmpty { out.append(c) }
            }
            return out
        }
        for n in postOrder() { live[n] = resolve(children[n]) }

        enum Step { case list(Int), close }
        var out = ""
        var steps: [Step] = resolve(roots).reversed().map { .list($0) }
        while let step = steps.popLast() {
            guard case .list(let n) = step else { out += ")"; continue }
            out += "("
            guard ids[n] != nil else {
                // thread-nested: the dummy's children, each a list.
                steps.append(.close)
                steps.append(contentsOf: live[n].reversed().map { .list($0) })
                continue
            }
            // thread-members: follow only children, then the nested replies.
            var current = n
            while true {
                out += String(ids[current]!)
                var kids = live[current]
                // A lone dummy reply: its children are this message's replies.
                if kids.count == 1, ids[kids[0]] == nil { kids = live[kids[0]] }
                if kids.isEmpty { out += ")"; break }
                out += " "
                if kids.count == 1 { current = kids[0]; continue }
                steps.append(.close)
                steps.append(contentsOf: kids.reversed().map { .list($0) })
                break
            }
        }
        return out
    }
}

/// The REFERENCES working set: nodes by index, each a message (an index
/// into the inputs) or a dummy, with parent and children links kept
/// consistent (RFC 5256 §3 step 1's note).
private struct ThreadLinks {
    var message: [Int?] = []
    var parent: [Int?] = []
    var children: [[Int]] = []

    var count: Int { message.count }

    mutating func add(_ m: Int?) -> Int {
        message.append(m)
        parent.append(nil)
        children.append([])
        return message.count - 1
    }

    /// Whether making `p` the parent of `c` would close a loop: `p` is `c`
    /// or one of its descendants.
    func wouldLoop(parent p: Int, child c: Int) -> Bool {
        if p == c { return true }
        if children[c].isEmpty { return false }
        var x: Int? = p
        while let n = x {
            if n == c { return true }
            x = parent[n]
        }
        return false
    }

    mutating func link(_ c: Int, to p: Int) {
        parent[c] = p
        children[p].append(c)
    }

    mutating func unlink(_ c: Int) {
        guard let p = parent[c] else { return }
        if let i = children[p].firstIndex(of: c) { children[p].remove(at: i) }
        parent[c] = nil
    }

    /// Every node under `roots` (roots included), each after all of its
    /// descendants.
    func postOrder(_ roots: [Int]) -> [Int] {
        var preorder: [Int] = []
        var stack = roots
        while let n = stack.popLast() {
            preorder.append(n)
            stack.append(contentsOf: children[n])
        }
        return preorder.reversed()
    }
}
