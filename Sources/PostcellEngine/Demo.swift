import ArgumentParser
import CellEngine
import Foundation
import MailCore

/// `postcell-engine demo`: a standalone cell with one domain and two users,
/// for a first look. Prints the credentials and the commands to send and
/// read a message, then serves until interrupted.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a demo cell (one domain, two users) on loopback.")
    @Option(help: "The demo's data directory (kept between runs).")
    var data: String = "/tmp/postcell-demo"
    @Option(help: "First of three loopback ports: MX, submission (STARTTLS), submissions (implicit TLS).")
    var portBase: Int = 2525

    func run() throws {
        try DurableFile.makeDirectory(data)
        let dir = data.hasPrefix("/") ? data : FileManager.default.currentDirectoryPath + "/" + data
        let configPath = dir + "/cell.json"
        let credentialsPath = dir + "/demo-credentials.json"
        var passwords: [String: String] = [:]
        if let saved = try? DurableFile.readAll(credentialsPath),
           let object = try? JSONSerialization.jsonObject(with: Data(saved)) as? [String: String] {
            passwords = object
        } else {
            for user in ["alice@family.example", "bob@family.example"] { passwords[user] = Demo.randomPassword() }
            try DurableFile.write(Array(try JSONSerialization.data(withJSONObject: passwords, options: [.sortedKeys])),
                                  to: credentialsPath, tmpDirectory: dir)
        }
        let users: [[String: Any]] = try passwords.keys.sorted().map { address in
            ["address": address, "password": try PasswordHash.make(password: passwords[address]!).description, "addresses": [String]()]
        }
        let config: [String: Any] = [
            "hostname": "mail.family.example",
            "domains": ["family.example"],
            "users": users,
            "aliases": ["family@family.example": ["alice@family.example", "bob@family.example"]],
            "listeners": [
                ["name": "mx", "role": "mx", "address": "127.0.0.1:\(portBase)"],
                ["name": "submission", "role": "submission", "address": "127.0.0.1:\(portBase + 62)"],
                ["name": "submissions", "role": "submission", "address": "127.0.0.1:\(portBase - 60)", "implicitTLS": true],
                ["name": "imap", "role": "imap", "address": "127.0.0.1:\(portBase - 382)"],
                ["name": "imaps", "role": "imap", "address": "127.0.0.1:\(portBase + 468)", "implicitTLS": true],
            ],
        ]
        try DurableFile.write(Array(try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])),
                              to: configPath, tmpDirectory: dir)
        let me = CommandLine.arguments[0]
        let alice = passwords["alice@family.example"]!
        print("""
        Postcell demo cell
          data directory : \(dir)
          configuration  : \(configPath)
          domain         : family.example (alias family@ reaches both users)
          users          : alice@family.example  password: \(alice)
                           bob@family.example    password: \(passwords["bob@family.example"]!)
          MX             : 127.0.0.1:\(portBase)        (no AUTH, mail for family.example only)
          submission     : 127.0.0.1:\(portBase + 62)        (STARTTLS, AUTH required)
          submissions    : 127.0.0.1:\(portBase - 60)        (implicit TLS, AUTH required)
          IMAP           : 127.0.0.1:\(portBase - 382) (STARTTLS), 127.0.0.1:\(portBase + 468) (TLS)

        Send a message in from outside (MX):
          swaks --server 127.0.0.1:\(portBase) --from someone@elsewhere.example --to bob@family.example
        Send as Alice through submission:
          swaks --server 127.0.0.1:\(portBase + 62) --tls --auth PLAIN --auth-user alice@family.example --auth-password '\(alice)' --from alice@family.example --to bob@family.example
        Read Bob's newest message:
          \(me) mailbox show --config \(configPath) --user bob@family.example
        Read it over IMAP (Python):
          python3 -c "import imaplib,ssl; c=ssl._create_unverified_context(); m=imaplib.IMAP4_SSL('127.0.0.1',\(portBase + 468),ssl_context=c); m.login('bob@family.example','\(passwords["bob@family.example"]!)'); m.select(); print(m.fetch('1:*','(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])'))"
        List Bob's inbox:
          \(me) mailbox list --config \(configPath) --user bob@family.example

        Serving until Ctrl-C.
        """)
        fflush(nil)
        let serve = try Serve.parse(["--config", configPath])
        try serve.run()
    }

    static func randomPassword() -> String {
        let words = ["amber", "birch", "cobalt", "delta", "ember", "fjord", "granite", "harbor", "indigo", "juniper",
                     "kestrel", "lantern", "meadow", "nectar", "orchid", "pepper", "quartz", "raven", "saffron", "tundra"]
        var rng = SystemRandomNumberGenerator()
        return (0..<4).map { _ in words.randomElement(using: &rng)! }.joined(separator: "-") + "-\(Int.random(in: 10...99, using: &rng))"
    }
}
