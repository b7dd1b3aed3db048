/// One DKIM signature's outcome as DMARC needs it (RFC 7489 §4.2): the
/// result and the signing domain (d=), with the selector (s=) for
/// Authentication-Results. The DKIM verifier produces these; kept minimal
/// so that it can adapt them from its own verdicts.
public struct DMARCDKIMInput: Hashable, Sendable {
    /// RFC 8601 §2.7.1 DKIM results.
    public enum Result: String, Hashable, Sendable, CaseIterable {
        case pass, fail, neutral, none, policy, temperror, permerror
    }

    public var result: Result
    public var domain: String
    public var selector: String

    public init(result: Result, domain: String, selector: String = "") {
        self.result = result
        self.domain = domain
        self.selector = selector
    }
}

/// The SPF outcome DMARC reads (RFC 7489 §4.2): the result and the domain it
/// was for, the MAIL FROM domain or, for the null sender, the HELO name.
public struct DMARCSPFInput: Hashable, Sendable {
    public var result: SPFResult
    public var domain: String

    public init(result: SPFResult, domain: String) {
        self.result = result
        self.domain = domain
    }

    public init(_ verdict: SPFVerdict) { self.init(result: verdict.result, domain: verdict.domain) }
}

/// RFC 7489 §11.2 / RFC 8601 §2.7 "dmarc" results.
public enum DMARCResult: String, Hashable, Sendable, CaseIterable {
    case none, pass, fail, temperror, permerror
}

/// How a DMARC check came out: the result, and for failing mail the
/// disposition the domain's policy asks for after pct= sampling.
public struct DMARCVerdict: Hashable, Sendable {
    public var result: DMARCResult
    /// What to do with the message (RFC 7489 §6.6.4): none unless the result is fail.
    public var disposition: DMARCPolicy
    /// The RFC 5322.From domain.
    public var fromDomain: String
    /// Where the record was found: the From domain or its Organizational Domain.
    public var policyDomain: String?
    public var record: DMARCRecord?
    /// The policy the record sets for this domain (p=, or sp= for a subdomain), before sampling.
    public var policy: DMARCPolicy?
    /// SPF passed for a domain aligned with the From domain.
    public var spfAligned = false
    /// The d= of the first passing DKIM signature aligned with the From domain.
    public var dkimAlignedDomain: String?
    /// pct= left this failing message out: the next weaker disposition applied.
    public var sampledOut = false
    /// Why the result is none, temperror or permerror (for logs and comments).
    public var problem: String?

    public init(result: DMARCResult, disposition: DMARCPolicy = .none, fromDomain: String, problem: String? = nil) {
        self.result = result
        self.disposition = disposition
        self.fromDomain = fromDomain
        self.problem = problem
    }
}

/// What policy discovery found (RFC 7489 §6.6.3).
public enum DMARCDiscovery: Hashable, Sendable {
    case found(DMARCRecord, domain: String)
    /// No record at the From domain nor at its Organizational Domain.
    case none
    /// A DNS failure that may pass.
    case temporary(String)
    /// Records that cannot be used: several, or one that is invalid.
    case invalid(String, domain: String)
}

/// DMARC (RFC 7489) over an injected resolver and Public Suffix List.
///
///     let dmarc = DMARCChecker(dns: dns, suffixes: try PublicSuffixList(contentsOfFile: PublicSuffixList.debianPath))
///     var rng = SystemRandomNumberGenerator()
///     let v = await dmarc.check(fromDomain: "example.org", spf: DMARCSPFInput(spfVerdict),
///                               dkim: [DMARCDKIMInput(result: .pass, domain: "mail.example.org", selector: "s1")], using: &rng)
///     // v.result == .pass, v.disposition == .none
public struct DMARCChecker: Sendable {
    public var dns: any MailAuthDNS
    public var suffixes: PublicSuffixList

    public init(dns: any MailAuthDNS, suffixes: PublicSuffixList) {
        self.dns = dns
        self.suffixes = suffixes
    }

    /// Discovers the policy and evaluates it; `generator` draws the pct= sample.
    public func check<R: RandomNumberGenerator>(fromDomain: String, spf: DMARCSPFInput, dkim: [DMARCDKIMInput],
                                                using generator: inout R) async -> DMARCVerdict {
        let discovery = await discover(fromDomain: fromDomain)
        return evaluate(discovery, fromDomain: fromDomain, spf: spf, dkim: dkim, using: &generator)
    }

