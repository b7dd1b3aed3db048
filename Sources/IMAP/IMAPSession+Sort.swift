import MIME

extension IMAPSession {
    // MARK: SORT and THREAD (RFC 5256)

    /// The matching messages' sort inputs, numbered by UID.
    func sortInputs(_ key: IMAPSearchKey) throws -> [(seq: UInt32, input: IMAPSortInput)] {
        let s = selected!
        var out: [(UInt32, IMAPSortInput)] = []
        let found = try search(key)
        var i = 0
        while i < found.count {
            let batch = found[i..<min(i + IMAPSession.sourceBatch, found.count)]
            i += batch.count
            let cache = renderings(ArraySlice(batch.map(\.1)), parts: .searchFields)
            var used: [IMAPMessageSource] = []
            defer { keep(used) }
            for (seq, uid) in batch {
                guard let m = s.current[uid] else { continue }
                var source = IMAPMessageSource(backend: backend, user: user!, info: m, cached: cache[m.storageKey])
                do {
                    out.append((seq, IMAPSortInput(id: uid, arrival: m.internalDate, size: m.size, header: try source.searchHeader())))
                } catch IMAPBackendError.nonexistent {
                    continue // expunged by another session meanwhile
                }
                used.append(source)
            }
        }
        return out
    }

    /// (sequence number, UID) in the order of `criteria` (RFC 5256 §3).
    func sort(_ criteria: [IMAPSortCriterion], _ key: IMAPSearchKey) throws -> [(UInt32, UInt32)] {
        let inputs = try sortInputs(key)
        var seqOf: [UInt32: UInt32] = [:]
        for i in inputs { seqOf[i.input.id] = i.seq }
        return IMAPSortThread.sort(inputs.map(\.input), by: criteria).map { (seqOf[$0] ?? 0, $0) }
    }

    /// The THREAD response's data (RFC 5256 §4), numbered by UID or sequence number.
    func thread(_ algorithm: String, _ key: IMAPSearchKey, byUID: Bool) throws -> String {
        guard let alg = IMAPThreadAlgorithm(name: algorithm) else { throw SessionError(text: "Unknown threading algorithm") }
        var inputs = try sortInputs(key)
        if !byUID {
            for i in inputs.indices { inputs[i].input.id = inputs[i].seq }
        }
        return IMAPSortThread.threads(inputs.map(\.input), algorithm: alg).render()
    }
}
