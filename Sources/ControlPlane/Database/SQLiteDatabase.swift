import Foundation
import GRDB

/// The embedded control database: one SQLite file in WAL mode. Reads run on
/// GRDB's reader connections; every write and every transaction goes through
/// the one writer, in turn.
public final class SQLiteDatabase: SQLDatabase {
    public let dialect = SQLDialect.sqlite
    let pool: DatabasePool
    let writer = AsyncLock()

    public init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(5)
        // A transaction spans several writer accesses (async bodies); the
        // writer lock keeps anything else off the connection meanwhile.
        config.allowsUnsafeTransactions = true
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        do { pool = try DatabasePool(path: path, configuration: config) } catch { throw SQLiteDatabase.wrap(error) }
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        if SQLiteDatabase.isRead(sql) {
            do { return try await pool.read { db in try SQLiteDatabase.fetch(db, sql, binds) } } catch { throw SQLiteDatabase.wrap(error) }
        }
        return try await writer.withLock { try await self.writerQuery(sql, binds) }
    }

    public func execute(_ sql: String, _ binds: [SQLValue]) async throws {
        _ = try await writer.withLock { try await self.writerQuery(sql, binds) }
    }

    func writerQuery(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        do { return try await pool.writeWithoutTransaction { db in try SQLiteDatabase.fetch(db, sql, binds) } } catch { throw SQLiteDatabase.wrap(error) }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        try await writer.withLock {
            _ = try await self.writerQuery("BEGIN IMMEDIATE", [])
            do {
                let result = try await body(Transaction(db: self))
                _ = try await self.writerQuery("COMMIT", [])
                return result
            } catch {
                _ = try? await self.writerQuery("ROLLBACK", [])
                throw error
            }
        }
    }

    public func close() async { try? pool.close() }

    /// The writer while a transaction holds it.
    struct Transaction: SQLExecutor {
        let db: SQLiteDatabase
        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] { try await db.writerQuery(sql, binds) }
        func execute(_ sql: String, _ binds: [SQLValue]) async throws { _ = try await db.writerQuery(sql, binds) }
    }

    static func isRead(_ sql: String) -> Bool {
        let head = sql.drop(while: { $0 == " " || $0 == "\n" }).prefix(6).uppercased()
        return head == "SELECT" || head.hasPrefix("WITH")
    }

    static func fetch(_ db: Database, _ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] {
        let args = StatementArguments(binds.map { v -> DatabaseValue in
            switch v {
            case .null: return .null
            case .int(let i): return i.databaseValue
            case .text(let s): return s.databaseValue
            }
        })
        let statement = try db.makeStatement(sql: sql)
        try statement.setArguments(args)
        let rows = try Row.fetchAll(statement)
        return rows.map { row in
            var values: [String: SQLValue] = [:]
            for (name, dbValue) in row {
                switch dbValue.storage {
                case .null: values[name.lowercased()] = .null
                case .int64(let i): values[name.lowercased()] = .int(i)
                case .double(let d): values[name.lowercased()] = .int(Int64(d))
                case .string(let s): values[name.lowercased()] = .text(s)
                case .blob(let b): values[name.lowercased()] = .text(String(decoding: b, as: UTF8.self))
                }
            }
            return SQLRow(values)
        }
    }

    static func wrap(_ error: Error) -> Error {
        guard let e = error as? DatabaseError else { return error }
        if e.resultCode == .SQLITE_CONSTRAINT { return SQLError(.constraint, "constraint violated: \(e.message ?? "")") }
        return SQLError(.other, "sqlite: \(e.resultCode) \(e.message ?? "")")
    }
}
