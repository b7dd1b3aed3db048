import Foundation
import MailCore
import MailQueue
import MailStore

/// Offline views of a cell's data directory for the CLI: safe while the
/// engine runs (SQLite WAL readers do not block the writer).
public struct CellInspector {
    public let config: CellConfiguration
    public let dataDirectory: String

    public init(configPath: String) throws {
        config = try CellConfiguration.load(path: configPath)
        dataDirectory = Engine.dataDirectory(for: config, configPath: configPath)
    }

    public func openStore() throws -> MailStore { try MailStore(directory: dataDirectory + "/store") }
    public func openSpool() throws -> OutboundSpool { try OutboundSpool(directory: dataDirectory + "/queue") }
}