    /// RFC 7489 §6.6.3: the TXT records at _dmarc.<From domain>, else at
    /// _dmarc.<Organizational Domain>; only those beginning v=DMARC1 count.
    public func discover(fromDomain: String) async -> DMARCDiscovery {
        let from = Self.bare(fromDomain)
        guard !from.isEmpty else { return .none }
        let first = await lookup(from)
        guard case .none = first else { return first }
        let organizational = suffixes.organizationalDomain(of: from)
        guard organizational != from else { return .none }
        return await lookup(organizational)
    }

    func lookup(_ domain: String) async -> DMARCDiscovery {
        switch await dns.txt("_dmarc." + domain) {
        case .temporary(let why): return .temporary("_dmarc.\(domain) TXT: \(why)")
        case .nxDomain, .noData: return .none
        case .found(let texts):
            let records = texts.filter(DMARCRecord.isDMARC)
            if records.isEmpty { return .none }
            guard records.count == 1 else { return .invalid("\(records.count) DMARC records", domain: domain) }
            do {
                return .found(try DMARCRecord.parse(String(decoding: records[0], as: UTF8.self)), domain: domain)
            } catch {
                return .invalid(error.description, domain: domain)
            }
        }
    }

    /// RFC 7489 §4.2, §6.6.2, §6.6.4: pass when SPF or a DKIM signature
    /// passes for an aligned domain; otherwise fail, with the policy for the
    /// domain (sp= for a subdomain of the Organizational Domain), weakened
    /// one step for mail pct= leaves out. Pure: no DNS, randomness injected.
    public func evaluate<R: RandomNumberGenerator>(_ discovery: DMARCDiscovery, fromDomain: String, spf: DMARCSPFInput,
                                                   dkim: [DMARCDKIMInput], using generator: inout R) -> DMARCVerdict {
        let from = Self.bare(fromDomain)
        let record: DMARCRecord, policyDomain: String
        switch discovery {
        case .none: return DMARCVerdict(result: .none, fromDomain: from, problem: "no DMARC record")
        case .temporary(let why): return DMARCVerdict(result: .temperror, fromDomain: from, problem: why)
        case .invalid(let why, let domain):
            var v = DMARCVerdict(result: .permerror, fromDomain: from, problem: why)
            v.policyDomain = domain
            return v
        case .found(let r, let d): (record, policyDomain) = (r, d)
        }
        var verdict = DMARCVerdict(result: .fail, fromDomain: from)
        verdict.record = record
        verdict.policyDomain = policyDomain
        // §6.3 sp: applies to subdomains when the record was found at the Organizational Domain.
        let policy = record.policyDefaulted ? DMARCPolicy.none
            : (policyDomain != from ? record.subdomainPolicy ?? record.policy : record.policy)
        verdict.policy = policy
        verdict.spfAligned = spf.result == .pass && aligned(spf.domain, from, record.spfAlignment)
        verdict.dkimAlignedDomain = dkim.first { $0.result == .pass && aligned($0.domain, from, record.dkimAlignment) }
            .map { Self.bare($0.domain) }
        if verdict.spfAligned || verdict.dkimAlignedDomain != nil {
            verdict.result = .pass
            return verdict
        }
        verdict.disposition = policy
        // §6.3 pct: a sample of failing mail gets the policy, the rest the next weaker one.
        if record.percent < 100 && Int.random(in: 0..<100, using: &generator) >= record.percent {
            verdict.sampledOut = true
            verdict.disposition = policy.weaker
        }
        return verdict
    }

    /// RFC 7489 §3.1: strict alignment wants the same name, relaxed the same
    /// Organizational Domain.
    public func aligned(_ domain: String, _ from: String, _ mode: DMARCAlignment) -> Bool {
        let a = Self.bare(domain), b = Self.bare(from)
        guard !a.isEmpty, !b.isEmpty else { return false }
        if a == b { return true }
        return mode == .relaxed && suffixes.organizationalDomain(of: a) == suffixes.organizationalDomain(of: b)
    }

    /// Lowercased, without a final dot.
    static func bare(_ domain: String) -> String {
        var d = domain.lowercased()
        if d.hasSuffix(".") { d.removeLast() }
        return d
    }
}
