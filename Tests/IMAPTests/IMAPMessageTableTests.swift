@testable import IMAP
import Testing
import TestSupport

/// The selected mailbox's message table against a dictionary model, the
/// byte-level text search and the search-fields cut.
struct IMAPMessageTableTests {
    func info(_ uid: UInt32, flags: UInt8 = 0, modseq: Int64 = 1) -> IMAPMessageInfo {
        IMAPMessageInfo(uid: uid, systemFlags: flags, keywords: flags & 32 != 0 ? ["$Work"] : [], modseq: modseq, size: Int64(uid) * 10,
                        internalDate: 0, storageKey: IMAPStorageKey(high: UInt64(uid), low: 0))
    }

    @Test func tableMatchesADictionaryUnderRandomEdits() {
        var rng = SeededGenerator(seed: 0x7AB1E)
        var table = IMAPMessageTable((1...300).map { info($0) })
        var model = Dictionary(uniqueKeysWithValues: (1...300).map { ($0, info($0)) })
        for round in 0..<400 {
            // Few edits (single-entry path) and many (merge path), in any order.
            let n = round % 3 == 0 ? Int.random(in: 20...80, using: &rng) : Int.random(in: 0...5, using: &rng)
            let changed = (0..<n).map { _ in info(UInt32.random(in: 1...450, using: &rng), flags: UInt8.random(in: 0...63, using: &rng),
                                                    modseq: Int64(round)) }
            let expunged = (0..<Int.random(in: 0...(n / 2 + 1), using: &rng)).map { _ in UInt32.random(in: 1...450, using: &rng) }
            table.apply(changed: changed, expunged: expunged)
            for m in changed { model[m.uid] = m }
            for u in expunged { model[u] = nil }
            #expect(table.uids == model.keys.sorted())
            #expect(table.map(\.self) == model.keys.sorted().map { model[$0]! })
        }
        for u in UInt32(0)...460 { #expect(table[u] == model[u]) }
        // Ascending lookups with a cursor, and a step back.
        var cursor = 0
        for u in stride(from: UInt32(0), through: 460, by: 7) { #expect(table.next(u, cursor: &cursor) == model[u]) }
        #expect(table.next(3, cursor: &cursor) == model[3])
        table[10] = nil
        #expect(!table.contains(10))
        table[10] = info(10, flags: IMAPMessageInfo.seen)
        #expect(table[10]?.has(IMAPMessageInfo.seen) == true)
    }

    @Test func unsortedOrRepeatedInputIsSortedAndUnique() {
        let t = IMAPMessageTable([info(5), info(2, modseq: 1), info(9), info(2, modseq: 7)])
        #expect(t.uids == [2, 5, 9])
        #expect(t[2]?.modseq == 7)
    }

    @Test func flagsAreNamedInOrderAndFoundCaseInsensitively() {
        let m = info(1, flags: IMAPMessageInfo.seen | IMAPMessageInfo.deleted | 32)
        #expect(m.flags == ["\\Seen", "\\Deleted", "$Work"])
        var w = IMAPWriter()
        w.flags(of: m)
        #expect(String(decoding: w.bytes, as: UTF8.self) == "(\\Seen \\Deleted $Work)")
        #expect(IMAPMessageInfo.systemBit("\\SEEN") == IMAPMessageInfo.seen)
        #expect(IMAPMessageInfo.systemBit("\\Recent") == 0)
        #expect(IMAPMessageInfo.systemBit("Seen") == 0)
    }

    @Test func textSearchIsCaseInsensitiveOnBytes() {
        #expect(SearchContext.textContains("The Marzipan cake", "marziPAN"))
        #expect(SearchContext.textContains("abc", ""))
        #expect(!SearchContext.textContains("marzipa", "marzipan"))
        #expect(SearchContext.textContains("xxmarzipan", "marzipan"))
        #expect(!SearchContext.textContains("mmmmmmm", "mmmmmmmm"))
        #expect(SearchContext.textContains("Grüße aus KÖLN", "köln"))
        #expect(SearchContext.textContains("ÄÖÜ", "äöü"))
        #expect(!SearchContext.textContains("Koln", "köln"))
        // Multi-byte letters are never split: an ASCII needle cannot match inside them.
        #expect(!SearchContext.textContains("é", "\u{A9}"))
    }

    @Test func searchFieldsKeepOnlyTheirLines() {
        let header = Array("""
            Received: from a\r
            \tby b\r
            From: Ann\r
             <ann@example.org>\r
            X-Other: From: not this\r
            subject : Hello\r
            References: <a@x>\r
            \t<b@x>\r
            Content-Type: text/plain\r
            \r

            """.utf8)
        let cut = String(decoding: IMAPMessageSource.cutSearchFields(header), as: UTF8.self)
        #expect(cut == "From: Ann\r\n <ann@example.org>\r\nsubject : Hello\r\nReferences: <a@x>\r\n\t<b@x>\r\n\r\n")
        #expect(SearchContext.headerValues(Array(cut.utf8), named: "from").map { String(decoding: $0, as: UTF8.self) }
            == [" Ann <ann@example.org>"])
        // A header block without its blank line still ends in one.
        #expect(IMAPMessageSource.cutSearchFields(Array("To: b@x".utf8)) == Array("To: b@x\r\n\r\n".utf8))
    }
}

/// Sequence sets resolved to positions of a view (what `resolve` and the
/// quick-command check share), against a model that walks every number.
struct IMAPSequencePositionTests {
    typealias Bound = IMAPSequenceSet.Bound

