import Foundation
import Testing
@testable import PanelSecurity

@Suite struct LoginThrottleTests {
    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)
    static func at(_ seconds: TimeInterval) -> Date { t0.addingTimeInterval(seconds) }

    @Test func accountLocksAfterFiveFailuresInFifteenMinutes() {
        var throttle = LoginThrottle()
        for i in 0..<4 {
            throttle.recordFailure(account: "alice", address: "192.0.2.1", now: Self.at(Double(i) * 60))
            #expect(throttle.check(account: "alice", address: "192.0.2.1", now: Self.at(Double(i) * 60 + 1)) == .allow)
        }
        throttle.recordFailure(account: "alice", address: "192.0.2.1", now: Self.at(240))
        // The first failure (t=0) leaves the window at t=900.
        #expect(throttle.check(account: "alice", address: "192.0.2.1", now: Self.at(241)) == .refuse(retryAfter: 659))
        // From another address too: the account is what is locked.
        #expect(throttle.check(account: "alice", address: "198.51.100.9", now: Self.at(300)) == .refuse(retryAfter: 600))
        // Other accounts from the first address are still fine (1 address failure... 5 < 20).
        #expect(throttle.check(account: "bob", address: "192.0.2.1", now: Self.at(300)) == .allow)
        // Sliding: at t=900 the first failure has left; four remain.
        #expect(throttle.check(account: "alice", address: "192.0.2.1", now: Self.at(899.5)) == .refuse(retryAfter: 1))
        #expect(throttle.check(account: "alice", address: "192.0.2.1", now: Self.at(900)) == .allow)
        // One more failure locks again until the t=60 failure leaves (t=960).
        throttle.recordFailure(account: "alice", address: "192.0.2.1", now: Self.at(901))
        #expect(throttle.check(account: "alice", address: "192.0.2.1", now: Self.at(902)) == .refuse(retryAfter: 58))
    }

    @Test func addressLocksAfterTwentyFailuresAcrossAccounts() {
        var throttle = LoginThrottle()
        for i in 0..<20 {
            // Different accounts each time: no account reaches its limit.
            throttle.recordFailure(account: "user\(i)", address: "203.0.113.5", now: Self.at(Double(i)))
        }
        #expect(throttle.check(account: "someone", address: "203.0.113.5", now: Self.at(20)) == .refuse(retryAfter: 880))
        #expect(throttle.check(account: "someone", address: "203.0.113.6", now: Self.at(20)) == .allow)
        #expect(throttle.check(account: "user3", address: "203.0.113.6", now: Self.at(20)) == .allow)
    }

    @Test func successClearsTheAccountButNotTheAddress() {
        var throttle = LoginThrottle(accountLimit: .init(maxFailures: 3, window: 600), addressLimit: .init(maxFailures: 4, window: 600))
        for i in 0..<3 { throttle.recordFailure(account: "alice", address: "192.0.2.1", now: Self.at(Double(i))) }
        #expect(throttle.check(account: "alice", address: "192.0.2.2", now: Self.at(3)) == .refuse(retryAfter: 597))
        throttle.recordSuccess(account: "alice", address: "192.0.2.1", now: Self.at(4))
        #expect(throttle.check(account: "alice", address: "192.0.2.2", now: Self.at(5)) == .allow)
        // The address kept its three failures; a fourth (any account) locks it.
        throttle.recordFailure(account: "bob", address: "192.0.2.1", now: Self.at(6))
        #expect(throttle.check(account: "carol", address: "192.0.2.1", now: Self.at(7)) == .refuse(retryAfter: 593))
    }

    @Test func theLongerWaitWins() {
        var throttle = LoginThrottle(accountLimit: .init(maxFailures: 2, window: 100), addressLimit: .init(maxFailures: 2, window: 1000))
        throttle.recordFailure(account: "alice", address: "192.0.2.1", now: Self.at(0))
        throttle.recordFailure(account: "alice", address: "192.0.2.1", now: Self.at(10))
        #expect(throttle.check(account: "alice", address: "192.0.2.1", now: Self.at(10)) == .refuse(retryAfter: 990))
        #expect(throttle.check(account: "alice", address: "192.0.2.9", now: Self.at(10)) == .refuse(retryAfter: 90))
    }

    @Test func memoryIsBounded() {
        var throttle = LoginThrottle(accountLimit: .init(maxFailures: 5, window: 900), addressLimit: .init(maxFailures: 20, window: 900), capacity: 100)
        for i in 0..<1000 {
            throttle.recordFailure(account: "user\(i)", address: "10.0.\(i / 256).\(i % 256)", now: Self.at(Double(i)))
            #expect(throttle.count <= 100)
        }
        // The newest keys survive; the oldest were dropped.
        throttle.recordFailure(account: "user999", address: "10.0.3.231", now: Self.at(1000))
        #expect(throttle.failures[.account("user999")]?.count == 2)
        #expect(throttle.failures[.account("user0")] == nil)
        // Failures per key are capped at the limit.
        for i in 0..<50 { throttle.recordFailure(account: "x", address: "10.9.9.9", now: Self.at(2000 + Double(i))) }
        #expect(throttle.failures[.account("x")]?.count == 5)
        #expect(throttle.failures[.address("10.9.9.9")]?.count == 20)
    }

    @Test func expiredKeysAreDroppedBeforeLiveOnes() {
        var throttle = LoginThrottle(accountLimit: .init(maxFailures: 5, window: 60), addressLimit: .init(maxFailures: 5, window: 60), capacity: 4)
        throttle.recordFailure(account: "old", address: "192.0.2.1", now: Self.at(0))
        throttle.recordFailure(account: "live", address: "192.0.2.2", now: Self.at(100))
        // Full (4 keys); the next new key evicts the two expired ones only.
        throttle.recordFailure(account: "new", address: "192.0.2.2", now: Self.at(110))
        #expect(throttle.count == 3)
        #expect(throttle.failures[.account("live")] != nil)
        #expect(throttle.failures[.account("old")] == nil)
    }
}
