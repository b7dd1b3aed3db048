@testable import CellEngine
import Foundation
import MailQueue
import MailStore
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Where sessions' store work runs (`DeliveryScheduler.run`): quick work on
/// the event loop only while the store thread has nothing to do, everything
/// else on the store thread, one at a time.
struct StoreThreadTests {
    func withScheduler(_ body: (DeliveryScheduler, EventLoop) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("store-thread-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer {
            try? group.syncShutdownGracefully()
            try? pool.syncShutdownGracefully()
        }
        let scheduler = DeliveryScheduler(store: try MailStore(directory: dir + "/store"), spool: try OutboundSpool(directory: dir + "/queue"),
                                          pool: pool)
        try body(scheduler, group.next())
    }

    /// Runs `quick` work from the event loop and reports whether it ran there.
    func ranOnLoop(_ s: DeliveryScheduler, _ loop: EventLoop, quick: Bool) throws -> Bool {
        try loop.flatSubmit { s.run(on: loop, quick: quick) { loop.inEventLoop } }.wait()
    }

    @Test func quickWorkRunsOnTheLoopOnlyWhileTheStoreThreadIsIdle() throws {
        try withScheduler { s, loop in
            #expect(try ranOnLoop(s, loop, quick: true))
            #expect(try !ranOnLoop(s, loop, quick: false))
            // A job holds the store thread: quick work waits for it there.
            let release = DispatchSemaphore(value: 0)
            let held = loop.flatSubmit { s.run(on: loop, quick: false) { release.wait() } }
            while s.queued.load(ordering: .relaxed) == 0 { usleep(1000) }
            let quick = loop.flatSubmit { s.run(on: loop, quick: true) { loop.inEventLoop } }
            usleep(50_000)
            release.signal()
            try held.wait()
            #expect(try !quick.wait())
            // Idle again: back on the loop.
            while s.queued.load(ordering: .relaxed) != 0 { usleep(1000) }
            #expect(try ranOnLoop(s, loop, quick: true))
        }
    }

    @Test func aLongRunOfQuickWorkLetsTheLoopBreathe() throws {
        try withScheduler { s, loop in
            let onLoop = Atomic<Int>(0)
            // Chained like pipelined commands: each starts when the last ends.
            func chain(_ n: Int) -> EventLoopFuture<Void> {
                guard n > 0 else { return loop.makeSucceededVoidFuture() }
                return s.run(on: loop, quick: true) { if loop.inEventLoop { onLoop.add(1, ordering: .relaxed) } }
                    .hop(to: loop).flatMap { chain(n - 1) }
            }
            try loop.flatSubmit { chain(100) }.wait()
            let n = onLoop.load(ordering: .relaxed)
            #expect(n < 100 && n >= 100 - 100 / (DeliveryScheduler.quickStreak + 1) - 1, "\(n) of 100 on the loop")
        }
    }

    @Test func storeWorkNeverOverlaps() throws {
        try withScheduler { s, loop in
            let inside = Atomic<Int>(0), overlaps = Atomic<Int>(0)
            let futures = (0..<400).map { i in
                loop.flatSubmit {
                    s.run(on: loop, quick: i % 3 != 0) {
                        if inside.add(1, ordering: .relaxed).newValue > 1 { overlaps.add(1, ordering: .relaxed) }
                        usleep(50)
                        inside.subtract(1, ordering: .relaxed)
                    }
                }
            }
            for f in futures { try f.wait() }
            #expect(overlaps.load(ordering: .relaxed) == 0)
        }
    }
}
