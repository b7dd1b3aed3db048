import Foundation
import NIOConcurrencyHelpers

/// Bounds the scrypt work in flight (16 MiB and tens of milliseconds each):
/// at most `width` hashes at once, at most `queue` waiting; beyond that the
/// caller gets "busy" (503) instead of the process running out of memory or
/// starving everything else.
final class KDFGate: Sendable {
    private struct State { var running = 0; var waiters: [CheckedContinuation<Void, Never>] = [] }
    private let state = NIOLockedValueBox(State())
    let width: Int
    let queue: Int

    init(width: Int = max(1, ProcessInfo.processInfo.activeProcessorCount), queue: Int = 64) {
        self.width = width; self.queue = queue
    }

    private enum Entry { case now, wait, full }

    func run<T: Sendable>(_ work: @Sendable () throws -> T) async throws -> T {
        let entry: Entry = state.withLockedValue { s in
            if s.running < width { s.running += 1; return .now }
            return s.waiters.count < queue ? .wait : .full
        }
        switch entry {
        case .full: throw ServiceError(.unavailable, "The service is busy; please try again in a moment.")
        case .wait:
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { s -> Bool in
                    if s.running < width { s.running += 1; return true }
                    s.waiters.append(c); return false
                }
                if resumeNow { c.resume() }
            }
        case .now: break
        }
        defer {
            let next = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
                if s.waiters.isEmpty { s.running -= 1; return nil }
                return s.waiters.removeFirst()   // the slot passes to the next waiter
            }
            next?.resume()
        }
        return try work()
    }
}
