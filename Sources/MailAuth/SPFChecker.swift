import Foundation

/// SPF's check_host() (RFC 7208 §4) over an injected resolver and clock.
/// Every call returns a verdict; nothing throws.
///
///     let spf = SPFChecker(dns: ResolverMailAuthDNS(resolver: r, eventLoop: loop), receiver: "mx.example.net")
///     let v = await spf.checkMailFrom(ip: client, mailFrom: "alice@example.org", helo: "mail.example.org")
///     // v.result == .pass, v.mechanism == "ip4:192.0.2.0/24"
public struct SPFChecker: Sendable {
    public var dns: any MailAuthDNS
    public var limits: SPFLimits
    /// The `r` macro: this host's name (RFC 7208 §7.2).
    public var receiver: String
    /// The `t` macro: seconds since the epoch.
    public var now: @Sendable () -> Int64

    public init(dns: any MailAuthDNS, limits: SPFLimits = SPFLimits(), receiver: String = "unknown",
                now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }) {
        self.dns = dns
        self.limits = limits
        self.receiver = receiver
        self.now = now
    }

    /// The MAIL FROM identity (RFC 7208 §2.4): the reverse-path's domain, or
    /// for the null reverse-path "postmaster@" + the HELO name (§2.4).
    public func checkMailFrom(ip: IPAddress, mailFrom: String, helo: String) async -> SPFVerdict {
        guard !mailFrom.isEmpty else { return await checkHelo(ip: ip, helo: helo) }
        guard mailFrom.contains("@") else {
            return await checkHost(ip: ip, domain: mailFrom, sender: "postmaster@" + mailFrom, helo: helo)
        }
        return await checkHost(ip: ip, domain: SPFIdentity.domain(of: mailFrom), sender: mailFrom, helo: helo)
    }

    /// The HELO identity (RFC 7208 §2.3): <sender> is "postmaster@" + the name.
    public func checkHelo(ip: IPAddress, helo: String) async -> SPFVerdict {
        await checkHost(ip: ip, domain: helo, sender: "postmaster@" + helo, helo: helo)
    }

    /// check_host(<ip>, <domain>, <sender>) of RFC 7208 §4, with the HELO name
    /// for the `h` macro. An IPv4-mapped IPv6 address is checked as IPv4 (§5).
    public func checkHost(ip: IPAddress, domain: String, sender: String, helo: String) async -> SPFVerdict {
        var run = Evaluation(ip: ip.unmapped, sender: sender, helo: helo)
        let outcome = await evaluate(domain: domain, &run, included: false)
        return SPFVerdict(result: outcome.result, domain: SPFIdentity.queryName(domain), mechanism: outcome.mechanism,
                          explanation: outcome.explanation, problem: outcome.problem)
    }

    /// What one check carries from term to term: the counters of §4.6.4.
    struct Evaluation {
        let ip: IPAddress
        let sender: String
        let helo: String
        var dnsTerms = 0
        var voidLookups = 0
    }

    struct Outcome {
        var result: SPFResult
        var mechanism: String? = nil
        var explanation: String? = nil
        var problem: String? = nil
    }

    /// Ends the evaluation of a record early with permerror or temperror.
    struct Stop: Error {
        var result: SPFResult
        var problem: String
        static func perm(_ p: String) -> Stop { Stop(result: .permerror, problem: p) }
        static func temp(_ p: String) -> Stop { Stop(result: .temperror, problem: p) }
    }

    /// One record: §4.3 (domain), §4.4 (lookup), §4.5 (selection), §4.6
    /// (evaluation), §4.7 (default), §6.1 (redirect), §6.2 (exp). `included`
    /// is set inside `include:`, where exp is never used (§6.2).
    func evaluate(domain: String, _ run: inout Evaluation, included: Bool) async -> Outcome {
        guard SPFIdentity.isValidDomain(domain) else { return Outcome(result: .none, problem: "not a valid domain name") }
        let name = SPFIdentity.queryName(domain)
        let record: SPFRecord
        switch await dns.txt(name) {
        case .temporary(let why): return Outcome(result: .temperror, problem: "TXT lookup failed: \(why)")
        case .nxDomain, .noData: return Outcome(result: .none, problem: "no SPF record")
        case .found(let texts):
            let spf = texts.filter(SPFRecord.isSPF)
            guard !spf.isEmpty else { return Outcome(result: .none, problem: "no SPF record") }
            // RFC 7208 §4.5: more than one record is a permerror.
            guard spf.count == 1 else { return Outcome(result: .permerror, problem: "\(spf.count) SPF records") }
            do {
                record = try SPFRecord.parse(spf[0])
            } catch {
                return Outcome(result: .permerror, problem: "syntax: \(error.description)")
            }
        }
        var context = SPFMacroContext(sender: run.sender, domain: name, ip: run.ip, helo: run.helo,
                                      validatedName: nil, receiver: receiver, timestamp: now())
        do {
            for directive in record.directives {
                if directive.mechanism.queriesDNS { try count(&run) }
                if try await matches(directive.mechanism, &context, &run) {
                    var outcome = Outcome(result: directive.qualifier.result, mechanism: directive.description)
                    if outcome.result == .fail, !included, let exp = record.explanation {
                        outcome.explanation = await explain(exp, &context, &run)
                    }
                    return outcome
                }
            }
            // RFC 7208 §6.1: redirect only when no mechanism matched (an `all` makes it moot).
            if let redirect = record.redirect {
                try count(&run)
                let target = try await expandName(redirect, &context, &run)
                var outcome = await evaluate(domain: target, &run, included: included)
                if outcome.result == .none {
                    outcome = Outcome(result: .permerror, problem: "redirect to \(target): \(outcome.problem ?? "no SPF record")")
                }
                return outcome
            }
        } catch let stop as Stop {
            return Outcome(result: stop.result, problem: stop.problem)
        } catch {
            return Outcome(result: .permerror, problem: "\(error)")
        }
        return Outcome(result: .neutral)    // RFC 7208 §4.7
    }

    /// RFC 7208 §4.6.4: more than 10 DNS-querying terms is a permerror.
    func count(_ run: inout Evaluation) throws(Stop) {
        run.dnsTerms += 1
        if run.dnsTerms > limits.dnsTerms { throw .perm("more than \(limits.dnsTerms) DNS-querying terms") }
    }

    /// RFC 7208 §4.6.4: more than 2 void lookups is a permerror.
    func void(_ run: inout Evaluation, _ name: String) throws(Stop) {
        run.voidLookups += 1
        if run.voidLookups > limits.voidLookups { throw .perm("more than \(limits.voidLookups) void lookups (\(name))") }
    }

    /// Expands a domain-spec into a name to query (§7.3), computing `%{p}` when used.
    func expandName(_ spec: SPFMacroString, _ context: inout SPFMacroContext, _ run: inout Evaluation) async throws(Stop) -> String {
        if spec.usesValidatedName && context.validatedName == nil {
            context.validatedName = await validatedName(context.domain, &run)
        }
        return SPFIdentity.queryName(spec.expand(context))
    }

    func matches(_ mechanism: SPFMechanism, _ context: inout SPFMacroContext, _ run: inout Evaluation) async throws -> Bool {
        let ip = run.ip
        func target(_ spec: SPFMacroString?) async throws(Stop) -> String {
            guard let spec else { return context.domain }
            return try await expandName(spec, &context, &run)
        }
        switch mechanism {
        case .all:
            return true
        case .ip4(let network, let prefix):
            return ip.isIPv4 && ip.matches(network, prefix: prefix)
        case .ip6(let network, let prefix):
            return !ip.isIPv4 && ip.matches(network, prefix: prefix)
        case .a(let spec, let v4, let v6):
            let name = try await target(spec)
            return try await addresses(of: name, &run).contains { ip.matches($0, prefix: ip.isIPv4 ? v4 : v6) }
        case .mx(let spec, let v4, let v6):
            // RFC 7208 §5.4: the MX hosts' addresses; more than 10 MX names is a permerror (§4.6.4).
            let name = try await target(spec)
            let exchanges: [String]
            switch await dns.mx(name) {
            case .temporary(let why): throw Stop.temp("MX lookup failed: \(why)")
            case .nxDomain, .noData: try void(&run, name); return false
            case .found(let mx): exchanges = mx.sorted { $0.preference < $1.preference }.map(\.exchange)
            }
            guard exchanges.count <= limits.mxNames else { throw Stop.perm("\(name) has more than \(limits.mxNames) MX records") }
            for host in exchanges where !host.isEmpty {   // "." is a null MX (RFC 7505)
                if try await addresses(of: host, &run).contains(where: { ip.matches($0, prefix: ip.isIPv4 ? v4 : v6) }) {
                    return true
                }
            }
            return false
        case .ptr(let spec):
            // RFC 7208 §5.5: a validated name at or below the target.
            let name = try await target(spec)
            return try await validatedNames(&run).contains { SPFIdentity.isAtOrBelow($0, name) }
        case .exists(let spec):
            // RFC 7208 §5.7: an A query whatever <ip>'s family.
            let name = try await target(spec)
            switch await dns.a(name) {
            case .temporary(let why): throw Stop.temp("A lookup failed: \(why)")
            case .nxDomain, .noData: try void(&run, name); return false
            case .found(let list): return !list.isEmpty
            }
        case .include(let spec):
            // RFC 7208 §5.2: pass matches; fail, softfail, neutral do not; none is a permerror.
            let name = try await target(spec)
            let inner = await evaluate(domain: name, &run, included: true)
            switch inner.result {
            case .pass: return true
            case .fail, .softfail, .neutral: return false
            case .temperror: throw Stop.temp("include:\(name): \(inner.problem ?? "temperror")")
            case .permerror: throw Stop.perm("include:\(name): \(inner.problem ?? "permerror")")
            case .none: throw Stop.perm("include:\(name) has no SPF record")
            }
        }
    }

    /// A or AAAA records of `name`, as <ip>'s family asks (RFC 7208 §5).
    func addresses(of name: String, _ run: inout Evaluation) async throws(Stop) -> [IPAddress] {
        let answer = run.ip.isIPv4 ? await dns.a(name) : await dns.aaaa(name)
        switch answer {
        case .temporary(let why): throw .temp("address lookup failed: \(why)")
        case .nxDomain, .noData: try void(&run, name); return []
        case .found(let list): return list.compactMap(IPAddress.init(octets:))
        }
    }

    /// The names of <ip> whose addresses include <ip> (RFC 7208 §5.5): at
    /// most 10 PTR names looked at; a failing address lookup skips a name.
    func validatedNames(_ run: inout Evaluation) async throws(Stop) -> [String] {
        let names: [String]
        switch await dns.ptr(run.ip.octets) {
        case .temporary: return []                       // "fails to match"
        case .nxDomain, .noData: try void(&run, ReverseName.of(run.ip.octets)); return []
        case .found(let list): names = Array(list.prefix(limits.ptrNames))
        }
        var valid: [String] = []
        for name in names {
            let answer = run.ip.isIPv4 ? await dns.a(name) : await dns.aaaa(name)
            if case .found(let list) = answer, list.contains(run.ip.octets) { valid.append(name) }
        }
        return valid
    }

    /// The `p` macro (RFC 7208 §7.3): a validated name equal to <domain>,
    /// else one below it, else any; "unknown" when there is none or DNS fails.
    func validatedName(_ domain: String, _ run: inout Evaluation) async -> String {
        guard let names = try? await validatedNames(&run), !names.isEmpty else { return "unknown" }
        let bare = names.map(SPFIdentity.queryName)
        return bare.first { $0.lowercased() == domain.lowercased() }
            ?? bare.first { SPFIdentity.isAtOrBelow($0, domain) }
            ?? bare[0]
    }

    /// RFC 7208 §6.2: the one TXT record at the expanded exp= name, expanded
    /// as an explanation-string; nil on any DNS problem, none or several
    /// records, or a syntax error. These lookups do not count (§4.6.4).
    func explain(_ spec: SPFMacroString, _ context: inout SPFMacroContext, _ run: inout Evaluation) async -> String? {
        guard let name = try? await expandName(spec, &context, &run), SPFIdentity.isValidDomain(name),
              case .found(let texts) = await dns.txt(name), texts.count == 1,
              let text = String(validating: texts[0], as: UTF8.self),
              let explanation = try? SPFMacroString.parse(Substring(text), explanation: true) else { return nil }
        if explanation.usesValidatedName && context.validatedName == nil {
            context.validatedName = await validatedName(context.domain, &run)
        }
        return explanation.expand(context)
    }
}
