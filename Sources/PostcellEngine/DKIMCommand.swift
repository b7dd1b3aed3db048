import ArgumentParser
import DNS
import Foundation
import MailAuth
import MailCore
import NIOCore
import NIOPosix

/// `postcell-engine dkim`: DKIM keys, signing and verification (RFC 6376,
/// RFC 8463) from the command line, for operators and interop tests.
///
///     postcell-engine dkim keygen --algorithm ed25519 --out key.pem   # prints the TXT value
///     postcell-engine dkim sign --key key.pem --domain example.com --selector s1 < msg > signed
///     postcell-engine dkim verify --txt 's1._domainkey.example.com=v=DKIM1; k=ed25519; p=...' < signed
///
/// Reads untrusted message bytes from standard input; needs no privilege.
struct DKIMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dkim", abstract: "Make DKIM keys, sign and verify messages.",
        subcommands: [Keygen.self, Sign.self, Verify.self])

    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new private key (PKCS#8 PEM, mode 0600) and print the key record's TXT value.")
        @Option(help: "rsa (2048 bits) or ed25519.") var algorithm: String = "rsa"
        @Option(help: "Where to write the private key; the file must not exist.") var out: String

        func run() throws {
            guard let kind = DKIMPrivateKey.Kind(rawValue: algorithm.lowercased()) else {
                throw ValidationError("--algorithm is rsa or ed25519")
            }
            let key = try DKIMPrivateKey.generate(kind)
            let pem = Array(key.pem.utf8)
            let fd = try DurableFile.create(out, mode: 0o600)
            defer { close(fd) }
            try pem.withUnsafeBytes { try DurableFile.writeAll(fd, $0, path: out) }
            try DurableFile.fsync(fd, path: out)
            print(key.record.text)
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign the message on standard input; write it with its DKIM-Signature field on top.")
        @Option(help: "The private key file (PEM, or a base64 Ed25519 seed).") var key: String
        @Option(help: "d=, the signing domain.") var domain: String
        @Option(help: "s=, the selector.") var selector: String
        @Option(help: "c=, header/body canonicalization.") var canonicalization: String = "relaxed/relaxed"
        @Option(help: "i=, the identity (default @DOMAIN).") var identity: String?
        @Option(help: "x= as seconds after t=.") var expireAfter: Int64?
        @Option(help: "t=, seconds since the epoch (default now).") var now: Int64?
        @Flag(help: "Add l= (the body length).") var bodyLength = false
        @Flag(help: "Print only the DKIM-Signature field.") var headerOnly = false

        func run() throws {
            let keyText = String(decoding: try DurableFile.readAll(key), as: UTF8.self)
            var signer = try DKIMSigner(key: try DKIMPrivateKey(text: keyText), domain: domain, selector: selector)
            let parts = canonicalization.lowercased().split(separator: "/").map(String.init)
            guard (1...2).contains(parts.count),
                  let h = DKIMSignature.Canonicalization(rawValue: parts[0]),
                  let b = DKIMSignature.Canonicalization(rawValue: parts.count == 2 ? parts[1] : "simple") else {
                throw ValidationError("--canonicalization is simple|relaxed[/simple|relaxed]")
            }
            signer.headerCanonicalization = h
            signer.bodyCanonicalization = b
            signer.identity = identity
            signer.validFor = expireAfter
            signer.signBodyLength = bodyLength
            let message = Array(FileHandle.standardInput.readDataToEndOfFile())
            var field = try signer.sign(message, now: now ?? Int64(Date().timeIntervalSince1970))
            // A message in local form (bare LF) gets a field in the same form.
            if !message.isEmpty, !message.contains(0x0D) { field = field.replacingOccurrences(of: "\r\n", with: "\n") }
            FileHandle.standardOutput.write(Data(field.utf8))
            if !headerOnly { FileHandle.standardOutput.write(Data(message)) }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify the message on standard input; print one JSON line per DKIM-Signature.",
            discussion: """
                Keys come from --txt (NAME=VALUE, repeatable; other names do not exist) and then \
                from --dns-server resolvers. Each line: {"result", "domain", "selector", "identity", \
                "algorithm", "reason", "headerB", "keyBits", "testing", "resinfo"}. Exit status 0 when \
                at least one signature passes, 4 when none does (or there is none), 1 on bad arguments.
                """)
        @Option(name: .customLong("dns-server"), help: "A resolver, HOST:PORT (repeatable).") var servers: [String] = []
        @Option(help: "A key record, NAME=VALUE (repeatable).") var txt: [String] = []
        @Option(help: "Milliseconds one server has to answer one try.") var timeoutMs: Int = 2000
        @Option(help: "Rounds over the servers.") var attempts: Int = 2
        @Option(help: "The time for x= checks, seconds since the epoch (default now).") var now: Int64?

        func run() throws {
            var local = StaticMailAuthDNS()
            var names = Set<String>()
            for entry in txt {
                guard let eq = entry.firstIndex(of: "=") else { throw ValidationError("--txt wants NAME=VALUE") }
                let name = String(entry[..<eq])
                local.add(name, .txt(Array(entry[entry.index(after: eq)...].utf8)))
                names.insert(LayeredDNS.key(name))
            }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { try? group.syncShutdownGracefully() }
            var remote: ResolverMailAuthDNS?
            if !servers.isEmpty {
                var config = DNSResolverConfiguration(servers: try servers.map { text in
                    guard let a = DNSResolverConfiguration.server(text) else { throw ValidationError("bad server address \(text)") }
                    return a
                })
                config.timeout = .milliseconds(Int64(timeoutMs))
                config.attempts = attempts
                remote = ResolverMailAuthDNS(resolver: DNSResolver(configuration: config), eventLoop: group.next())
            }
            let verifier = DKIMVerifier(dns: LayeredDNS(local: local, names: names, remote: remote))
            let message = Array(FileHandle.standardInput.readDataToEndOfFile())
            let clock = now ?? Int64(Date().timeIntervalSince1970)
            let results = Blocking.run { await verifier.verify(message, now: clock) }
            for r in results {
                let json: [String: Any] = [
                    "result": r.status.rawValue, "reason": r.reason, "domain": r.domain ?? NSNull(),
                    "selector": r.selector ?? NSNull(), "identity": r.identity ?? NSNull(),
                    "algorithm": r.algorithm ?? NSNull(), "headerB": r.headerB ?? NSNull(),
                    "keyBits": r.keyBits ?? NSNull(), "testing": r.testing, "resinfo": r.resinfo,
                ]
                let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            }
            if !results.contains(where: { $0.status == .pass }) { throw ExitCode(4) }
        }
    }
}