    /// The model: every message whose number (or UID) lies in a range.
    func model(_ ranges: [(Bound, Bound)], byUID: Bool, uids: [UInt32]) -> [Int] {
        let star = byUID ? uids.last ?? 0 : UInt32(uids.count)
        func value(_ b: Bound) -> UInt32 { if case .number(let v) = b { return v }; return star }
        var out: Set<Int> = []
        for (a, b) in ranges {
            let lo = min(value(a), value(b)), hi = max(value(a), value(b))
            for (i, uid) in uids.enumerated() {
                let n = byUID ? uid : UInt32(i + 1)
                if n >= lo && n <= hi { out.insert(i) }
            }
        }
        return out.sorted()
    }

    @Test func positionsMatchTheModelForRandomSets() {
        var rng = SeededGenerator(seed: 0x5E75)
        for _ in 0..<500 {
            // A view with gaps in its UIDs (expunged messages), sometimes empty.
            let uids = (1...UInt32.random(in: 1...120, using: &rng)).filter { _ in Bool.random(using: &rng) }
            let byUID = Bool.random(using: &rng)
            let top = byUID ? 130 : UInt32(uids.count + 3)
            func bound() -> Bound { Int.random(in: 0..<8, using: &rng) == 0 ? .star : .number(UInt32.random(in: 1...max(top, 1), using: &rng)) }
            let ranges = (0..<Int.random(in: 1...4, using: &rng)).map { _ in (bound(), bound()) }
            let set = IMAPSequenceSet(ranges: ranges)
            let got = IMAPSession.positions(set, byUID: byUID, in: uids) ?? []
            #expect(Set(got.flatMap { Array($0) }) == Set(model(ranges, byUID: byUID, uids: uids)), "\(ranges) \(byUID) \(uids)")
            let named = got.reduce(0) { $0 + $1.count }
            // The limit refuses exactly the sets naming more than it.
            let limit = Int.random(in: 0...40, using: &rng)
            #expect((IMAPSession.positions(set, byUID: byUID, in: uids, limit: limit) == nil) == (named > limit))
        }
    }

    @Test func edgesOfTheNumberSpace() {
        let uids: [UInt32] = [3, 7, 8, 20]
        // Sequence numbers past the end name nothing (the command refuses them first).
        #expect(IMAPSession.positions(IMAPSequenceSet(ranges: [(.number(99), .number(99))]), byUID: false, in: uids) == [])
        #expect(IMAPSession.positions(IMAPSequenceSet(ranges: [(.number(3), .number(9))]), byUID: false, in: uids) == [2..<4])
        // `*` is the last UID; the largest UID bound does not overflow.
        #expect(IMAPSession.positions(IMAPSequenceSet(ranges: [(.number(8), .star)]), byUID: true, in: uids) == [2..<4])
        #expect(IMAPSession.positions(IMAPSequenceSet(ranges: [(.number(4), .number(.max))]), byUID: true, in: uids) == [1..<4])
        #expect(IMAPSession.positions(IMAPSequenceSet(ranges: [(.star, .star)]), byUID: true, in: []) == [])
        // The ends of the number space: 0 names nothing by sequence number,
        // 4294967295 is past any mailbox; by UID it bounds a range.
        #expect(IMAPSession.positions(IMAPSequenceSet(ranges: [(.number(0), .number(0))]), byUID: false, in: uids) == [])
        #expect(IMAPSession.positions(IMAPSequenceSet(ranges: [(.number(.max), .number(.max))]), byUID: false, in: uids) == [])
        #expect(IMAPSession.positions(IMAPSequenceSet(ranges: [(.number(.max), .number(.max))]), byUID: true, in: uids) == [])
        #expect(IMAPSession.positions(IMAPSequenceSet(ranges: [(.number(.max), .number(8))]), byUID: true, in: uids) == [2..<4])
        #expect(IMAPSession.positions(IMAPSequenceSet(ranges: [(.number(0), .star)]), byUID: true, in: uids) == [0..<4])
        // `n:*` on an empty mailbox is no error and names nothing.
        #expect(IMAPSession.positions(IMAPSequenceSet(ranges: [(.number(1), .star)]), byUID: false, in: []) == [])
    }
}
