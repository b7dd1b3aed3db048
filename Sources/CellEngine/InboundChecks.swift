import DNS
import MailAuth
import NIOCore
import Synchronization

/// The checks on one message received by an `mx` listener, started as soon
/// as their inputs are known so that their DNS questions overlap the
/// transfer of the message:
///
/// - at DATA (or the first BDAT): SPF for MAIL FROM and for HELO (RFC 7208
///   §2.3, §2.4), which need only the envelope;
/// - when the header section is in: DMARC policy discovery for the From
///   domains (RFC 7489 §6.6.3) and the key lookups of every DKIM-Signature
///   field (RFC 6376 §6.1.2);
/// - at the end of data (`finish`): DKIM verification over the whole
///   message, then DMARC evaluation, which are CPU only by then.
///
/// Reads untrusted input (the message, DNS answers); needs no privilege.
final class InboundChecks: Sendable {
    struct SPFOutcome: Sendable {
        /// The MAIL FROM check (HELO's for the null sender); nil without a client address.
        var mailFrom: SPFVerdict?
        var results: [AuthenticationResult] = []
    }

    let setup: MailAuthSetup
    let dns: PrefetchingDNS
    let spf: Task<SPFOutcome, Never>
    let discoveries = Mutex<[String: Task<DMARCDiscovery, Never>]>([:])

    /// `client`: the SMTP client's address as text (nil for a unix-socket peer
    /// without PROXY header: SPF is then not evaluated).
    init(setup: MailAuthSetup, dns base: any MailAuthDNS, client: String?, helo: String, mailFrom: String,
         receiver: String, clock: @escaping @Sendable () -> Int64) {
        self.setup = setup
        let dns = PrefetchingDNS(base)
        self.dns = dns
        let checker = SPFChecker(dns: dns, receiver: receiver, now: clock)
        let ip = client.flatMap { MailAuth.IPAddress($0) }
        spf = Task {
            guard let ip else {
                let none = AuthenticationResult(method: "spf", result: "none", comment: "client address unknown",
                                                properties: [mailFrom.isEmpty ? AuthenticationProperty("smtp", "helo", helo)
                                                                              : AuthenticationProperty("smtp", "mailfrom", mailFrom)])
                return SPFOutcome(mailFrom: nil, results: [none])
            }
            // RFC 7208 §2.3: HELO is checked on its own as well, when it is a
            // name and not already the identity (null sender, §2.4).
            let checkHelo = !mailFrom.isEmpty && SPFIdentity.isValidDomain(helo)
            async let heloVerdict: SPFVerdict? = checkHelo ? checker.checkHelo(ip: ip, helo: helo) : nil
            let main = await checker.checkMailFrom(ip: ip, mailFrom: mailFrom, helo: helo)
            var out = SPFOutcome(mailFrom: main, results: [.spf(main, mailFrom: mailFrom, helo: helo)])
            if let h = await heloVerdict { out.results.append(.spf(h, mailFrom: "", helo: helo)) }
            return out
        }
    }

    var dmarcChecker: DMARCChecker? { setup.suffixes.map { DMARCChecker(dns: dns, suffixes: $0) } }

    /// The header section is complete: start DMARC discovery and the DKIM key
    /// lookups. `header` holds at least the section.
    func headerReceived(_ header: [UInt8], _ section: HeaderSection) {
        if let checker = dmarcChecker {
            let domains = FromDomains.of(header, section)
            if domains.count <= InboundPolicy.maxFromDomains {
                for d in domains { _ = discovery(d, checker) }
            }
        }
        guard section.fields.contains(where: { $0.name == "dkim-signature" }), let end = section.end else { return }
        let v = DKIMVerification(message: DKIMMessage(Array(header[..<end])), now: 0)
        for case .needsKey(let name, _) in v.steps { dns.prefetchTXT(name) }
    }