/// Keys given on the command line first, then the resolvers.
struct LayeredDNS: MailAuthDNS {
    let local: StaticMailAuthDNS
    let names: Set<String>
    let remote: ResolverMailAuthDNS?

    static func key(_ name: String) -> String {
        var n = name.lowercased()
        if n.hasSuffix(".") { n.removeLast() }
        return n
    }

    func txt(_ name: String) async -> DNSLookup<[[UInt8]]> {
        if names.contains(Self.key(name)) || remote == nil { return await local.txt(name) }
        return await remote!.txt(name)
    }
    func a(_ name: String) async -> DNSLookup<[[UInt8]]> { await remote?.a(name) ?? .nxDomain }
    func aaaa(_ name: String) async -> DNSLookup<[[UInt8]]> { await remote?.aaaa(name) ?? .nxDomain }
    func mx(_ name: String) async -> DNSLookup<[(preference: UInt16, exchange: String)]> { await remote?.mx(name) ?? .nxDomain }
    func ptr(_ address: [UInt8]) async -> DNSLookup<[String]> { await remote?.ptr(address) ?? .nxDomain }
}

/// Runs async work from a synchronous command (the command tree is synchronous).
enum Blocking {
    final class Box<T: Sendable>: @unchecked Sendable { var value: T? }

    static func run<T: Sendable>(_ work: @escaping @Sendable () async -> T) -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.value = await work()
            done.signal()
        }
        done.wait()
        return box.value!
    }
}
