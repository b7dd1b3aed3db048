import Foundation
import MailCore

/// The admin API (docs/ADMIN-API.md) as a pure function of a request and a
/// backend: parses the route and body, builds the changed configuration and
/// hands it to `AdminBackend.apply`, which checks, writes and applies it. No
/// sockets, no files: tests drive it with a fake backend.
///
///     PUT /v1/users/carol@example.test   {"password":"$scrypt$ln=14,r=8,p=1$…"}
///     201 {"address":"carol@example.test","addresses":[]}
public struct AdminRouter: Sendable {
    /// Bodies larger than this are refused with 413.
    public static let maxBodyBytes = 1 << 20

    let backend: AdminBackend

    public init(backend: AdminBackend) {
        self.backend = backend
    }

    public func handle(_ request: AdminRequest) -> AdminResponse {
        guard request.body.count <= AdminRouter.maxBodyBytes else { return .error(413, "body over 1 MiB") }
        guard let (route, query) = AdminRoute.parse(request.target) else { return .error(404, "no such resource") }
        guard route.methods.contains(request.method) else {
            var r = AdminResponse.error(405, "method not allowed; allowed: " + route.methods.joined(separator: ", "))
            r.allow = route.methods
            return r
        }
        do {
            return try dispatch(route, method: request.method, query: query, body: request.body)
        } catch let e as AdminError {
            return .error(e.status, e.text)
        } catch {
            return .error(500, "internal error")
        }
    }

    func dispatch(_ route: AdminRoute, method: String, query: [String: String], body: [UInt8]) throws -> AdminResponse {
        switch (route, method) {
        case (.health, _): return try health()
        case (.users, _): return .json(200, (backend.currentConfiguration().users ?? []).map(AdminRouter.userJSON))
        case (.user(let a), "PUT"): return try putUser(a, body)
        case (.user(let a), _): return try deleteUser(a, purge: query["purge"] == "true")
        case (.userPassword(let a), _): return try putPassword(a, body)
        case (.userQuota(let a), _): return try putUserQuota(a, body)
        case (.aliases, _): return .json(200, backend.currentConfiguration().aliases ?? [:])
        case (.alias(let a), "PUT"): return try putAlias(a, body)
        case (.alias(let a), _): return try deleteAlias(a)
        case (.domains, _): return .json(200, backend.currentConfiguration().domains)
        case (.domain(let d), "PUT"): return try putDomain(d)
        case (.domain(let d), _): return try deleteDomain(d)
        case (.quota, _): return try putCellQuota(body)
        case (.suspension, _): return try putSuspension(body)
        case (.usage, _): return try usage()
        case (.export, _):
            let (path, bytes) = try backend.export()
            return .json(200, ["path": path, "bytes": bytes])
        }
    }

    // MARK: Status

    func health() throws -> AdminResponse {
        let c = backend.currentConfiguration()
        let s = try backend.status()
        return .json(200, ["status": "ok", "version": s.version, "uptimeSeconds": s.uptimeSeconds, "suspended": c.suspended ?? false,
                           "users": c.users?.count ?? 0, "domains": c.domains.count, "queuedMessages": s.queuedMessages])
    }

    func usage() throws -> AdminResponse {
        let c = backend.currentConfiguration()
        let used = try backend.usage()
        var users: [[String: Any]] = []
        for u in c.users ?? [] {
            let key = MailAddress.parse(u.address)?.lookupKey ?? u.address.lowercased()
            var entry: [String: Any] = ["address": u.address, "usedBytes": used[key]?.bytes ?? 0, "messages": used[key]?.messages ?? 0]
            // The quota in force: the user's own, else the cell's default (0: none).
            let quota = u.quotaBytes ?? c.quota?.userBytes ?? 0
            if quota > 0 { entry["quotaBytes"] = quota }
            users.append(entry)
        }
        var reply: [String: Any] = ["cellBytes": used.values.reduce(0) { $0 + $1.bytes }, "users": users]
        if let q = c.quota?.cellBytes, q > 0 { reply["cellQuotaBytes"] = q }
        return .json(200, reply)
    }

    // MARK: Users

    struct UserBody: Decodable {
        var password: String
        var quotaBytes: Int64?
        var addresses: [String]?
    }
    struct PasswordBody: Decodable { var password: String }
    struct QuotaBody: Decodable { var quotaBytes: Int64? }

