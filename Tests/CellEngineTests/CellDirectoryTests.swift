import CellEngine
import Foundation
import MailCore
import Testing

@Suite struct CellDirectoryTests {
    static let hash = try! PasswordHash.make(password: "pw", log2N: 4).description

    func directory(aliases: [String: [String]] = [:], delimiter: String? = nil, extraDomains: [String] = []) throws -> CellDirectory {
        var json: [String: Any] = [
            "hostname": "mx.example.test",
            "domains": ["example.test"] + extraDomains,
            "users": [
                ["address": "alice@example.test", "password": Self.hash, "addresses": ["al@example.test"]],
                ["address": "bob@example.test", "password": Self.hash],
            ],
            "aliases": aliases,
            "listeners": [["name": "mx", "role": "mx", "address": "127.0.0.1:0"]],
        ]
        if let delimiter { json["recipientDelimiter"] = delimiter }
        let path = NSTemporaryDirectory() + "cell-\(UUID().uuidString).json"
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        return try CellDirectory(CellConfiguration.load(path: path))
    }

    func resolve(_ d: CellDirectory, _ address: String) -> CellDirectory.Resolution {
        var p = AddressParser(Array(address.utf8), utf8Allowed: true)
        return d.resolve(p.path()!)
    }

    @Test func usersExtraAddressesAndCase() throws {
        let d = try directory()
        #expect(resolve(d, "<Alice@EXAMPLE.test>") == .deliver(local: ["alice@example.test"], remote: []))
        #expect(resolve(d, "<al@example.test>") == .deliver(local: ["alice@example.test"], remote: []))
        #expect(resolve(d, "<carol@example.test>") == .unknown)
        #expect(resolve(d, "<alice@other.test>") == .notOurDomain)
        #expect(resolve(d, "<alice@[127.0.0.1]>") == .notOurDomain)
        #expect(resolve(d, "<\"alice\"@example.test>") == .unknown)
    }

    @Test func plusAddressing() throws {
        #expect(resolve(try directory(), "<alice+lists@example.test>") == .deliver(local: ["alice@example.test"], remote: []))
        #expect(resolve(try directory(delimiter: ""), "<alice+lists@example.test>") == .unknown)
        #expect(resolve(try directory(delimiter: "-"), "<alice-x@example.test>") == .deliver(local: ["alice@example.test"], remote: []))
        // A leading delimiter is not plus-addressing.
        #expect(resolve(try directory(), "<+alice@example.test>") == .unknown)
    }

    @Test func aliasesCatchAllAndForwarding() throws {
        let d = try directory(aliases: [
            "family@example.test": ["alice@example.test", "bob@example.test", "grandma@far.test"],
            "@example.test": ["bob@example.test"],
            "loop1@example.test": ["loop2@example.test"],
            "loop2@example.test": ["loop1@example.test"],
        ])
        #expect(resolve(d, "<family@example.test>") == .deliver(local: ["alice@example.test", "bob@example.test"], remote: ["grandma@far.test"]))
        #expect(resolve(d, "<anything@example.test>") == .deliver(local: ["bob@example.test"], remote: []))
        // An alias loop ends at the depth limit: refused, never spun on.
        #expect(resolve(d, "<loop1@example.test>") == .unknown)
    }

    /// RFC 5321 §4.5.1: postmaster exists for every domain.
    @Test func postmaster() throws {
        let d = try directory(extraDomains: ["second.test"])
        #expect(resolve(d, "<postmaster@second.test>") == .deliver(local: ["alice@example.test"], remote: []))
        let withAlias = try directory(aliases: ["postmaster@example.test": ["bob@example.test"]])
        #expect(resolve(withAlias, "<PostMaster@example.test>") == .deliver(local: ["bob@example.test"], remote: []))
    }

    @Test func configurationErrors() throws {
        func load(_ json: String) throws {
            let path = NSTemporaryDirectory() + "bad-\(UUID().uuidString).json"
            try Data(json.utf8).write(to: URL(fileURLWithPath: path))
            _ = try CellConfiguration.load(path: path)
        }
        let listeners = #""listeners": [{"name": "mx", "role": "mx", "address": "127.0.0.1:25"}]"#
        #expect(throws: (any Error).self) { try load(#"{"hostname": "h", "domains": ["example.test"], "limts": {}, \#(listeners)}"#) }
        #expect(throws: (any Error).self) { try load(#"{"hostname": "h", "domains": ["example.test"], "limits": {"maxMessageByte": 1}, \#(listeners)}"#) }
        #expect(throws: (any Error).self) { try load(#"{"hostname": "h", "domains": [], \#(listeners)}"#) }
        #expect(throws: (any Error).self) { try load(#"{"hostname": "h", "domains": ["example.test"], "users": [{"address": "a@example.test", "password": "plaintext"}], \#(listeners)}"#) }
        #expect(throws: (any Error).self) { try load(#"{"hostname": "h", "domains": ["example.test"], "listeners": [{"name": "mx", "role": "relay", "address": "127.0.0.1:25"}]}"#) }
        #expect(throws: (any Error).self) { try load(#"{"hostname": "h", "domains": ["example.test"], "listeners": [{"name": "mx", "role": "mx", "address": "example.test:25"}]}"#) }
        try load(#"{"hostname": "h", "domains": ["example.test"], \#(listeners)}"#)
    }
}
