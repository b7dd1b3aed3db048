import ArgumentParser
import CellEngine
import DNS
import Foundation
import NIOCore
import NIOPosix

/// `postcell-engine resolve`: asks the engine's resolver, as the queue and
/// the mail checks will, and prints the answer as JSON (one object per
/// question). For operators checking a cell's view of DNS, and for tests.
struct Resolve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Resolve a name with the engine's DNS resolver and print the answer as JSON.",
        discussion: """
            Exit status: 0 when a server answered (any response code), 3 when none did \
            (timeout or network error), 1 on bad arguments. With --stdin, reads "NAME TYPE" \
            lines and answers each on its own line, repeated questions from the cache.
            """)

    @Option(name: .customLong("server"), help: "A resolver's address, HOST:PORT or [IPv6]:PORT (repeatable).")
    var servers: [String] = []
    @Option(help: "Take the resolver settings from this cell configuration (its dns section) instead.")
    var config: String?
    @Option(help: "Milliseconds one server has to answer one try.")
    var timeoutMs: Int = 2000
    @Option(help: "Rounds over the servers.")
    var attempts: Int = 2
    @Flag(help: "Trust the servers' AD bit (they validate DNSSEC and the path to them is safe).")
    var trustAd = false
    @Flag(help: "Read questions from standard input, one \"NAME TYPE\" per line.")
    var stdin = false
    @Argument(help: "NAME TYPE") var question: [String] = []

    func validate() throws {
        guard !servers.isEmpty || config != nil else { throw ValidationError("give --server or --config") }
        guard stdin || question.count == 2 else { throw ValidationError("give NAME and TYPE, or --stdin") }
    }

    func run() throws {
        var config: DNSResolverConfiguration
        if let path = self.config {
            config = try CellConfiguration.load(path: path).resolverConfiguration()
        } else {
            config = DNSResolverConfiguration(servers: try servers.map { text in
                guard let a = DNSResolverConfiguration.server(text) else { throw ValidationError("bad server address \(text)") }
                return a
            })
            config.timeout = .milliseconds(Int64(timeoutMs))
            config.attempts = attempts
            config.trustAD = trustAd
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let resolver = DNSResolver(configuration: config)
        if !stdin {
            let ok = try ask(question[0], question[1], resolver, group)
            if !ok { throw ExitCode(3) }
            return
        }
        var allAnswered = true
        while let line = readLine() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard parts.count == 2 else { continue }
            allAnswered = try ask(parts[0], parts[1], resolver, group) && allAnswered
        }
        if !allAnswered { throw ExitCode(3) }
    }

    /// Prints one answer; false when no server answered.
    func ask(_ nameText: String, _ typeText: String, _ resolver: DNSResolver, _ group: EventLoopGroup) throws -> Bool {
        guard let name = DNSName(nameText) else { throw ValidationError("bad name \(nameText)") }
        guard let type = DNSType(name: typeText) else { throw ValidationError("unknown type \(typeText)") }
        var out: [String: Any] = ["name": name.description, "type": type.description]
        var answered = true
        do {
            let a = try resolver.query(name, type, on: group.next()).wait()
            out["rcode"] = a.rcode.description
            out["authenticated"] = a.authenticated
            out["tcp"] = a.overTCP
            out["cached"] = a.fromCache
            out["records"] = a.answers.map { ["name": $0.name.description, "type": $0.type.description, "ttl": Int($0.ttl),
                                              "data": $0.data.presentation] as [String: Any] }
            out["error"] = NSNull()
        } catch let e as DNSError {
            answered = false
            out["error"] = { switch e { case .timeout: "timeout"; case .network: "network"; case .malformed: "malformed" } }()
            out["detail"] = e.description
            out["records"] = [Any]()
        }
        let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
        FileHandle.standardOutput.write(data + Data("\n".utf8))
        return answered
    }
}