    static func userJSON(_ u: CellConfiguration.User) -> [String: Any] {
        var o: [String: Any] = ["address": u.address, "addresses": u.addresses ?? []]
        if let q = u.quotaBytes { o["quotaBytes"] = q }
        return o
    }

    func putUser(_ address: String, _ body: [UInt8]) throws -> AdminResponse {
        var c = backend.currentConfiguration()
        let key = try localAddress(address, c)
        let b = try decode(UserBody.self, body, keys: ["password", "quotaBytes", "addresses"])
        try checkHash(b.password)
        try checkQuota(b.quotaBytes)
        for extra in b.addresses ?? [] { _ = try localAddress(extra, c) }
        let user = CellConfiguration.User(address: address, password: b.password, quotaBytes: b.quotaBytes, addresses: b.addresses ?? [])
        var users = c.users ?? []
        let existing = users.firstIndex { MailAddress.parse($0.address)?.lookupKey == key }
        if let i = existing { users[i] = user } else { users.append(user) }
        c.users = users
        try backend.apply(c)
        return .json(existing == nil ? 201 : 200, AdminRouter.userJSON(user))
    }

    func putPassword(_ address: String, _ body: [UInt8]) throws -> AdminResponse {
        var c = backend.currentConfiguration()
        let i = try userIndex(address, c)
        let b = try decode(PasswordBody.self, body, keys: ["password"])
        try checkHash(b.password)
        c.users![i].password = b.password
        try backend.apply(c)
        return .json(200, AdminRouter.userJSON(c.users![i]))
    }

    func putUserQuota(_ address: String, _ body: [UInt8]) throws -> AdminResponse {
        var c = backend.currentConfiguration()
        let i = try userIndex(address, c)
        let b = try decode(QuotaBody.self, body, keys: ["quotaBytes"])
        try checkQuota(b.quotaBytes)
        c.users![i].quotaBytes = b.quotaBytes
        try backend.apply(c)
        return .json(200, AdminRouter.userJSON(c.users![i]))
    }

    func deleteUser(_ address: String, purge: Bool) throws -> AdminResponse {
        var c = backend.currentConfiguration()
        let i = try userIndex(address, c)
        let key = MailAddress.parse(c.users![i].address)?.lookupKey ?? address.lowercased()
        c.users!.remove(at: i)
        try backend.apply(c)
        if purge {
            do { try backend.purge(user: key) } catch let e as AdminError {
                throw AdminError(e.status, "user removed, stored mail not purged: \(e.text)")
            }
        }
        return .noContent
    }

    func userIndex(_ address: String, _ c: CellConfiguration) throws -> Int {
        guard let key = MailAddress.parse(address)?.lookupKey,
              let i = (c.users ?? []).firstIndex(where: { MailAddress.parse($0.address)?.lookupKey == key }) else {
            throw AdminError(404, "no such user")
        }
        return i
    }

    /// An address at one of the cell's domains (mail to any other is never
    /// delivered here); its lookup key.
    func localAddress(_ address: String, _ c: CellConfiguration) throws -> String {
        guard let a = MailAddress.parse(address), !a.isAddressLiteral else { throw AdminError(400, "bad address \(address)") }
        guard c.domains.contains(where: { $0.lowercased() == a.domain.lowercased() }) else {
            throw AdminError(400, "\(a.domain) is not one of the cell's domains")
        }
        return a.lookupKey
    }

    /// Passwords cross the API only as hashes (MailCore.PasswordHash).
    func checkHash(_ password: String) throws {
        do { _ = try PasswordHash(parsing: password) } catch {
            throw AdminError(400, "password must be a scrypt PHC hash ($scrypt$ln=…); plaintext is refused")
        }
    }

    func checkQuota(_ bytes: Int64?) throws {
        if let bytes, bytes < 0 { throw AdminError(400, "a quota is 0 (none) or more bytes") }
    }

    // MARK: Aliases and domains

    struct AliasBody: Decodable { var targets: [String] }

    func aliasKey(_ alias: String) -> String {
        alias.hasPrefix("@") ? alias.lowercased() : (MailAddress.parse(alias)?.lookupKey ?? alias.lowercased())
    }

