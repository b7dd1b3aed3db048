import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A client for a cell engine's admin API (docs/ADMIN-API.md) over the unix
/// socket in the cell's data directory (normally `DATA/sockets/admin.sock`).
///
/// Each call is one HTTP/1.1 exchange on a fresh connection, bounded by
/// `timeout`. A reply other than 2xx throws `EngineAdminError` carrying the
/// status and the `error` text of the body.
///
///     C: GET /v1/health HTTP/1.1
///     S: HTTP/1.1 200 OK
///     S: {"status":"ok","version":"0.1","uptimeSeconds":12,...}
public struct EngineAdminClient: Sendable {
    public var socketPath: String
    public var timeout: TimeAmount
    /// Replies larger than this are refused (the largest, `/v1/users`, grows
    /// with the cell).
    public var maxReplyBytes: Int
    public var eventLoopGroup: any EventLoopGroup
    /// When set, the process answering on the socket must run as this uid
    /// (SO_PEERCRED): the socket lives in a directory the cell controls,
    /// so a cell could point it at another cell's socket.
    public var expectedPeerUID: UInt32?

    public init(socketPath: String, timeout: TimeAmount = .seconds(5), maxReplyBytes: Int = 16 << 20,
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, expectedPeerUID: UInt32? = nil) {
        self.expectedPeerUID = expectedPeerUID
        self.socketPath = socketPath
        self.timeout = timeout
        self.maxReplyBytes = maxReplyBytes
        self.eventLoopGroup = eventLoopGroup
    }

    // MARK: Endpoints

    /// `GET /v1/health`.
    public func health() async throws -> EngineAdmin.Health {
        try decode(try await call(.GET, "/v1/health"))
    }

    /// `GET /v1/users`.
    public func users() async throws -> [EngineAdmin.User] {
        try decode(try await call(.GET, "/v1/users"))
    }

    /// `PUT /v1/users/{address}`: creates (201) or replaces (200) a user.
    @discardableResult
    public func putUser(_ address: String, _ user: EngineAdmin.PutUser) async throws -> (EngineAdmin.User, EngineAdmin.PutOutcome) {
        let r = try await call(.PUT, "/v1/users/" + Self.pathSegment(address), body: user)
        return (try decode(r), r.status == 201 ? .created : .replaced)
    }

    /// `PUT /v1/users/{address}/password` with an scrypt PHC hash.
    public func setPassword(_ address: String, passwordHash: String) async throws {
        _ = try await call(.PUT, "/v1/users/" + Self.pathSegment(address) + "/password",
                           body: EngineAdmin.PasswordBody(password: passwordHash))
    }

    /// `PUT /v1/users/{address}/quota`; `nil` falls back to the cell's default.
    public func setQuota(_ address: String, quotaBytes: Int64?) async throws {
        _ = try await call(.PUT, "/v1/users/" + Self.pathSegment(address) + "/quota",
                           body: EngineAdmin.UserQuotaBody(quotaBytes: quotaBytes))
    }

    /// `DELETE /v1/users/{address}`; with `purge`, the user's stored mail goes too.
    public func deleteUser(_ address: String, purge: Bool = false) async throws {
        _ = try await call(.DELETE, "/v1/users/" + Self.pathSegment(address) + (purge ? "?purge=true" : ""))
    }

    /// `GET /v1/aliases`: alias → targets.
    public func aliases() async throws -> [String: [String]] {
        try decode(try await call(.GET, "/v1/aliases"))
    }

    /// `PUT /v1/aliases/{alias}`.
    @discardableResult
    public func putAlias(_ alias: String, targets: [String]) async throws -> EngineAdmin.PutOutcome {
        let r = try await call(.PUT, "/v1/aliases/" + Self.pathSegment(alias), body: EngineAdmin.AliasBody(targets: targets))
        return r.status == 201 ? .created : .replaced
    }

    /// `DELETE /v1/aliases/{alias}`.
    public func deleteAlias(_ alias: String) async throws {
        _ = try await call(.DELETE, "/v1/aliases/" + Self.pathSegment(alias))
    }

    /// `GET /v1/domains`.
    public func domains() async throws -> [String] {
        try decode(try await call(.GET, "/v1/domains"))
    }

    /// `PUT /v1/domains/{name}`.
    @discardableResult
    public func putDomain(_ name: String) async throws -> EngineAdmin.PutOutcome {
        let r = try await call(.PUT, "/v1/domains/" + Self.pathSegment(name))
        return r.status == 201 ? .created : .replaced
    }

