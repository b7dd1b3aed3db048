import DNS
import MailAuth
import NIOCore

/// The checks on one message received by an `mx` listener, started as soon
/// as their inputs are known so that their DNS questions overlap the
/// transfer of the message:
///
/// - at DATA (or the first BDAT): SPF for MAIL FROM and for HELO (RFC 7208
///   §2.3, §2.4), which need only the envelope;
/// - when the header section is in: the DNS questions of DMARC policy
///   discovery for the From domains (RFC 7489 §6.6.3) and the key lookups of
///   every DKIM-Signature field (RFC 6376 §6.1.2), whose answers wait in the
///   resolver's cache;
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
    let dns: any MailAuthDNS
    /// Starts a TXT lookup whose answer lands in the resolver's cache, for
    /// `finish` to find there (no task, no waiting: called on the event loop).
    let prefetch: @Sendable (String) -> Void
    let spf: Task<SPFOutcome, Never>

    /// `client`: the SMTP client's address as text (nil for a unix-socket peer
    /// without PROXY header: SPF is then not evaluated).
    init(setup: MailAuthSetup, dns: any MailAuthDNS, prefetch: @escaping @Sendable (String) -> Void = { _ in },
         client: String?, helo: String, mailFrom: String, receiver: String, clock: @escaping @Sendable () -> Int64) {
        self.setup = setup
        self.dns = dns
        self.prefetch = prefetch
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
            // name and not already the identity (null sender, §2.4). When it
            // is the MAIL FROM domain the same record gives the same answer.
            let sameName = SPFIdentity.queryName(helo).lowercased() == SPFIdentity.queryName(SPFIdentity.domain(of: mailFrom)).lowercased()
            let checkHelo = !mailFrom.isEmpty && !sameName && SPFIdentity.isValidDomain(helo)
            async let heloVerdict: SPFVerdict? = checkHelo ? checker.checkHelo(ip: ip, helo: helo) : nil
            let main = await checker.checkMailFrom(ip: ip, mailFrom: mailFrom, helo: helo)
            var out = SPFOutcome(mailFrom: main, results: [.spf(main, mailFrom: mailFrom, helo: helo)])
            if let h = await heloVerdict {
                out.results.append(.spf(h, mailFrom: "", helo: helo))
            } else if !mailFrom.isEmpty, sameName {
                var h = main
                h.domain = SPFIdentity.queryName(helo)
                out.results.append(.spf(h, mailFrom: "", helo: helo))
            }
            return out
        }
    }

    var dmarcChecker: DMARCChecker? { setup.suffixes.map { DMARCChecker(dns: dns, suffixes: $0) } }

    /// The header section is complete: start the DMARC policy lookups
    /// (RFC 7489 §6.6.3: the From domain's, and its Organizational Domain's)
    /// and the DKIM key lookups, so that their answers are cached by the end
    /// of data. `header` holds at least the section.
    func headerReceived(_ header: [UInt8], _ section: HeaderSection) {
        if let suffixes = setup.suffixes {
            let domains = FromDomains.of(header, section)
            if domains.count <= InboundPolicy.maxFromDomains {
                for d in domains {
                    prefetch("_dmarc." + d)
                    let organizational = suffixes.organizationalDomain(of: d)
                    if organizational != d { prefetch("_dmarc." + organizational) }
                }
            }
        }
        guard section.fields.contains(where: { $0.name == "dkim-signature" }), let end = section.end else { return }
        let v = DKIMVerification(message: DKIMMessage(Array(header[..<end])), now: 0)
        for case .needsKey(let name, _) in v.steps { prefetch(name) }
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
            let discovery = await checker.discover(fromDomain: d)
            let v = checker.evaluate(discovery, fromDomain: d, spf: spfInput, dkim: dkimInput, using: &rng)
            verdict.dmarc.append(InboundPolicy.settle(v, spf: spf.mailFrom, dkim: verdict.dkim) { checker.aligned($0, d, $1) })
        }
        return verdict
    }

    /// The message was abandoned: stop what has not started.
    func cancel() { spf.cancel() }
}