    func putAlias(_ alias: String, _ body: [UInt8]) throws -> AdminResponse {
        var c = backend.currentConfiguration()
        let key = aliasKey(alias)
        if alias.hasPrefix("@") {
            guard c.domains.contains(where: { "@" + $0.lowercased() == key }) else {
                throw AdminError(400, "\(alias.dropFirst()) is not one of the cell's domains")
            }
        } else {
            _ = try localAddress(alias, c)
            let owned = (c.users ?? []).flatMap { [$0.address] + ($0.addresses ?? []) }.compactMap { MailAddress.parse($0)?.lookupKey }
            if owned.contains(key) { throw AdminError(409, "\(alias) is a user's address") }
        }
        let b = try decode(AliasBody.self, body, keys: ["targets"])
        var aliases = c.aliases ?? [:]
        let existing = aliases.keys.first { aliasKey($0) == key }
        if let existing { aliases[existing] = nil }
        aliases[alias] = b.targets
        c.aliases = aliases
        try backend.apply(c)
        return .json(existing == nil ? 201 : 200, ["alias": alias, "targets": b.targets])
    }

    func deleteAlias(_ alias: String) throws -> AdminResponse {
        var c = backend.currentConfiguration()
        let key = aliasKey(alias)
        guard let existing = c.aliases?.keys.first(where: { aliasKey($0) == key }) else { throw AdminError(404, "no such alias") }
        c.aliases![existing] = nil
        try backend.apply(c)
        return .noContent
    }

    func putDomain(_ name: String) throws -> AdminResponse {
        var c = backend.currentConfiguration()
        if c.domains.contains(where: { $0.lowercased() == name.lowercased() }) { return .json(200, ["domain": name.lowercased()]) }
        c.domains.append(name.lowercased())
        try backend.apply(c)
        return .json(201, ["domain": name.lowercased()])
    }

    func deleteDomain(_ name: String) throws -> AdminResponse {
        var c = backend.currentConfiguration()
        let d = name.lowercased()
        guard let i = c.domains.firstIndex(where: { $0.lowercased() == d }) else { throw AdminError(404, "no such domain") }
        func at(_ a: String) -> Bool { (a.hasPrefix("@") ? String(a.dropFirst()) : MailAddress.parse(a)?.domain)?.lowercased() == d }
        let users = (c.users ?? []).filter { u in at(u.address) || (u.addresses ?? []).contains(where: at) }
        let aliases = (c.aliases ?? [:]).filter { k, v in at(k) || v.contains(where: at) }
        guard users.isEmpty && aliases.isEmpty else {
            throw AdminError(409, "domain in use by \(users.count) user(s) and \(aliases.count) alias(es)")
        }
        c.domains.remove(at: i)
        try backend.apply(c)
        return .noContent
    }

    // MARK: Cell settings

    struct CellQuotaBody: Decodable { var cellBytes: Int64? }
    struct SuspensionBody: Decodable { var suspended: Bool }

    func putCellQuota(_ body: [UInt8]) throws -> AdminResponse {
        var c = backend.currentConfiguration()
        let b = try decode(CellQuotaBody.self, body, keys: ["cellBytes"])
        try checkQuota(b.cellBytes)
        var q = c.quota ?? .init()
        q.cellBytes = b.cellBytes
        c.quota = q.cellBytes == nil && q.userBytes == nil ? nil : q
        try backend.apply(c)
        return .json(200, ["cellBytes": b.cellBytes.map { $0 as Any } ?? NSNull()])
    }

    func putSuspension(_ body: [UInt8]) throws -> AdminResponse {
        var c = backend.currentConfiguration()
        let b = try decode(SuspensionBody.self, body, keys: ["suspended"])
        c.suspended = b.suspended ? true : nil
        try backend.apply(c)
        return .json(200, ["suspended": b.suspended])
    }

    // MARK: Bodies

    /// A JSON object with only the given keys, decoded; 400 otherwise.
    func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8], keys: Set<String>) throws -> T {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw AdminError(400, "the body must be a JSON object")
        }
        if let unknown = object.keys.sorted().first(where: { !keys.contains($0) }) { throw AdminError(400, "unknown key \(unknown)") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch let e as DecodingError {
            throw AdminError(400, CellConfiguration.describe(e))
        }
    }
}
