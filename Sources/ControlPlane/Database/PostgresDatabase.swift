import Foundation
import Logging
import NIOCore
import PostgresNIO

/// The control database on PostgreSQL, for a fleet. Statements are written
/// with `?` placeholders; they become `$1, $2, ...` here.
public final class PostgresDatabase: SQLDatabase {
    public let dialect = SQLDialect.postgres
    let client: PostgresClient
    let runner: Task<Void, Never>
    let logger = Logger(label: "postcell.postgres")

    init(client: PostgresClient) {
        self.client = client
        self.runner = Task { await client.run() }
    }

    /// `postgres://user:password@host:port/database` (also `?host=/socket/dir`).
    public static func connect(url: String) async throws -> PostgresDatabase {
        guard let u = URLComponents(string: url), let user = u.user else {
            throw SQLError(.connection, "bad PostgreSQL URL (postgres://user:password@host:port/database)")
        }
        let database = u.path.hasPrefix("/") ? String(u.path.dropFirst()) : u.path
        let socketDir = u.queryItems?.first(where: { $0.name == "host" })?.value
        let config: PostgresClient.Configuration
        if let socketDir {
            config = .init(unixSocketPath: socketDir + "/.s.PGSQL.\(u.port ?? 5432)", username: user,
                           password: u.password?.removingPercentEncoding, database: database.isEmpty ? nil : database)
        } else {
            config = .init(host: u.host ?? "127.0.0.1", port: u.port ?? 5432, username: user,
                           password: u.password?.removingPercentEncoding, database: database.isEmpty ? nil : database, tls: .disable)
        }
        let db = PostgresDatabase(client: PostgresClient(configuration: config))
        do { _ = try await db.query("SELECT 1 AS ok", []) } catch {
            await db.close()
            throw SQLError(.connection, "cannot reach PostgreSQL at \(u.host ?? socketDir ?? "?"): \(String(reflecting: error).prefix(300))")
        }
        return db
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        do {
            let rows = try await client.query(try PostgresDatabase.makeQuery(sql, binds), logger: logger)
            return try await PostgresDatabase.collect(rows)
        } catch { throw PostgresDatabase.wrap(error) }
    }

    public func execute(_ sql: String, _ binds: [SQLValue]) async throws { _ = try await query(sql, binds) }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { conn in
                try await body(Connection(connection: conn, logger: logger))
            }
        } catch let e as PostgresTransactionError {
            throw e.closureError.map(PostgresDatabase.wrap) ?? PostgresDatabase.wrap(e)
        } catch { throw PostgresDatabase.wrap(error) }
    }

    public func close() async { runner.cancel(); _ = await runner.value }

    struct Connection: SQLExecutor {
        let connection: PostgresConnection
        let logger: Logger
        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            do {
                let rows = try await connection.query(try PostgresDatabase.makeQuery(sql, binds), logger: logger)
                return try await PostgresDatabase.collect(rows)
            } catch { throw PostgresDatabase.wrap(error) }
        }
        func execute(_ sql: String, _ binds: [SQLValue]) async throws { _ = try await query(sql, binds) }
    }

    /// `?` → `$n`, outside quoted literals.
    static func numbered(_ sql: String) -> String {
        var out = ""; var n = 0; var quoted = false
        for ch in sql {
            if ch == "'" { quoted.toggle() }
            if ch == "?" && !quoted { n += 1; out += "$\(n)" } else { out.append(ch) }
        }
        return out
    }

    static func makeQuery(_ sql: String, _ binds: [SQLValue]) throws -> PostgresQuery {
        var b = PostgresBindings(capacity: binds.count)
        for v in binds {
            switch v {
            case .null: b.appendNull()
            case .int(let i): b.append(i)
            // PostgreSQL text cannot hold NUL; no valid input has one, so it
            // becomes U+FFFD rather than a server error.
            case .text(let s): b.append(s.contains("\u{0}") ? s.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : s)
            }
        }
        return PostgresQuery(unsafeSQL: numbered(sql), binds: b)
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [SQLRow] {
        var out: [SQLRow] = []
        for try await row in rows {
            var values: [String: SQLValue] = [:]
            for cell in row {
                let name = cell.columnName.lowercased()
                guard cell.bytes != nil else { values[name] = .null; continue }
                switch cell.dataType {
                case .int2, .int4, .int8: values[name] = .int(try cell.decode(Int64.self))
                case .bool: values[name] = .int(try cell.decode(Bool.self) ? 1 : 0)
                case .numeric: values[name] = .text(try cell.decode(String.self))
                default: values[name] = .text(try cell.decode(String.self))
                }
            }
            out.append(SQLRow(values))
        }
        return out
    }

    static func wrap(_ error: Error) -> Error {
        if let e = error as? SQLError { return e }
        if let e = error as? PSQLError {
            if let state = e.serverInfo?[.sqlState], state.hasPrefix("23") {
                return SQLError(.constraint, "constraint violated: \(e.serverInfo?[.message] ?? "")")
            }
            return SQLError(.other, "postgres: \(e.serverInfo?[.message] ?? "\(e.code)")")
        }
        return error
    }
}