    func discovery(_ domain: String, _ checker: DMARCChecker) -> Task<DMARCDiscovery, Never> {
        discoveries.withLock { d in
            if let t = d[domain] { return t }
            let t = Task { await checker.discover(fromDomain: domain) }
            d[domain] = t
            return t
        }
    }

    /// The verdicts for the whole message (`now`: seconds since the epoch,
    /// for DKIM x=). `message` is as received; our own trace field may be on
    /// top of it (it is not among the fields a signer signs).
    func finish(_ message: [UInt8], now: Int64) async -> InboundVerdict {
        var verdict = InboundVerdict()
        let section = HeaderSection(message)
        let spf = await self.spf.value
        verdict.spf = spf.results
        if section.fields.contains(where: { $0.name == "dkim-signature" }) {
            verdict.dkim = await DKIMVerifier(dns: dns).verify(message, now: now)
        }
        guard let checker = dmarcChecker else { return verdict }
        let domains = FromDomains.of(message, section)
        if domains.isEmpty {
            verdict.fromProblem = .noDomain
            return verdict
        }
        if domains.count > InboundPolicy.maxFromDomains {
            verdict.fromProblem = .tooManyDomains(domains.count)
            return verdict
        }
        // RFC 7489 §4.2: SPF's domain is the MAIL FROM domain, or HELO's for the null sender.
        let spfInput = spf.mailFrom.map(DMARCSPFInput.init) ?? DMARCSPFInput(result: .none, domain: "")
        let dkimInput = verdict.dkim.compactMap { r -> DMARCDKIMInput? in
            guard let d = r.domain, let result = DMARCDKIMInput.Result(rawValue: r.status.rawValue) else { return nil }
            return DMARCDKIMInput(result: result, domain: d, selector: r.selector ?? "")
        }
        var rng = SystemRandomNumberGenerator()
        for d in domains {
            let discovery = await self.discovery(d, checker).value
            let v = checker.evaluate(discovery, fromDomain: d, spf: spfInput, dkim: dkimInput, using: &rng)
            verdict.dmarc.append(InboundPolicy.settle(v, spf: spf.mailFrom, dkim: verdict.dkim) { checker.aligned($0, d, $1) })
        }
        return verdict
    }

    /// The message was abandoned: stop what has not started.
    func cancel() {
        spf.cancel()
        for t in discoveries.withLock({ Array($0.values) }) { t.cancel() }
    }
}

/// A `MailAuthDNS` that remembers the TXT lookups of one message, so that a
/// lookup started early (a DKIM key, while the body is still arriving) is
/// not asked again when the verifier needs it. Other types pass through.
final class PrefetchingDNS: MailAuthDNS, Sendable {
    let base: any MailAuthDNS
    let txts = Mutex<[String: Task<DNSLookup<[[UInt8]]>, Never>]>([:])

    init(_ base: any MailAuthDNS) { self.base = base }

    static func key(_ name: String) -> String {
        var n = name.lowercased()
        if n.hasSuffix(".") { n.removeLast() }
        return n
    }

    func prefetchTXT(_ name: String) { _ = lookup(name) }

    func lookup(_ name: String) -> Task<DNSLookup<[[UInt8]]>, Never> {
        let base = self.base
        return txts.withLock { t in
            if let existing = t[Self.key(name)] { return existing }
            let task = Task { await base.txt(name) }
            t[Self.key(name)] = task
            return task
        }
    }

    func txt(_ name: String) async -> DNSLookup<[[UInt8]]> { await lookup(name).value }
    func a(_ name: String) async -> DNSLookup<[[UInt8]]> { await base.a(name) }
    func aaaa(_ name: String) async -> DNSLookup<[[UInt8]]> { await base.aaaa(name) }
    func mx(_ name: String) async -> DNSLookup<[(preference: UInt16, exchange: String)]> { await base.mx(name) }
    func ptr(_ address: [UInt8]) async -> DNSLookup<[String]> { await base.ptr(address) }
}
