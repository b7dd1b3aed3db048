import Dispatch
import Foundation
import Synchronization
import MailCore
import MailStore
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The engine's side of the admin API: the running configuration, changes
/// applied through `Engine.applyChange` (check, durable write, reload),
/// usage and purges from the store, exports. Its calls come on the
/// engine's control queue, one at a time.
final class EngineAdmin: AdminBackend, @unchecked Sendable {
    weak var engine: Engine?

    init(engine: Engine) {
        self.engine = engine
    }

    func running() throws -> Engine {
        guard let engine, let _ = engine.state else { throw AdminError(500, "the engine is stopping") }
        return engine
    }

    func currentConfiguration() -> CellConfiguration {
        engine!.state.snapshot.config
    }

    func apply(_ config: CellConfiguration) throws {
        try running().applyChange(config)
    }

    func status() throws -> AdminStatus {
        let e = try running()
        let queued = (try? e.outbound?.count().wait()) ?? 0
        return AdminStatus(version: Engine.version, uptimeSeconds: Int64(time(nil)) - e.started, queuedMessages: queued)
    }

    func usage() throws -> [String: AdminUsage] {
        let store = try running().state.store
        do {
            return try store.usageByUser().mapValues { AdminUsage(bytes: $0.bytes, messages: $0.messages) }
        } catch {
            throw AdminError(500, "could not read usage from the store")
        }
    }

    /// On the store thread, the store's one writer, between delivery batches.
    func purge(user: String) throws {
        let state = try running().state!
        do {
            _ = try state.scheduler.onStoreThread(state.eventLoop) { try state.store.deleteUser(user) }.wait()
        } catch {
            throw AdminError(500, "could not remove the stored mail")
        }
    }

    func export() throws -> (path: String, bytes: Int64) {
        let e = try running()
        let snapshot = e.state.snapshot
        let exporter = MaildirExport(store: e.state.store, users: (snapshot.config.users ?? []).map { MailAddress.parse($0.address)?.lookupKey ?? $0.address.lowercased() },
                                     hostname: snapshot.config.hostname)
        do {
            return try exporter.write(into: e.dataDirectory, now: Int64(time(nil)))
        } catch {
            e.logger.error("admin: export failed: \(error)")
            throw AdminError(500, "export failed")
        }
    }
}

/// A listener's settings as new connections see them, swapped by a reload
/// (an inherited socket keeps its channel when they change).
final class ListenerDefinition: Sendable {
    let value: Mutex<CellConfiguration.Listener>

    init(_ l: CellConfiguration.Listener) { value = .init(l) }
    func get() -> CellConfiguration.Listener { value.withLock { $0 } }
    func set(_ l: CellConfiguration.Listener) { value.withLock { $0 = l } }
}

extension Engine {
    /// The engine's version, as the admin API's health check reports it.
    public static let version = "0.1.0-dev"

    /// An inherited listener must be a listening stream socket: refused at
    /// start (or reload) with a clear reason otherwise.
    static func checkInheritedSocket(_ fd: Int32, listener: String) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CellConfiguration.Invalid("listener \(listener): fd \(fd) is not open") }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw CellConfiguration.Invalid("listener \(listener): fd \(fd) is not a socket") }
        var value: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &size) == 0, value == 1 else {
            throw CellConfiguration.Invalid("listener \(listener): fd \(fd) is not a listening socket")
        }
    }

    /// Starts, moves or stops the admin API's socket as the configuration says.
    func bindAdmin(_ wanted: CellConfiguration.Admin?) throws {
        let path = wanted.map { $0.path.hasPrefix("/") ? $0.path : dataDirectory + "/" + $0.path }
        guard admin?.path != path else { return }
        admin?.close()
        admin = nil
        guard let path else { return }
        admin = try AdminServer.bind(path: path, group: group, router: AdminRouter(backend: EngineAdmin(engine: self)),
                                     queue: controlQueue, logger: logger)
        logger.info("admin API listening", metadata: ["path": "\(path)"])
    }
}
