import Foundation

/// Counts failed logins per account and per client address in a sliding
/// window and says when to refuse further attempts, and for how long.
///
/// A pure value: the caller passes the time to every call and keeps the
/// throttle behind its own lock. The driver's loop is:
///
///     switch throttle.check(account: name, address: ip, now: clock.now) {
///     case .refuse(let retryAfter): reply 429 with Retry-After: retryAfter
///     case .allow: verify the password, then
///         throttle.recordFailure(...) or throttle.recordSuccess(...)
///     }
///
/// A success clears the account's failures but not the address's, so one
/// known password cannot reset an address that is guessing at others.
/// Memory is bounded: at most `limit.maxFailures` times per key and at most
/// `capacity` keys; when full, expired keys go first, then the least recently
/// failed. Callers choose the address key (for IPv6, a /64 prefix is usually
/// the right unit) and normalise account names.
public struct LoginThrottle: Sendable {
    public struct Limit: Hashable, Sendable {
        public var maxFailures: Int
        public var window: TimeInterval
        public init(maxFailures: Int, window: TimeInterval) {
            precondition(maxFailures >= 1 && window > 0)
            self.maxFailures = maxFailures
            self.window = window
        }
    }

    public enum Decision: Hashable, Sendable {
        case allow
        /// Refused; the earliest retry is this many whole seconds away.
        case refuse(retryAfter: Int)
    }

    enum Key: Hashable, Sendable {
        case account(String)
        case address(String)
    }

    public var accountLimit: Limit
    public var addressLimit: Limit
    /// The most keys (accounts plus addresses) remembered at once.
    public var capacity: Int

    /// Failure times per key, oldest first, at most the limit's maxFailures.
    var failures: [Key: [Date]] = [:]

    public init(accountLimit: Limit = Limit(maxFailures: 5, window: 15 * 60),
                addressLimit: Limit = Limit(maxFailures: 20, window: 15 * 60),
                capacity: Int = 10_000) {
        precondition(capacity >= 2)
        self.accountLimit = accountLimit
        self.addressLimit = addressLimit
        self.capacity = capacity
    }

    /// Whether an attempt may go ahead now.
    public func check(account: String, address: String, now: Date) -> Decision {
        let waits = [wait(.account(account), limit: accountLimit, now: now),
                     wait(.address(address), limit: addressLimit, now: now)]
        let longest = waits.compactMap { $0 }.max()
        return longest.map { .refuse(retryAfter: $0) } ?? .allow
    }

    /// Records a failed attempt against both the account and the address.
    public mutating func recordFailure(account: String, address: String, now: Date) {
        record(.account(account), limit: accountLimit, now: now)
        record(.address(address), limit: addressLimit, now: now)
    }

    /// A successful login: forgets the account's failures.
    public mutating func recordSuccess(account: String, address: String, now: Date) {
        failures[.account(account)] = nil
    }

    /// Takes back one failure recorded at `at` (an attempt counted before
    /// its slow check, which then succeeded): from the address, and from
    /// the account when `account` is given.
    public mutating func cancelFailure(account: String?, address: String, at: Date) {
        var keys: [Key] = [.address(address)]
        if let account { keys.append(.account(account)) }
        for key in keys {
            guard var times = failures[key], let i = times.lastIndex(of: at) else { continue }
            times.remove(at: i)
            failures[key] = times.isEmpty ? nil : times
        }
    }

    /// The number of keys held (for metrics and tests).
    public var count: Int { failures.count }

    /// Seconds until the oldest failure within the window leaves it, when the
    /// window holds `maxFailures` failures; nil when attempts may go ahead.
    func wait(_ key: Key, limit: Limit, now: Date) -> Int? {
        guard let times = failures[key] else { return nil }
        let recent = times.filter { now.timeIntervalSince($0) < limit.window }
        guard recent.count >= limit.maxFailures else { return nil }
        let oldestCounted = recent[recent.count - limit.maxFailures]
        let remaining = oldestCounted.addingTimeInterval(limit.window).timeIntervalSince(now)
        return max(1, Int(remaining.rounded(.up)))
    }

    mutating func record(_ key: Key, limit: Limit, now: Date) {
        var times = failures[key, default: []].filter { now.timeIntervalSince($0) < limit.window }
        times.append(now)
        if times.count > limit.maxFailures { times.removeFirst(times.count - limit.maxFailures) }
        if failures[key] == nil && failures.count >= capacity { evict(now: now) }
        failures[key] = times
    }

    /// Makes room for at least one key: drops expired keys, then, if none
    /// were expired, the least recently failed tenth of the table.
    mutating func evict(now: Date) {
        let before = failures.count
        failures = failures.filter { key, times in
            let window = key.isAccount ? accountLimit.window : addressLimit.window
            return times.last.map { now.timeIntervalSince($0) < window } ?? false
        }
        guard failures.count == before else { return }
        let drop = max(1, capacity / 10)
        let oldest = failures.sorted { ($0.value.last ?? .distantPast) < ($1.value.last ?? .distantPast) }.prefix(drop)
        for (key, _) in oldest { failures[key] = nil }
    }
}

extension LoginThrottle.Key {
    var isAccount: Bool { if case .account = self { true } else { false } }
}
