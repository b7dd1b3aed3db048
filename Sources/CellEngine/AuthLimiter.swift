import Synchronization

/// Failed-AUTH limits per client IP and per account: more than `maxFailures`
/// within `window` locks the key out for `lockout`. Times are injected (seconds).
public final class AuthLimiter: Sendable {
    public struct Policy: Sendable, Hashable {
        public var maxPerIP: Int
        public var maxPerAccount: Int
        public var window: Int64
        public var lockout: Int64
    }
    struct Entry {
        var failures: [Int64] = []
        var lockedUntil: Int64 = 0
    }
    struct State {
        var ips: [String: Entry] = [:]
        var accounts: [String: Entry] = [:]
    }
    let state = Mutex(State())
    /// Entries kept at most, per kind; the oldest unlocked ones go first.
    static let capacity = 10_000

    public init() {}

    public func isLocked(ip: String?, account: String, now: Int64) -> Bool {
        state.withLock { s in
            (ip.flatMap { s.ips[$0] }?.lockedUntil ?? 0) > now || (s.accounts[account.lowercased()]?.lockedUntil ?? 0) > now
        }
    }

    public func recordFailure(ip: String?, account: String, now: Int64, policy: Policy) {
        state.withLock { s in
            if let ip { Self.bump(&s.ips, ip, now: now, max: policy.maxPerIP, policy: policy) }
            Self.bump(&s.accounts, account.lowercased(), now: now, max: policy.maxPerAccount, policy: policy)
        }
    }

    public func recordSuccess(ip: String?, account: String) {
        state.withLock { s in
            if let ip { s.ips[ip] = nil }
        }
    }

    static func bump(_ table: inout [String: Entry], _ key: String, now: Int64, max: Int, policy: Policy) {
        var e = table[key] ?? Entry()
        e.failures = e.failures.filter { $0 > now - policy.window }
        e.failures.append(now)
        if max > 0 && e.failures.count >= max {
            e.lockedUntil = now + policy.lockout
            e.failures = []
        }
        table[key] = e
        if table.count > capacity {
            for (k, v) in table where v.lockedUntil <= now && (v.failures.last ?? 0) <= now - policy.window { table[k] = nil }
        }
    }
}
