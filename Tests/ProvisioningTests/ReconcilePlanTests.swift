import Foundation
import Testing
@testable import Provisioning

@Suite struct ReconcilePlanTests {
    let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    func spec(_ id: String, _ d: CellDesiredState = .running, config: String = "{}") -> CellSpec {
        CellSpec(id: id, desired: d, configuration: config, listeners: [])
    }

    func seen(_ id: String, _ p: CellPhase) -> CellObservation { CellObservation(id: id, phase: p, since: t0) }

    @Test func newCellsAreApplied() {
        let a = ReconcilePlan.decide(desired: [spec("a"), spec("b")], observed: [], lastApplied: [:], orphans: [:])
        #expect(a == [.apply(spec("a")), .apply(spec("b"))])
    }

    @Test func unchangedSpecOfAKnownCellIsLeftAlone() {
        let a = ReconcilePlan.decide(desired: [spec("a")], observed: [seen("a", .running)],
                                     lastApplied: ["a": spec("a")], orphans: [:])
        #expect(a.isEmpty)
        // Back-off and starting are the backend's business, not a contradiction.
        for p in [CellPhase.backoff, .starting, .failed] {
            #expect(ReconcilePlan.decide(desired: [spec("a")], observed: [seen("a", p)], lastApplied: ["a": spec("a")], orphans: [:]).isEmpty)
        }
    }

    @Test func changedSpecIsApplied() {
        let new = spec("a", config: "{\"hostname\":\"x\"}")
        let a = ReconcilePlan.decide(desired: [new], observed: [seen("a", .running)], lastApplied: ["a": spec("a")], orphans: [:])
        #expect(a == [.apply(new)])
    }

    @Test func aBackendThatForgotTheCellGetsItAgain() {
        let a = ReconcilePlan.decide(desired: [spec("a")], observed: [], lastApplied: ["a": spec("a")], orphans: [:])
        #expect(a == [.apply(spec("a"))])
    }

    @Test func phaseContradictingTheSpecIsReapplied() {
        #expect(ReconcilePlan.decide(desired: [spec("a")], observed: [seen("a", .stopped)],
                                     lastApplied: ["a": spec("a")], orphans: [:]) == [.apply(spec("a"))])
        let stopped = spec("a", .stopped)
        #expect(ReconcilePlan.decide(desired: [stopped], observed: [seen("a", .running)],
                                     lastApplied: ["a": stopped], orphans: [:]) == [.apply(stopped)])
        #expect(ReconcilePlan.decide(desired: [stopped], observed: [seen("a", .stopped)],
                                     lastApplied: ["a": stopped], orphans: [:]).isEmpty)
    }

    @Test func orphansAreKeptUnlessToldOtherwise() {
        let observed = [seen("a", .running), seen("old", .running), seen("gone", .stopped)]
        #expect(ReconcilePlan.orphans(desired: [spec("a")], observed: observed) == ["gone", "old"])
        #expect(ReconcilePlan.decide(desired: [spec("a")], observed: observed, lastApplied: ["a": spec("a")], orphans: [:]).isEmpty)
        let a = ReconcilePlan.decide(desired: [spec("a")], observed: observed, lastApplied: ["a": spec("a")],
                                     orphans: ["old": .remove(deleteData: false), "gone": .keep])
        #expect(a == [.remove(id: "old", deleteData: false)])
    }

    @Test func duplicateIdsFirstWins() {
        let first = spec("a", config: "1"), second = spec("a", config: "2")
        #expect(ReconcilePlan.decide(desired: [first, second], observed: [], lastApplied: [:], orphans: [:]) == [.apply(first)])
    }
}

/// A provisioner that records calls, for the reconciler's driver.
actor RecordingProvisioner: Provisioner {
    nonisolated let backendName = "recording"
    var applied: [CellSpec] = []
    var removed: [(String, Bool)] = []
    var cells: [String: CellObservation] = [:]
    var failing: Set<String> = []

    func fail(_ id: String) { failing.insert(id) }
    func unfail() { failing.removeAll() }

    func apply(_ spec: CellSpec) async throws {
        if failing.contains(spec.id) { throw ProvisioningError("no") }
        applied.append(spec)
        cells[spec.id] = CellObservation(id: spec.id, phase: spec.desired == .running ? .running : .stopped, since: Date())
    }
    func remove(id: String, deleteData: Bool) async throws { removed.append((id, deleteData)); cells[id] = nil }
    func observe() async -> [CellObservation] { cells.values.sorted { $0.id < $1.id } }
    nonisolated func admin(_ id: String) -> EngineAdminClient { EngineAdminClient(socketPath: "/nonexistent") }
    nonisolated func dataDirectory(_ id: String) -> String { "/nonexistent/" + id }
    func shutdown(stopCells: Bool) async {}
}

actor Box<T: Sendable> {
    var value: T
    init(_ v: T) { value = v }
    func set(_ v: T) { value = v }
}

@Suite struct ReconcilerDriverTests {
    @Test func roundsApplyOnceReportAndRemoveOnlyWhenTold() async throws {
        let p = RecordingProvisioner()
        let wanted = Box<[CellSpec]>([CellSpec(id: "a", desired: .running, configuration: "{}", listeners: []),
                                      CellSpec(id: "b", desired: .running, configuration: "{}", listeners: [])])
        let reports = Box<[[CellObservation]]>([])
        let removeB = Box(false)
        let r = Reconciler(provisioner: p, interval: 60, desired: { await wanted.value },
                           orphans: { id in await removeB.value && id == "b" ? .remove(deleteData: false) : .keep },
                           report: { obs in await reports.set(await reports.value + [obs]) })
        await p.fail("b")
        var round = await r.runOnce()
        #expect(round.failures.keys.sorted() == ["b"])
        #expect(await p.applied.map(\.id) == ["a"])
        await p.unfail()
        round = await r.runOnce()
        #expect(round.actions.count == 1)  // only b: a is unchanged
        #expect(await p.applied.map(\.id) == ["a", "b"])
        #expect(await reports.value.count == 2)

        await wanted.set([CellSpec(id: "a", desired: .running, configuration: "{}", listeners: [])])
        round = await r.runOnce()
        #expect(round.actions.isEmpty)  // b is not desired but kept
        await removeB.set(true)
        round = await r.runOnce()
        #expect(await p.removed.map(\.0) == ["b"])
        #expect(await p.removed.map(\.1) == [false])
    }

    @Test func kickRunsARoundBeforeTheInterval() async throws {
        let p = RecordingProvisioner()
        let count = Box(0)
        let r = Reconciler(provisioner: p, interval: 3600, desired: { await count.set(await count.value + 1); return [] })
        await r.start()
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(await count.value == 1)
        await r.kick()
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(await count.value == 2)
        await r.stop()
    }
}
