import Foundation
import Testing
@testable import Provisioning

@Suite struct RestartBackoffTests {
    @Test func doublesFromOneSecondUpToAMinute() {
        let b = RestartBackoff()
        #expect((1...9).map { b.delay(afterFailures: $0) } == [1, 2, 4, 8, 16, 32, 60, 60, 60])
        #expect(b.delay(afterFailures: 0) == 0)
        #expect(b.delay(afterFailures: 10_000) == 60)
    }
}

/// Event/action transcripts of one cell's supervision.
@Suite struct CellSupervisionTests {
    let t0 = Date(timeIntervalSince1970: 1_700_000_000)
    func at(_ s: TimeInterval) -> Date { t0.addingTimeInterval(s) }

    @Test func startsThenRunsOnceHealthy() {
        var s = CellSupervision(id: "c", desired: .running, backoff: .init(), now: t0)
        #expect(s.tick(now: t0) == .start)
        s.started(pid: 10, at: t0, now: t0)
        #expect(s.phase == .starting)
        #expect(s.tick(now: at(0.5)) == CellSupervision.Action.none)
        s.health(false, pid: 10, now: at(1))
        #expect(s.phase == .starting)
        s.health(true, pid: 99, now: at(1))  // a stale answer for another run
        #expect(s.phase == .starting)
        s.health(true, pid: 10, now: at(2))
        #expect(s.phase == .running && s.healthy)
        s.health(false, pid: 10, now: at(3))
        #expect(s.phase == .running && !s.healthy)
    }

    @Test func crashesBackOffAndDoubling() {
        var s = CellSupervision(id: "c", desired: .running, backoff: .init(), now: t0)
        _ = s.tick(now: t0)
        s.started(pid: 10, at: t0, now: t0)
        s.exited("signal 9", now: at(5))
        #expect(s.phase == .backoff && s.restarts == 1 && s.lastExit == "signal 9")
        #expect(s.nextStart == at(6))
        #expect(s.tick(now: at(5.9)) == CellSupervision.Action.none)
        #expect(s.tick(now: at(6)) == .start)
        s.started(pid: 11, at: at(6), now: at(6))
        s.exited("exit 2", now: at(7))
        #expect(s.nextStart == at(9))
        _ = s.tick(now: at(9))
        s.started(pid: 12, at: at(9), now: at(9))
        s.exited("exit 2", now: at(9.5))
        #expect(s.nextStart == at(13.5))
        #expect(s.observation().nextStart == at(13.5))
    }

    @Test func aLongRunResetsTheBackoff() {
        var s = CellSupervision(id: "c", desired: .running, backoff: .init(), now: t0)
        _ = s.tick(now: t0)
        s.started(pid: 10, at: t0, now: t0)
        s.exited("exit 1", now: at(1))
        _ = s.tick(now: at(2))
        s.started(pid: 11, at: at(2), now: at(2))
        s.exited("exit 1", now: at(3))  // two failures in a row: 2 s
        #expect(s.nextStart == at(5))
        _ = s.tick(now: at(5))
        s.started(pid: 12, at: at(5), now: at(5))
        _ = s.tick(now: at(66))          // ran 61 s: healthy long enough
        #expect(s.failures == 0)
        s.exited("exit 1", now: at(100))
        #expect(s.nextStart == at(101))
        #expect(s.restarts == 3)
    }

    @Test func stopIsTermThenKillAfterGrace() {
        var s = CellSupervision(id: "c", desired: .running, backoff: .init(), stopGrace: 10, now: t0)
        _ = s.tick(now: t0)
        s.started(pid: 10, at: t0, now: t0)
        s.setDesired(.stopped, now: at(1))
        #expect(s.tick(now: at(1)) == .terminate(pid: 10))
        #expect(s.tick(now: at(2)) == CellSupervision.Action.none)
        #expect(s.tick(now: at(11)) == .kill(pid: 10))
        s.exited("signal 9", now: at(11.1))
        #expect(s.phase == .stopped && s.restarts == 0 && s.pid == nil)
        #expect(s.tick(now: at(20)) == CellSupervision.Action.none)
        s.setDesired(.running, now: at(21))
        #expect(s.tick(now: at(21)) == .start)
    }

    @Test func startFailuresBackOffToo() {
        var s = CellSupervision(id: "c", desired: .running, backoff: .init(), now: t0)
        _ = s.tick(now: t0)
        s.startFailed("engine binary missing", now: t0)
        #expect(s.phase == .failed && s.nextStart == at(1))
        #expect(s.observation().detail == "engine binary missing")
        #expect(s.tick(now: at(0.5)) == CellSupervision.Action.none)
        #expect(s.tick(now: at(1)) == .start)
    }

    @Test func adoptedRunsAreSupervisedLikeOwnOnes() {
        var s = CellSupervision(id: "c", desired: .running, backoff: .init(), now: t0)
        s.started(pid: 42, at: at(-100), adopted: true, now: t0)
        #expect(s.adopted && s.phase == .starting)
        #expect(s.tick(now: t0) == CellSupervision.Action.none)
    }
}
