import MIME

extension IMAPSession {
    // MARK: SORT and THREAD (RFC 5256)

    /// The matching messages' sort inputs, numbered by UID.
    func sortInputs(_ key: IMAPSearchKey) throws -> [(seq: UInt32, input: IMAPSortInput)] {
        let s = selected!
        var out: [(UInt32, IMAPSortInput)] = []
        for (seq, uid) in try search(key) {
            guard let m = s.current[uid] else { continue }
            do {
                let bytes = try backend.messageBytes(user: user!, m)
                out.append((seq, IMAPSortInput(id: uid, arrival: m.internalDate, size: m.size, header: RFC5322Header.parse(bytes))))
            } catch IMAPBackendError.nonexistent {
                continue // expunged by another session meanwhile
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
