import DNS
import MailCore
import NIOCore
import NIOPosix
import NIOSSL
import SMTP

/// One connection's worth of work for a destination: finds its servers (MX
/// hosts, or the relay), connects to each in turn until one greets and
/// accepts EHLO (and TLS when required), then carries the destination's
/// jobs one transaction after another. Lives on the queue's event loop.
final class OutboundConnection: SMTPClientDelegate, @unchecked Sendable {
    let queue: OutboundQueue
    let destination: OutboundQueue.Destination
    var targets: [(name: String, address: SocketAddress, secure: Bool)] = []
    /// The current server's usable TLSA records (DANE, RFC 7672), when it has some.
    var dane: [TLSARecord]?
    var index = 0
    var remote: String?
    /// A session reached `ready` at the current server.
    var established = false
    var current: OutboundQueue.Job?
    var lastFailure = SMTPReply(451, "4.4.1", "no server could be reached")
    var lastPermanent = false
    /// The destination's MTA-STS policy, when it has one (RFC 8461).
    var policy: MTASTSPolicy?
    /// The current server's name, for TLS-RPT.
    var serverName = ""
    var usedTLS = false

    init(queue: OutboundQueue, destination: OutboundQueue.Destination) {
        self.queue = queue
        self.destination = destination
    }

    var configuration: OutboundConfiguration { queue.configuration }

    func start() {
        routes().whenComplete { result in
            switch result {
            case .success(.hosts(let hosts)):
                self.targets = hosts.flatMap { h in h.addresses.map { (h.name, $0, h.secure) } }
                self.connectNext()
            case .success(.failed(let reply)):
                self.queue.failAll(self.destination, reply, remote: nil)
                self.queue.connectionEnded(self.destination)
            case .failure(let error):
                self.queue.failAll(self.destination, SMTPReply(451, "4.4.3", "\(error)"), remote: nil)
                self.queue.connectionEnded(self.destination)
            }
        }
    }

    /// The servers to try: the relay's address, or the MX route.
    func routes() -> EventLoopFuture<MXRoute> {
        let loop = queue.loop
        guard let relay = configuration.relay else {
            let domain = destination.key, resolver = queue.resolver, config = configuration
            return queue.mtaSTS.policy(for: domain, resolver: resolver, tls: queue.verifyingContext(), port: config.mtaSTSPort,
                                       now: queue.clock(), on: loop).flatMap { policy -> EventLoopFuture<MXRoute> in
                self.policy = policy
                return MXResolver(resolver: resolver, port: config.port, ipv6: config.ipv6).route(domain, on: loop)
            }.map { route in
                // RFC 8461 §4.1: under `enforce`, only MX hosts the policy names.
                guard let p = self.policy, p.mode == .enforce, case .hosts(let hosts) = route else { return route }
                let allowed = hosts.filter { p.matches($0.name) }
                if allowed.isEmpty {
                    self.queue.tlsReport(domain: domain, policyType: nil, policy: p, mx: hosts.first?.name ?? "", result: "validation-failure")
                    return .failed(SMTPReply(451, "4.7.5", "no MX host of \(domain) matches its MTA-STS policy"))
                }
                return .hosts(allowed)
            }
        }
        if let path = relay.path {
            guard let a = try? SocketAddress(unixDomainSocketPath: path) else {
                return loop.makeSucceededFuture(.failed(SMTPReply(451, "4.4.1", "bad relay socket path \(path)")))
            }
            return loop.makeSucceededFuture(.hosts([MXHost(name: "relay", preference: 0, addresses: [a], secure: false)]))
        }
        let host = relay.host ?? "localhost"
        if let a = try? SocketAddress(ipAddress: host, port: relay.port) {
            return loop.makeSucceededFuture(.hosts([MXHost(name: host, preference: 0, addresses: [a], secure: false)]))
        }
        // The relay by name: its addresses (no MX lookup, RFC 5321 §5.1 does not apply to a smarthost).
        let mx = MXResolver(resolver: queue.resolver, port: relay.port, ipv6: configuration.ipv6)
        return mx.addresses([MXHost(name: host, preference: 0, addresses: [], secure: false)], on: loop).map { hosts, temporary in
            let usable = hosts.filter { !$0.addresses.isEmpty }
            if usable.isEmpty { return .failed(SMTPReply(451, "4.4.3", temporary ?? "relay \(host) has no address")) }
            return .hosts(usable)
        }
    }

