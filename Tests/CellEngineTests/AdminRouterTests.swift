import CellEngine
import Foundation
import MailCore
import Testing

/// The admin API's router against an in-memory backend that checks every
/// change with the configuration's own parser, as the engine does.
final class FakeAdminBackend: AdminBackend, @unchecked Sendable {
    var config: CellConfiguration
    var applied = 0
    var purged: [String] = []
    var failWrites = false

    init(_ json: String) throws {
        config = try CellConfiguration.parse(Array(json.utf8), source: "test")
    }

    func currentConfiguration() -> CellConfiguration { config }

    func apply(_ c: CellConfiguration) throws {
        if failWrites { throw AdminError(500, "could not write the configuration file; nothing changed") }
        do {
            config = try CellConfiguration.parse(c.encoded(), source: "the changed configuration")
        } catch {
            throw AdminError(400, "\(error)")
        }
        applied += 1
    }

    func status() throws -> AdminStatus { AdminStatus(version: "test", uptimeSeconds: 7, queuedMessages: 2) }

    func usage() throws -> [String: AdminUsage] {
        ["alice@example.test": AdminUsage(bytes: 1200, messages: 3), "nobody@example.test": AdminUsage(bytes: 5, messages: 1)]
    }

    func purge(user: String) throws { purged.append(user) }

    func export() throws -> (path: String, bytes: Int64) { ("exports/x.tar", 10240) }
}

@Suite struct AdminRouterTests {
    static let hash = try! PasswordHash.make(password: "pw", log2N: 4).description
    static let config = """
        {"hostname": "mx.example.test", "domains": ["example.test", "other.test"],
         "users": [{"address": "alice@example.test", "password": "\(hash)", "quotaBytes": 5000}],
         "aliases": {"team@example.test": ["alice@example.test"]},
         "quota": {"userBytes": 9000},
         "listeners": [{"name": "mx", "role": "mx", "address": "127.0.0.1:0"}]}
        """

    func make() throws -> (FakeAdminBackend, AdminRouter) {
        let b = try FakeAdminBackend(AdminRouterTests.config)
        return (b, AdminRouter(backend: b))
    }

