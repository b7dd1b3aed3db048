import Foundation

/// A client for a cell engine's admin API (docs/ADMIN-API.md) over the unix
/// socket in the cell's data directory.
public struct EngineAdminClient: Sendable {
    public var socketPath: String
    public init(socketPath: String) { self.socketPath = socketPath }
}
