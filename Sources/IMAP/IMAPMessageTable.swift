/// The messages of a selected mailbox by UID, in two arrays sorted by UID:
/// the UIDs alone (small, searched by bisection) and the entries (read in
/// order by scans). A mailbox of 10,000 messages is two allocations, and
/// whole-mailbox scans (first unseen, SEARCH, EXPUNGE) read memory in order
/// instead of hopping through a hash table.
struct IMAPMessageTable: Sequence {
    private(set) var uids: [UInt32] = []
    private(set) var entries: [IMAPMessageInfo] = []

    init() {}

    /// A table of `messages` in any order (the store lists them by UID).
    init(_ messages: [IMAPMessageInfo]) {
        var sorted = true
        for i in messages.indices.dropFirst() where messages[i - 1].uid >= messages[i].uid { sorted = false; break }
        entries = sorted ? messages : IMAPMessageTable.unique(messages.sorted { $0.uid < $1.uid })
        uids = entries.map(\.uid)
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    var first: IMAPMessageInfo? { entries.first }
    func makeIterator() -> IndexingIterator<[IMAPMessageInfo]> { entries.makeIterator() }

    /// Index of the first entry whose UID is >= `uid`.
    func lowerBound(_ uid: UInt32) -> Int { uids.lowerBound(uid) }

    func index(of uid: UInt32) -> Int? { uids.position(of: uid) }

    func contains(_ uid: UInt32) -> Bool { index(of: uid) != nil }

    subscript(uid: UInt32) -> IMAPMessageInfo? {
        get { index(of: uid).map { entries[$0] } }
        set {
            let i = lowerBound(uid)
            let found = i < uids.count && uids[i] == uid
            switch (newValue, found) {
            case (let m?, true):
                precondition(m.uid == uid)
                entries[i] = m
            case (let m?, false):
                precondition(m.uid == uid)
                uids.insert(uid, at: i); entries.insert(m, at: i)
            case (nil, true):
                uids.remove(at: i); entries.remove(at: i)
            case (nil, false):
                break
            }
        }
    }

    /// The entry for `uid` when lookups go in ascending UID order: `cursor`
    /// only moves forward, so a pass over a mailbox is linear.
    func next(_ uid: UInt32, cursor: inout Int) -> IMAPMessageInfo? {
        // Every UID before the cursor is below the one sought; otherwise start again.
        if cursor > uids.count || (cursor > 0 && uids[cursor - 1] >= uid) { cursor = lowerBound(uid) }
        while cursor < uids.count && uids[cursor] < uid { cursor += 1 }
        return cursor < uids.count && uids[cursor] == uid ? entries[cursor] : nil
    }

    /// Puts in `changed` (new or updated entries) and takes out `expunged`:
    /// one merge when they are many, single edits when they are few.
    mutating func apply(changed: [IMAPMessageInfo], expunged: [UInt32]) {
        if changed.count + expunged.count <= 16 {
            for m in changed { self[m.uid] = m }
            for u in expunged { self[u] = nil }
            return
        }
        let updates = IMAPMessageTable(changed)
        let gone = Set(expunged)
        var out: [IMAPMessageInfo] = []
        out.reserveCapacity(entries.count + updates.count)
        var i = 0, j = 0
        while i < entries.count || j < updates.count {
            let m: IMAPMessageInfo
            if j == updates.count || (i < entries.count && entries[i].uid < updates.entries[j].uid) {
                m = entries[i]; i += 1
            } else {
                if i < entries.count && entries[i].uid == updates.entries[j].uid { i += 1 }
                m = updates.entries[j]; j += 1
            }
            if !gone.contains(m.uid) { out.append(m) }
        }
        entries = out
        uids = out.map(\.uid)
    }

    /// `sorted` without repeated UIDs (the last of each wins).
    private static func unique(_ sorted: [IMAPMessageInfo]) -> [IMAPMessageInfo] {
        var out: [IMAPMessageInfo] = []
        out.reserveCapacity(sorted.count)
        for m in sorted {
            if out.last?.uid == m.uid { out[out.count - 1] = m } else { out.append(m) }
        }
        return out
    }
}

extension Array where Element == UInt32 {
    /// In an ascending array: the index of the first element >= `value`.
    func lowerBound(_ value: UInt32) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if self[mid] < value { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// In an ascending array: the index of `value`, if present.
    func position(of value: UInt32) -> Int? {
        let i = lowerBound(value)
        return i < count && self[i] == value ? i : nil
    }
}
