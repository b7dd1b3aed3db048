import Foundation

/// One request of the admin API (docs/ADMIN-API.md) as the router sees it:
/// no sockets, no HTTP framing.
public struct AdminRequest: Sendable, Hashable {
    public var method: String
    /// The request target: path and query, percent-encoded as sent.
    public var target: String
    public var body: [UInt8]

    public init(method: String, target: String, body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.body = body
    }
}

/// The reply: a status and a JSON body (empty for 204).
public struct AdminResponse: Sendable, Hashable {
    public var status: Int
    public var body: [UInt8]
    /// The methods a resource allows, for 405's `Allow` field (RFC 9110 §15.5.6).
    public var allow: [String] = []

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }

    /// A JSON value made of dictionaries, arrays, strings, numbers, bools
    /// and NSNull, with sorted keys.
    static func json(_ status: Int, _ value: Any) -> AdminResponse {
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return AdminResponse(status: status, body: Array(data))
    }

    static func error(_ status: Int, _ text: String) -> AdminResponse {
        json(status, ["error": text])
    }

    static let noContent = AdminResponse(status: 204, body: [])
}

/// A failure the backend reports with its status: 400 for a configuration
/// the cell refuses (nothing changed), 500 for one it could not write or
/// apply. `text` goes to the client: it names settings, never secrets.
public struct AdminError: Error, Hashable, Sendable, CustomStringConvertible {
    public var status: Int
    public var text: String

    public init(_ status: Int, _ text: String) {
        self.status = status
        self.text = text
    }

    public var description: String { "\(status) \(text)" }
}

/// What the router needs of a running cell. `EngineAdmin` is the engine's;
/// tests give a fake. Calls come one at a time (the server serialises them),
/// off the event loop: they may block.
public protocol AdminBackend: AnyObject, Sendable {
    /// The configuration the cell runs on now.
    func currentConfiguration() -> CellConfiguration
    /// Checks `config` exactly as at start-up, writes the configuration file
    /// durably, then applies it as a reload does. Throws `AdminError` (400:
    /// refused, nothing changed; 500: not written or not applied).
    func apply(_ config: CellConfiguration) throws
    /// The engine's version, seconds since start and messages in the outbound queue.
    func status() throws -> AdminStatus
    /// Stored bytes and messages per user (lower-cased address).
    func usage() throws -> [String: AdminUsage]
    /// Removes a user's stored mail (the user is no longer configured).
    func purge(user: String) throws
    /// Writes the export archive under DATA/exports/; returns its path
    /// relative to the data directory and its size.
    func export() throws -> (path: String, bytes: Int64)
}

public struct AdminStatus: Sendable, Hashable {
    public var version: String
    public var uptimeSeconds: Int64
    public var queuedMessages: Int

    public init(version: String, uptimeSeconds: Int64, queuedMessages: Int) {
        self.version = version
        self.uptimeSeconds = uptimeSeconds
        self.queuedMessages = queuedMessages
    }
}

public struct AdminUsage: Sendable, Hashable {
    public var bytes: Int64
    public var messages: Int64

    public init(bytes: Int64, messages: Int64) {
        self.bytes = bytes
        self.messages = messages
    }
}
