import Foundation
import NIOConcurrencyHelpers

/// A FIFO lock for async code: SQLite has one writer connection, and a
/// transaction holds it across suspension points.
final class AsyncLock: Sendable {
    private struct State { var locked = false; var waiters: [CheckedContinuation<Void, Never>] = [] }
    private let state = NIOLockedValueBox(State())

    func lock() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLockedValue { s -> Bool in
                if !s.locked { s.locked = true; return true }
                s.waiters.append(c); return false
            }
            if resumeNow { c.resume() }
        }
    }

    func unlock() {
        let next = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty { s.locked = false; return nil }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }

    func withLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await lock()
        defer { unlock() }
        return try await body()
    }
}