    /// `DELETE /v1/domains/{name}`; 409 while users or aliases use it.
    public func deleteDomain(_ name: String) async throws {
        _ = try await call(.DELETE, "/v1/domains/" + Self.pathSegment(name))
    }

    /// `PUT /v1/quota`; `nil` is no cell quota.
    public func setCellQuota(bytes: Int64?) async throws {
        _ = try await call(.PUT, "/v1/quota", body: EngineAdmin.CellQuotaBody(cellBytes: bytes))
    }

    /// `PUT /v1/suspension`.
    public func setSuspended(_ suspended: Bool) async throws {
        _ = try await call(.PUT, "/v1/suspension", body: EngineAdmin.SuspensionBody(suspended: suspended))
    }

    /// `GET /v1/usage`.
    public func usage() async throws -> EngineAdmin.Usage {
        try decode(try await call(.GET, "/v1/usage"))
    }

    /// `POST /v1/export`: a ustar archive under `exports/` in the data directory.
    public func export() async throws -> EngineAdmin.ExportResult {
        try decode(try await call(.POST, "/v1/export"))
    }

    // MARK: Plumbing

    /// A reply: status and body bytes.
    public struct Reply: Sendable {
        public var status: Int
        public var body: [UInt8]
    }

    /// One request; throws `EngineAdminError` for transport failures and non-2xx replies.
    public func call(_ method: HTTPMethod, _ target: String, bodyBytes: [UInt8]? = nil) async throws -> Reply {
        var transport = UnixHTTPTransport(socketPath: socketPath, timeout: timeout, maxBodyBytes: maxReplyBytes, group: eventLoopGroup)
        transport.expectedPeerUID = expectedPeerUID
        let response: UnixHTTPTransport.Response
        do {
            response = try await transport.send(method: method, target: target, body: bodyBytes)
        } catch let f as UnixHTTPTransport.Failure {
            switch f {
            case .unreachable(let why): throw EngineAdminError(.unreachable, "\(method) \(target): \(why)")
            case .timeout: throw EngineAdminError(.timeout, "\(method) \(target): no reply within \(timeout.nanoseconds / 1_000_000) ms")
            case .tooLarge: throw EngineAdminError(.badReply, "\(method) \(target): reply over \(maxReplyBytes) bytes")
            case .closedEarly: throw EngineAdminError(.badReply, "\(method) \(target): connection closed before the reply ended")
            }
        } catch {
            throw EngineAdminError(.badReply, "\(method) \(target): \(error)")
        }
        guard (200..<300).contains(response.status) else {
            let text = (try? JSONDecoder().decode(EngineAdmin.ErrorBody.self, from: Data(response.body)))?.error
                ?? String(decoding: response.body.prefix(200), as: UTF8.self)
            throw EngineAdminError(.http, text, status: response.status)
        }
        return Reply(status: response.status, body: response.body)
    }

    func call(_ method: HTTPMethod, _ target: String, body: some Encodable) async throws -> Reply {
        let bytes = try JSONEncoder().encode(body)
        return try await call(method, target, bodyBytes: Array(bytes))
    }

    func decode<T: Decodable>(_ reply: Reply) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(reply.body))
        } catch {
            throw EngineAdminError(.badReply, "reply is not the expected JSON: \(error)", status: reply.status)
        }
    }

    /// Percent-encodes a path segment; `@` stays as it is (docs/ADMIN-API.md).
    static func pathSegment(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(127)))
        allowed.insert(charactersIn: "-._~@+")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}

/// Why an admin API call failed. `status` is the HTTP status for `.http`;
/// `message` is the engine's `error` text (or what went wrong on the way).
public struct EngineAdminError: Error, CustomStringConvertible, Sendable, Hashable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The engine answered with a non-2xx status.
        public static let http = Code(name: "http")
        /// The socket is missing or refused the connection.
        public static let unreachable = Code(name: "unreachable")
        /// No complete reply within the client's timeout.
        public static let timeout = Code(name: "timeout")
        /// A reply that is not HTTP, too large, or not the expected JSON.
        public static let badReply = Code(name: "badReply")
        public var description: String { name }
    }

    public var code: Code
    public var status: Int?
    public var message: String

    public init(_ code: Code, _ message: String, status: Int? = nil) {
        self.code = code; self.message = message; self.status = status
    }

    public var description: String {
        if let status { return "engine admin API \(status): \(message)" }
        return "engine admin API \(code): \(message)"
    }
}
