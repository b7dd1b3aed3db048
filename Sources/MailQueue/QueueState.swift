import Foundation
import MailCore

/// Where delivery of one queued message stands, per recipient: written to
/// `queue/state/ID.json` after every attempt, durably, so that a restart
/// neither loses a recipient nor sends again to one already done (beyond
/// SMTP's own window between the server's 250 and this write).
public struct QueueEntryState: Codable, Hashable, Sendable {
    public enum Status: String, Codable, Hashable, Sendable {
        case pending, delivered, failed
    }

    public struct Recipient: Codable, Hashable, Sendable {
        public var address: String
        public var status: Status
        /// The last reply or reason, one line (`550 5.1.1 User unknown`).
        public var lastReply: String?
        /// The enhanced status code of `lastReply` (RFC 3463).
        public var statusCode: String?
        /// The server that gave `lastReply` (`mx.example.net[192.0.2.1]`).
        public var remote: String?

        public init(address: String) {
            self.address = address
            status = .pending
        }
    }

    public var id: String
    public var recipients: [Recipient]
    /// Attempts made so far.
    public var attempts: Int
    /// Unix time of the next attempt.
    public var nextAttempt: Int64
    public var lastAttempt: Int64?
    /// A delay warning (RFC 3464 "delayed") has been sent.
    public var delayWarned: Bool
    /// The failure report has been queued (so a restart does not send it twice).
    public var reported: Bool

    public init(id: String, recipients: [String], nextAttempt: Int64) {
        self.id = id
        self.recipients = recipients.map(Recipient.init)
        attempts = 0
        self.nextAttempt = nextAttempt
        delayWarned = false
        reported = false
    }

    public var pending: [String] { recipients.filter { $0.status == .pending }.map(\.address) }
    public var isDone: Bool { !recipients.contains { $0.status == .pending } }

    public mutating func update(_ address: String, _ status: Status, reply: String?, code: String?, remote: String?) {
        guard let i = recipients.firstIndex(where: { $0.address == address && $0.status == .pending }) else { return }
        recipients[i].status = status
        recipients[i].lastReply = reply
        recipients[i].statusCode = code
        recipients[i].remote = remote
    }
}

/// The state files beside the spool (docs/DATA-DIR.md).
public struct QueueStateFiles: Sendable {
    public let directory: String

    public init(spool: OutboundSpool) throws {
        directory = spool.directory + "/state"
        try DurableFile.makeDirectory(directory)
    }

    func path(_ id: String) -> String { directory + "/\(id).json" }

    public func read(_ id: String) -> QueueEntryState? {
        guard let bytes = try? DurableFile.readAll(path(id)) else { return nil }
        return try? JSONDecoder().decode(QueueEntryState.self, from: Data(bytes))
    }

    public func write(_ state: QueueEntryState, tmpDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try DurableFile.write(Array(try encoder.encode(state)), to: path(state.id), tmpDirectory: tmpDirectory)
    }

    public func remove(_ id: String) { DurableFile.remove(path(id)) }

    public func all() -> [String] {
        DurableFile.list(directory).filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
    }
}

/// When to try again: the delay doubles from `base` up to `maximum`, with
/// up to a tenth added at random so that many messages deferred together
/// do not return together; after `lifetime` since arrival, give up.
public struct RetryPolicy: Sendable, Hashable {
    public var base: Int64
    public var maximum: Int64
    public var lifetime: Int64
    /// A "delayed" DSN after this long (0: never).
    public var warnAfter: Int64

    /// 5 minutes doubling to 4 hours, 5 days in all, a warning after 4 hours.
    public init(base: Int64 = 300, maximum: Int64 = 14_400, lifetime: Int64 = 432_000, warnAfter: Int64 = 14_400) {
        self.base = base
        self.maximum = maximum
        self.lifetime = lifetime
        self.warnAfter = warnAfter
    }

    /// The delay after the `attempts`-th attempt failed (1 = the first).
    public func delay<R: RandomNumberGenerator>(after attempts: Int, using rng: inout R) -> Int64 {
        let shift = min(max(attempts - 1, 0), 30)
        let d = min(base << Int64(shift), maximum)
        return d + (d >= 10 ? Int64.random(in: 0...(d / 10), using: &rng) : 0)
    }
}
