import Foundation

/// A value bound to or read from SQL. The control plane's schema uses only
/// these (BIGINT, TEXT; booleans as 0/1), so one set of statements runs on
/// SQLite and on PostgreSQL.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case text(String)

    public static func bool(_ b: Bool) -> SQLValue { .int(b ? 1 : 0) }
    public static func optional(_ s: String?) -> SQLValue { s.map(SQLValue.text) ?? .null }
    public static func optional(_ i: Int64?) -> SQLValue { i.map(SQLValue.int) ?? .null }
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
}

/// One result row, by lower-case column name.
public struct SQLRow: Sendable {
    public var values: [String: SQLValue]
    public init(_ values: [String: SQLValue]) { self.values = values }

    public func text(_ c: String) -> String? {
        switch values[c] {
        case .text(let s): return s
        case .int(let i): return String(i)
        default: return nil
        }
    }
    public func string(_ c: String) -> String { text(c) ?? "" }
    public func int(_ c: String) -> Int64? {
        switch values[c] {
        case .int(let i): return i
        case .text(let s): return Int64(s)
        default: return nil
        }
    }
    public func bool(_ c: String) -> Bool { (int(c) ?? 0) != 0 }
}

public enum SQLDialect: String, Sendable { case sqlite, postgres }

/// Runs statements. `?` marks a bound value in every dialect.
public protocol SQLExecutor: Sendable {
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
    func execute(_ sql: String, _ binds: [SQLValue]) async throws
}

extension SQLExecutor {
    public func query(_ sql: String, _ binds: SQLValue...) async throws -> [SQLRow] { try await query(sql, binds) }
    public func execute(_ sql: String, _ binds: SQLValue...) async throws { try await execute(sql, binds) }
    public func first(_ sql: String, _ binds: SQLValue...) async throws -> SQLRow? { try await query(sql, binds).first }
    public func scalar(_ sql: String, _ binds: SQLValue...) async throws -> Int64 {
        try await query(sql, binds).first?.values.values.first.flatMap { if case .int(let i) = $0 { return i }; if case .text(let s) = $0 { return Int64(s) }; return nil } ?? 0
    }
}

/// The control database: SQLite (embedded default) or PostgreSQL.
public protocol SQLDatabase: SQLExecutor {
    var dialect: SQLDialect { get }
    /// Runs `body` in one transaction: committed when it returns, rolled
    /// back when it throws.
    func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T
    func close() async
}

/// A database error whose text is safe to log (no bound values).
public struct SQLError: Error, CustomStringConvertible {
    public enum Code: Sendable { case constraint, connection, other }
    public var code: Code
    public var description: String
    public init(_ code: Code, _ description: String) { self.code = code; self.description = description }
    public var isConstraintViolation: Bool { code == .constraint }
}

/// Opens the database a URL names: `sqlite:PATH` (or a bare path) or
/// `postgres://user:password@host:port/database`.
public enum DatabaseURL {
    public static func open(_ url: String) async throws -> any SQLDatabase {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return try await PostgresDatabase.connect(url: url)
        }
        let path = url.hasPrefix("sqlite:") ? String(url.dropFirst("sqlite:".count)) : url
        return try SQLiteDatabase(path: path)
    }
}
