import ArgumentParser
import DNS
import Foundation
import MailAuth
import NIOCore
import NIOPosix

/// Resolver options shared by `spf` and `dmarc`.
struct MailAuthDNSOptions: ParsableArguments {
    @Option(name: .customLong("dns-server"), help: "A resolver, HOST:PORT or [IPv6]:PORT (repeatable; default: /etc/resolv.conf).")
    var servers: [String] = []
    @Option(name: .customLong("dns-timeout-ms"), help: "Milliseconds one server has to answer one try.")
    var timeoutMs: Int = 2000
    @Option(name: .customLong("dns-attempts"), help: "Rounds over the servers.")
    var attempts: Int = 2

    func configuration() throws -> DNSResolverConfiguration {
        var servers = try self.servers.map { text in
            guard let a = DNSResolverConfiguration.server(text) else { throw ValidationError("bad DNS server \(text)") }
            return a
        }
        if servers.isEmpty {
            servers = DNSResolverConfiguration.servers(resolvConf: (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? "")
        }
        guard !servers.isEmpty else { throw ValidationError("no DNS server: give --dns-server") }
        var config = DNSResolverConfiguration(servers: servers)
        config.timeout = .milliseconds(Int64(timeoutMs))
        config.attempts = attempts
        return config
    }

    /// Runs `body` with the engine's resolver on an event loop of its own.
    func withDNS<T: Sendable>(_ body: @escaping @Sendable (ResolverMailAuthDNS) async -> T) throws -> T {
        let config = try configuration()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let dns = ResolverMailAuthDNS(resolver: DNSResolver(configuration: config), eventLoop: loop)
        return try loop.makeFutureWithTask { await body(dns) }.wait()
    }
}

func printJSON(_ object: [String: Any?]) throws {
    let clean = object.mapValues { $0 ?? NSNull() }
    let data = try JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

/// `postcell-engine spf`: check_host() (RFC 7208) as the SMTP server runs
/// it, printed as one JSON line: result, mechanism, explanation, domain,
/// problem and the Authentication-Results resinfo. Exit 0 whatever the result.
struct SPFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spf",
        abstract: "Check SPF (RFC 7208) for a client address and MAIL FROM, print the verdict as JSON.")

    @Option(help: "The SMTP client's address (IPv4 or IPv6).") var ip: String
    @Option(help: "The MAIL FROM address; \"\" for the null reverse-path (then the HELO name is checked).") var sender: String
    @Option(help: "The HELO/EHLO name.") var helo: String = ""
    @Flag(help: "Check the HELO identity instead of MAIL FROM (RFC 7208 §2.3).") var heloIdentity = false
    @Option(help: "This host's name, for the %{r} macro.") var receiver: String = "unknown"
    @OptionGroup var dns: MailAuthDNSOptions

    func run() throws {
        guard let address = IPAddress(ip) else { throw ValidationError("bad IP address \(ip)") }
        let (sender, helo, receiver, heloIdentity) = (self.sender, self.helo, self.receiver, self.heloIdentity)
        let verdict = try dns.withDNS { dns in
            let checker = SPFChecker(dns: dns, receiver: receiver)
            return heloIdentity ? await checker.checkHelo(ip: address, helo: helo)
                                : await checker.checkMailFrom(ip: address, mailFrom: sender, helo: helo)
        }
        try printJSON([
            "result": verdict.result.rawValue, "mechanism": verdict.mechanism, "explanation": verdict.explanation,
            "domain": verdict.domain, "problem": verdict.problem,
            "authenticationResults": AuthenticationResult.spf(verdict, mailFrom: heloIdentity ? "" : sender, helo: helo).description,
        ])
    }
}

/// `postcell-engine dmarc`: DMARC (RFC 7489) policy discovery and
/// evaluation for a From domain, given the SPF and DKIM results, printed as
/// one JSON line. Exit 0 whatever the result.
struct DMARCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmarc",
        abstract: "Evaluate DMARC (RFC 7489) for a From domain given SPF and DKIM results, print the verdict as JSON.")

    @Option(help: "The RFC 5322.From domain.") var fromDomain: String
    @Option(help: "The SPF result and its domain, RESULT:DOMAIN (e.g. pass:example.org).") var spf: String
    @Option(help: "A DKIM result, RESULT:DOMAIN[:SELECTOR] (repeatable).") var dkim: [String] = []
    @Option(help: "The Public Suffix List file.") var publicSuffixList: String = PublicSuffixList.debianPath
    @Option(help: "Seed for the pct= sample (default: system randomness).") var seed: UInt64?
    @OptionGroup var dns: MailAuthDNSOptions

    func run() throws {
        let spfParts = spf.split(separator: ":", maxSplits: 1).map(String.init)
        guard spfParts.count == 2, let spfResult = SPFResult(rawValue: spfParts[0].lowercased()) else {
            throw ValidationError("--spf wants RESULT:DOMAIN with RESULT one of \(SPFResult.allCases.map(\.rawValue))")
        }
        let dkimInputs = try dkim.map { text in
            let p = text.split(separator: ":").map(String.init)
            guard (2...3).contains(p.count), let r = DMARCDKIMInput.Result(rawValue: p[0].lowercased()) else {
                throw ValidationError("--dkim wants RESULT:DOMAIN[:SELECTOR], got \(text)")
            }
            return DMARCDKIMInput(result: r, domain: p[1], selector: p.count == 3 ? p[2] : "")
        }
        let suffixes: PublicSuffixList
        do {
            suffixes = try PublicSuffixList(contentsOfFile: publicSuffixList)
        } catch {
            throw ValidationError("cannot read the Public Suffix List at \(publicSuffixList) (Debian package publicsuffix)")
        }
        let (from, seed) = (fromDomain, self.seed)
        let spfInput = DMARCSPFInput(result: spfResult, domain: spfParts[1])
        let verdict = try dns.withDNS { dns in
            let checker = DMARCChecker(dns: dns, suffixes: suffixes)
            if let seed {
                var rng = SplitMix(state: seed)
                return await checker.check(fromDomain: from, spf: spfInput, dkim: dkimInputs, using: &rng)
            }
            var rng = SystemRandomNumberGenerator()
            return await checker.check(fromDomain: from, spf: spfInput, dkim: dkimInputs, using: &rng)
        }
        try printJSON([
            "result": verdict.result.rawValue, "disposition": verdict.disposition.rawValue,
            "fromDomain": verdict.fromDomain, "policyDomain": verdict.policyDomain,
            "organizationalDomain": suffixes.organizationalDomain(of: verdict.fromDomain),
            "policy": verdict.policy?.rawValue, "record": verdict.record?.description,
            "spfAligned": verdict.spfAligned, "dkimAlignedDomain": verdict.dkimAlignedDomain,
            "sampledOut": verdict.sampledOut, "problem": verdict.problem,
            "authenticationResults": AuthenticationResult.dmarc(verdict).description,
        ])
    }
}

/// SplitMix64, for a repeatable pct= sample with --seed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