    func call(_ r: AdminRouter, _ method: String, _ target: String, _ body: String = "") -> (Int, Any?) {
        let response = r.handle(AdminRequest(method: method, target: target, body: Array(body.utf8)))
        let json = response.body.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(response.body))
        return (response.status, json)
    }

    @Test func healthCountsTheConfiguration() throws {
        let (_, r) = try make()
        let (status, json) = call(r, "GET", "/v1/health")
        let o = try #require(json as? [String: Any])
        #expect(status == 200)
        #expect(o["status"] as? String == "ok" && o["version"] as? String == "test")
        #expect(o["users"] as? Int == 1 && o["domains"] as? Int == 2 && o["queuedMessages"] as? Int == 2)
        #expect(o["suspended"] as? Bool == false)
    }

    @Test func unknownResourcesAndMethods() throws {
        let (b, r) = try make()
        #expect(call(r, "GET", "/v1/nothing").0 == 404)
        #expect(call(r, "GET", "/v2/health").0 == 404)
        #expect(call(r, "GET", "/v1/users/a@example.test/extra").0 == 404)
        let response = r.handle(AdminRequest(method: "GET", target: "/v1/users/alice@example.test"))
        #expect(response.status == 405)
        #expect(response.allow == ["PUT", "DELETE"])
        #expect(call(r, "POST", "/v1/health").0 == 405)
        #expect(call(r, "GET", "/v1/export").0 == 405)
        #expect(b.applied == 0)
    }

    @Test func putUserCreatesThenReplaces() throws {
        let (b, r) = try make()
        let body = #"{"password": "\#(AdminRouterTests.hash)", "addresses": ["carol.c@other.test"]}"#
        var (status, json) = call(r, "PUT", "/v1/users/carol%40example.test", body)
        #expect(status == 201)
        #expect((json as? [String: Any])?["address"] as? String == "carol@example.test")
        #expect(b.config.users?.count == 2)
        (status, json) = call(r, "PUT", "/v1/users/Carol@example.test", #"{"password": "\#(AdminRouterTests.hash)", "quotaBytes": 100}"#)
        #expect(status == 200)
        #expect(b.config.users?.count == 2)
        #expect(b.config.users?[1].quotaBytes == 100)
        let list = try #require(call(r, "GET", "/v1/users").1 as? [[String: Any]])
        #expect(list.map { $0["address"] as? String } == ["alice@example.test", "Carol@example.test"])
        #expect(list.allSatisfy { $0["password"] == nil })
    }

    @Test func plaintextPasswordsAndBadBodiesAreRefused() throws {
        let (b, r) = try make()
        #expect(call(r, "PUT", "/v1/users/carol@example.test", #"{"password": "hunter2hunter2"}"#).0 == 400)
        #expect(call(r, "PUT", "/v1/users/alice@example.test/password", #"{"password": "$scrypt$not-a-hash"}"#).0 == 400)
        #expect(call(r, "PUT", "/v1/users/carol@example.test", #"{"password": "#).0 == 400)
        #expect(call(r, "PUT", "/v1/users/carol@example.test", #"["x"]"#).0 == 400)
        #expect(call(r, "PUT", "/v1/users/carol@example.test", #"{"password": "\#(AdminRouterTests.hash)", "admin": true}"#).0 == 400)
        #expect(call(r, "PUT", "/v1/users/carol@example.test", #"{"quotaBytes": 1}"#).0 == 400)
        #expect(call(r, "PUT", "/v1/users/carol@elsewhere.test", #"{"password": "\#(AdminRouterTests.hash)"}"#).0 == 400)
        #expect(call(r, "PUT", "/v1/users/not-an-address", #"{"password": "\#(AdminRouterTests.hash)"}"#).0 == 400)
        #expect(call(r, "PUT", "/v1/users/alice@example.test/quota", #"{"quotaBytes": -1}"#).0 == 400)
        #expect(call(r, "PUT", "/v1/suspension", #"{"suspended": "yes"}"#).0 == 400)
        #expect(b.applied == 0)
    }

    @Test func bodiesOverOneMebibyteAre413() throws {
        let (b, r) = try make()
        let big = #"{"targets": ["alice@example.test"], "pad": ""# + String(repeating: "x", count: 1 << 20) + #""}"#
        #expect(call(r, "PUT", "/v1/aliases/big@example.test", big).0 == 413)
        #expect(b.applied == 0)
    }

    @Test func passwordQuotaAndDeletion() throws {
        let (b, r) = try make()
        #expect(call(r, "PUT", "/v1/users/alice@example.test/password", #"{"password": "\#(AdminRouterTests.hash)"}"#).0 == 200)
        #expect(call(r, "PUT", "/v1/users/bob@example.test/password", #"{"password": "\#(AdminRouterTests.hash)"}"#).0 == 404)
        #expect(call(r, "PUT", "/v1/users/alice@example.test/quota", #"{"quotaBytes": null}"#).0 == 200)
        #expect(b.config.users?[0].quotaBytes == nil)
        #expect(call(r, "DELETE", "/v1/users/bob@example.test").0 == 404)
        #expect(call(r, "DELETE", "/v1/users/ALICE@example.test?purge=true").0 == 204)
        #expect(b.config.users?.isEmpty == true)
        #expect(b.purged == ["alice@example.test"])
    }

    @Test func aliases() throws {
        let (b, r) = try make()
        #expect(call(r, "PUT", "/v1/aliases/sales@example.test", #"{"targets": ["alice@example.test", "x@remote.test"]}"#).0 == 201)
        #expect(call(r, "PUT", "/v1/aliases/Sales@example.test", #"{"targets": ["alice@example.test"]}"#).0 == 200)
        #expect(b.config.aliases?.count == 2)
        #expect(call(r, "PUT", "/v1/aliases/@other.test", #"{"targets": ["alice@example.test"]}"#).0 == 201)
        // A user's own address, a foreign domain, an empty or bad target list.
        #expect(call(r, "PUT", "/v1/aliases/alice@example.test", #"{"targets": ["x@remote.test"]}"#).0 == 409)
        #expect(call(r, "PUT", "/v1/aliases/x@remote.test", #"{"targets": ["alice@example.test"]}"#).0 == 400)
        #expect(call(r, "PUT", "/v1/aliases/y@example.test", #"{"targets": []}"#).0 == 400)
        #expect(call(r, "PUT", "/v1/aliases/y@example.test", #"{"targets": ["not an address"]}"#).0 == 400)
        let all = try #require(call(r, "GET", "/v1/aliases").1 as? [String: [String]])
        #expect(all["team@example.test"] == ["alice@example.test"])
        #expect(call(r, "DELETE", "/v1/aliases/team@example.test").0 == 204)
        #expect(call(r, "DELETE", "/v1/aliases/team@example.test").0 == 404)
    }

    @Test func domainsAndConflicts() throws {
        let (b, r) = try make()
        #expect(call(r, "PUT", "/v1/domains/New.test").0 == 201)
        #expect(call(r, "PUT", "/v1/domains/new.test").0 == 200)
        #expect(call(r, "PUT", "/v1/domains/bad..name").0 == 400)
        #expect(b.config.domains == ["example.test", "other.test", "new.test"])
        #expect(call(r, "DELETE", "/v1/domains/example.test").0 == 409)
        #expect(call(r, "DELETE", "/v1/domains/missing.test").0 == 404)
        #expect(call(r, "DELETE", "/v1/domains/new.test").0 == 204)
        #expect(call(r, "PUT", "/v1/aliases/@other.test", #"{"targets": ["alice@example.test"]}"#).0 == 201)
        #expect(call(r, "DELETE", "/v1/domains/other.test").0 == 409)
        #expect(call(r, "GET", "/v1/domains").1 as? [String] == ["example.test", "other.test"])
    }

    @Test func cellQuotaSuspensionUsageExport() throws {
        let (b, r) = try make()
        #expect(call(r, "PUT", "/v1/quota", #"{"cellBytes": 100000}"#).0 == 200)
        #expect(b.config.quota?.cellBytes == 100000 && b.config.quota?.userBytes == 9000)
        #expect(call(r, "PUT", "/v1/suspension", #"{"suspended": true}"#).0 == 200)
        #expect(b.config.suspended == true)
        #expect((call(r, "GET", "/v1/health").1 as? [String: Any])?["suspended"] as? Bool == true)
        #expect(call(r, "PUT", "/v1/suspension", #"{"suspended": false}"#).0 == 200)
        #expect(b.config.suspended == nil)
        let usage = try #require(call(r, "GET", "/v1/usage").1 as? [String: Any])
        #expect(usage["cellBytes"] as? Int == 1205)
        #expect(usage["cellQuotaBytes"] as? Int == 100000)
        let users = try #require(usage["users"] as? [[String: Any]])
        #expect(users.count == 1)
        #expect(users[0]["usedBytes"] as? Int == 1200 && users[0]["messages"] as? Int == 3 && users[0]["quotaBytes"] as? Int == 5000)
        let export = call(r, "POST", "/v1/export")
        #expect(export.0 == 200 && (export.1 as? [String: Any])?["path"] as? String == "exports/x.tar")
    }

    @Test func failuresToWriteAre500AndChangeNothing() throws {
        let (b, r) = try make()
        b.failWrites = true
        let (status, json) = call(r, "PUT", "/v1/domains/new.test")
        #expect(status == 500)
        #expect((json as? [String: Any])?["error"] as? String != nil)
        #expect(b.config.domains == ["example.test", "other.test"])
    }
}