    func connectNext() {
        guard index < targets.count else {
            // Every server refused or failed before a transaction: a 5xx only
            // when the last one refused this client outright.
            let reply = lastPermanent ? lastFailure : SMTPReply(lastFailure.code >= 500 ? 451 : lastFailure.code,
                                                                 lastFailure.code >= 500 ? "4.4.1" : lastFailure.enhanced, lastFailure.lines)
            queue.failAll(destination, reply, remote: remote)
            queue.connectionEnded(destination)
            return
        }
        let (name, address, secure) = targets[index]
        index += 1
        guard secure, configuration.relay == nil, let port = address.port,
              let tlsaName = DNSName("_\(port)._tcp.\(name)") else {
            dane = nil
            connect(name, address)
            return
        }
        // RFC 7672 §2.2: a host reached through validated MX and address
        // answers has its TLSA records looked up; validated usable ones make
        // TLS with DANE authentication mandatory.
        queue.resolver.query(tlsaName, .tlsa, on: queue.loop).whenComplete { result in
            switch result {
            case .success(let answer) where answer.rcode == .noError || answer.rcode == .nxDomain:
                var records: [TLSARecord] = []
                for r in answer.records(.tlsa) {
                    if case .tlsa(let u, let s, let m, let d) = r.data { records.append(TLSARecord(usage: u, selector: s, matchingType: m, data: d)) }
                }
                let usable = records.filter(\.isUsable)
                self.dane = answer.authenticated && !usable.isEmpty ? usable : nil
                self.connect(name, address)
            default:
                // §2.2.1: a failed TLSA lookup at a secure host: not this host.
                self.serverName = name
                self.queue.tlsReport(domain: self.destination.key, policyType: "tlsa", policy: nil, mx: name, result: "tlsa-invalid")
                self.lastFailure = SMTPReply(451, "4.7.5", "TLSA lookup for \(name) failed")
                self.lastPermanent = false
                self.connectNext()
            }
        }
    }

