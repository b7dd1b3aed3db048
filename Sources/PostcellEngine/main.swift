import ArgumentParser
import CellEngine
import Foundation
import Logging
import MailCore
import MailStore
import MailQueue

struct PostcellEngine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postcell-engine",
        abstract: "The Postcell mail engine: one customer's cell.",
        subcommands: [Serve.self, HashPassword.self, Demo.self, MailboxCommand.self, QueueCommand.self, Check.self, Resolve.self, DKIMCommand.self, SPFCommand.self, DMARCCommand.self],
        defaultSubcommand: Serve.self)
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The cell configuration file (docs/CELL-CONFIG.md).")
    var config: String
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the cell's servers.")
    @OptionGroup var options: ConfigOption
    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let engine = Engine(configPath: options.config, logger: Logger(label: "postcell.engine"))
        do {
            try engine.start()
        } catch {
            FileHandle.standardError.write(Array("postcell-engine: \(error)\n".utf8).withUnsafeBufferPointer { Data(buffer: $0) })
            throw ExitCode(2)
        }
        engine.wait()
    }
}

struct HashPassword: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read a password from standard input and print its scrypt hash.")
    @Option(help: "log2 of the scrypt cost N (default 14).")
    var log2n: Int = PasswordHash.defaultLog2N

    func run() throws {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw ValidationError("no password on standard input")
        }
        print(try PasswordHash.make(password: line, log2N: log2n))
    }
}

struct MailboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mailbox", abstract: "Look into a user's mailboxes.",
                                                    subcommands: [List.self, Show.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One JSON line per message.")
        @OptionGroup var options: ConfigOption
        @Option var user: String
        @Option var mailbox: String = "INBOX"

        func run() throws {
            let store = try CellInspector(configPath: options.config).openStore()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            for m in try store.messages(user: user, mailbox: mailbox) {
                print(String(decoding: try encoder.encode(m), as: UTF8.self))
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one message's bytes.")
        @OptionGroup var options: ConfigOption
        @Option var user: String
        @Option var mailbox: String = "INBOX"
        @Option(help: "The message's UID; the newest when omitted.") var uid: Int64?

        func run() throws {
            let store = try CellInspector(configPath: options.config).openStore()
            let all = try store.messages(user: user, mailbox: mailbox)
            guard let m = uid.map({ u in all.first { $0.uid == u } }) ?? all.last else {
                throw ValidationError("no such message")
            }
            FileHandle.standardOutput.write(Data(try DurableFile.readAll(m.path)))
        }
    }
}

struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queue", abstract: "Look into the outbound queue.",
                                                    subcommands: [List.self, Flush.self])
    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make every deferred message due now (signals the running engine).")
        @OptionGroup var options: ConfigOption
        func run() throws {
            let inspector = try CellInspector(configPath: options.config)
            let text = String(decoding: try DurableFile.readAll(inspector.dataDirectory + "/run/engine.pid"), as: UTF8.self)
            guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, SIGUSR1) == 0 else {
                throw ValidationError("the engine is not running")
            }
        }
    }

    struct List: ParsableCommand {
        @OptionGroup var options: ConfigOption
        func run() throws {
            let spool = try CellInspector(configPath: options.config).openSpool()
            let states = try QueueStateFiles(spool: spool)
            for (env, size) in spool.list() {
                var json: [String: Any] = ["id": env.id, "from": env.from, "recipients": env.recipients, "size": size, "user": env.user ?? NSNull()]
                // Where delivery stands (absent: not tried yet).
                if let st = states.read(env.id) {
                    json["attempts"] = st.attempts
                    json["nextAttempt"] = st.nextAttempt
                    json["status"] = Dictionary(st.recipients.map { ($0.address, [$0.status.rawValue, $0.lastReply ?? ""]) }, uniquingKeysWith: { a, _ in a })
                }
                print(String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), as: UTF8.self))
            }
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the store's index against its files (exit 1 on problems).")
    @OptionGroup var options: ConfigOption
    func run() throws {
        let problems = try CellInspector(configPath: options.config).openStore().check()
        if problems.isEmpty {
            print("store consistent")
            return
        }
        for p in problems { print(p) }
        throw ExitCode(1)
    }
}

PostcellEngine.main()