    func connect(_ name: String, _ address: SocketAddress) {
        established = false
        remote = address.pathname != nil ? name : "\(name)[\(address.ipAddress ?? "")]"
        serverName = name
        usedTLS = false
        let (session, tls) = sessionSettings(serverName: name)
        let implicit = session.configuration.implicitTLS
        let timeout = configuration.commandTimeout
        ClientBootstrap(group: queue.loop)
            .connectTimeout(configuration.connectTimeout)
            .channelInitializer { channel in
                do {
                    if implicit, let tls { try channel.pipeline.syncOperations.addHandler(try tls.makeHandler()) }
                    try channel.pipeline.syncOperations.addHandler(SMTPClientHandler(session: session, delegate: self, tls: tls, timeout: timeout))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(to: address)
            .whenFailure { error in
                self.lastFailure = SMTPReply(451, "4.4.1", "connect to \(self.remote ?? name): \(error)")
                self.lastPermanent = false
                self.connectNext()
            }
    }

    /// The session's settings and TLS for one server: opportunistic STARTTLS
    /// for MX hosts; for the relay, what its configuration says.
    func sessionSettings(serverName: String) -> (SMTPClientSession, SMTPClientTLS?) {
        let helo = configuration.hostname
        guard let relay = configuration.relay else {
            if let records = dane, let context = queue.daneContext() {
                // DANE before MTA-STS (RFC 8461 §2).
                let host = serverName
                let tls = SMTPClientTLS(context: context, serverHostname: host, verify: { chain, promise in
                    switch DANEVerifier.verify(chain: chain, records: records, hostname: host) {
                    case .verified: promise.succeed(.certificateVerified)
                    case .failed: promise.succeed(.failed)
                    }
                })
                return (SMTPClientSession(configuration: .init(heloName: helo, tls: .required)), tls)
            }
            if let p = policy, p.mode == .enforce {
                // RFC 8461 §4.2: TLS with a certificate valid for this MX host, or no delivery.
                let tls = queue.verifyingContext().map { SMTPClientTLS(context: $0, serverHostname: serverName) }
                return (SMTPClientSession(configuration: .init(heloName: helo, tls: .required)), tls)
            }
            let tls = queue.opportunisticTLS.map { SMTPClientTLS(context: $0, serverHostname: serverName) }
            return (SMTPClientSession(configuration: .init(heloName: helo, tls: tls == nil ? .none : .opportunistic)), tls)
        }
        let auth: (user: String, password: String)? = relay.username.map { ($0, relay.password ?? "") }
        let context = relay.verifyCertificate ? queue.verifyingContext() : queue.opportunisticTLS
        let tls = context.map { SMTPClientTLS(context: $0, serverHostname: relay.host ?? serverName) }
        switch relay.tls {
        case .none:
            return (SMTPClientSession(configuration: .init(heloName: helo, tls: .none, auth: auth)), nil)
        case .starttls:
            return (SMTPClientSession(configuration: .init(heloName: helo, tls: .required, auth: auth)), tls)
        case .implicit:
            return (SMTPClientSession(configuration: .init(heloName: helo, tls: .required, auth: auth, implicitTLS: true)), tls)
        }
    }

    // MARK: SMTPClientDelegate

    /// Waits until the last transaction's outcome is durable, then takes the next job.
    var lastRecorded: EventLoopFuture<Void>?

    func nextTransaction(_ session: SMTPClientSession) -> EventLoopFuture<(SMTPClientSession.Transaction, ByteBuffer)?> {
        if !established, configuration.relay == nil {
            queue.tlsReport(domain: destination.key, policyType: dane != nil ? "tlsa" : nil, policy: policy, mx: serverName,
                            result: session.isTLS ? "success" : "starttls-not-supported")
        }
        established = true
        let gate = lastRecorded ?? queue.loop.makeSucceededVoidFuture()
        lastRecorded = nil
        return gate.recover { _ in }.map { () -> (SMTPClientSession.Transaction, ByteBuffer)? in
            guard let (job, envelope, message) = self.queue.takeJob(self.destination) else { return nil }
            self.current = job
            let needsUTF8 = !envelope.from.utf8.allSatisfy { $0 < 0x80 } || job.recipients.contains { !$0.utf8.allSatisfy { $0 < 0x80 } }
            let t = SMTPClientSession.Transaction(id: job.id, from: envelope.from, recipients: job.recipients, size: message.count,
                                                  eightBit: message.contains { $0 >= 0x80 }, needsSMTPUTF8: needsUTF8)
            return (t, ByteBuffer(bytes: message))
        }
    }

    func finished(_ result: SMTPClientSession.TransactionResult, session: SMTPClientSession) {
        guard let job = current else { return }
        current = nil
        lastRecorded = queue.record(job, result.outcomes.map { ($0.recipient, $0.outcome) }, remote: remote)
    }

    func ended(_ failure: SMTPClientSession.Failure?, session: SMTPClientSession) {
        if let f = failure, !established {
            if f.tlsPolicy, configuration.relay == nil {
                let text = f.reply.oneLine.lowercased()
                let kind = text.contains("starttls") ? "starttls-not-supported"
                    : (text.contains("hostname") || text.contains("host name") ? "certificate-host-mismatch"
                    : (text.contains("expired") ? "certificate-expired" : "validation-failure"))
                queue.tlsReport(domain: destination.key, policyType: dane != nil ? "tlsa" : nil, policy: policy, mx: serverName,
                                result: dane != nil && kind == "validation-failure" ? "dane-required" : kind)
            }
            lastFailure = f.reply
            lastPermanent = f.permanent
            queue.logger.notice("outbound connection failed", metadata: ["destination": "\(destination.key)", "relay": "\(remote ?? "")", "reply": "\(f.reply.oneLine)"])
            connectNext()
            return
        }
        if let f = failure {
            // The server went away after carrying mail: what is left waits for
            // the next attempt rather than a loop of reconnections.
            queue.failAll(destination, f.reply.code >= 500 ? SMTPReply(451, "4.4.2", f.reply.lines) : f.reply, remote: remote)
        }
        queue.connectionEnded(destination)
    }
}
