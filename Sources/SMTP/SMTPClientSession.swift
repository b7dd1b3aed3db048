import MailCore

/// One outgoing SMTP connection as a pure state machine (RFC 5321 §3, §4.1):
/// the driver feeds it the server's replies and TLS events and carries out
/// the actions it returns. A connection can carry several transactions one
/// after another (`begin` when `ready` was returned).
///
/// ```
/// S: 220 mx.example.net ESMTP
/// C: EHLO cell.example.org
/// S: 250-mx.example.net
/// S: 250-PIPELINING
/// S: 250 STARTTLS
/// C: STARTTLS                      (opportunistic, or required by policy)
/// S: 220 2.0.0 Ready
///    (TLS handshake; EHLO again)
/// C: MAIL FROM:<a@example.org> SIZE=1234
/// C: RCPT TO:<b@example.net>      (sent together with PIPELINING, RFC 2920)
/// C: DATA
/// S: 250 2.1.0 Ok / 250 2.1.5 Ok / 354 Go ahead
/// C: (message, dot-stuffed) .
/// S: 250 2.0.0 Ok: queued
/// ```
public struct SMTPClientSession: Sendable {
    public enum TLSMode: Sendable, Equatable {
        /// Never STARTTLS (a relay on a trusted local socket, or TLS already on).
        case none
        /// STARTTLS when offered; plaintext when not (RFC 3207, RFC 7435).
        case opportunistic
        /// STARTTLS or give up: MTA-STS enforce, DANE, a relay with AUTH.
        case required
    }

    public struct Configuration: Sendable {
        /// The name given in EHLO/HELO.
        public var heloName: String
        public var tls: TLSMode
        /// Credentials for AUTH PLAIN/LOGIN (RFC 4954), sent only over TLS.
        public var auth: (user: String, password: String)?
        /// The connection is already TLS (implicit TLS, RFC 8314).
        public var implicitTLS: Bool

        public init(heloName: String, tls: TLSMode, auth: (user: String, password: String)? = nil, implicitTLS: Bool = false) {
            self.heloName = heloName
            self.tls = tls
            self.auth = auth
            self.implicitTLS = implicitTLS
        }
    }

    /// One message to some recipients at this server.
    public struct Transaction: Sendable, Equatable {
        public var id: String
        /// The reverse-path; "" for the null sender.
        public var from: String
        public var recipients: [String]
        public var size: Int
        /// The message has octets above 127 (BODY=8BITMIME, RFC 6152).
        public var eightBit: Bool
        /// Addresses or headers need SMTPUTF8 (RFC 6531).
        public var needsSMTPUTF8: Bool

        public init(id: String, from: String, recipients: [String], size: Int, eightBit: Bool, needsSMTPUTF8: Bool) {
            self.id = id
            self.from = from
            self.recipients = recipients
            self.size = size
            self.eightBit = eightBit
            self.needsSMTPUTF8 = needsSMTPUTF8
        }
    }

    /// What became of one recipient.
    public enum Outcome: Sendable, Equatable {
        case delivered(SMTPReply)
        /// Try again later (4xx, or the connection failed).
        case deferred(SMTPReply)
        /// Give up and report (5xx).
        case failed(SMTPReply)

        public var reply: SMTPReply {
            switch self {
            case .delivered(let r), .deferred(let r), .failed(let r): return r
            }
        }

        static func of(_ reply: SMTPReply, delivered: Bool = false) -> Outcome {
            if reply.code >= 500 { return .failed(reply) }
            if reply.code >= 400 || !delivered { return .deferred(reply) }
            return .delivered(reply)
        }
    }

    public struct TransactionResult: Sendable, Equatable {
        public var id: String
        /// In the transaction's recipient order.
        public var outcomes: [(recipient: String, outcome: Outcome)]

        public static func == (a: TransactionResult, b: TransactionResult) -> Bool {
            a.id == b.id && a.outcomes.map(\.recipient) == b.outcomes.map(\.recipient) && a.outcomes.map(\.outcome) == b.outcomes.map(\.outcome)
        }
    }

    /// Why a connection could not (or can no longer) carry mail. `reply` is
    /// the server's when it gave one; `permanent` when that was a 5xx at
    /// greeting or EHLO/HELO (the host refuses this client).
    public struct Failure: Error, Sendable, Equatable {
        public var reply: SMTPReply
        public var permanent: Bool
        /// The failure came from TLS policy (required TLS missing or failed),
        /// for TLS-RPT (RFC 8460 §4.3).
        public var tlsPolicy: Bool

        public init(_ reply: SMTPReply, permanent: Bool = false, tlsPolicy: Bool = false) {
            self.reply = reply
            self.permanent = permanent
            self.tlsPolicy = tlsPolicy
        }
    }

    public enum Action: Sendable, Equatable {
        /// Write these command lines (each ends in CRLF).
        case send(String)
        /// Start the TLS handshake now (after `220` to STARTTLS).
        case startTLS
        /// Write the transaction's message, dot-stuffed, then `.` CRLF.
        case sendMessage
        /// Idle and able to take `begin` or `quit`.
        case ready
        /// A transaction ended; the outcome of every recipient.
        case finished(TransactionResult)
        /// The connection failed; a transaction in flight is in `finished` first.
        case failed(Failure)
        /// Close the connection.
        case close
    }

    enum State: Sendable {
        case greeting
        case ehlo
        case helo
        case startTLS
        case handshaking
        case auth(step: Int, mechanism: String)
        case ready
        /// Replies still expected for the current transaction, in order.
        case transaction
        case awaitingFinal
        case resetting
        case quitting
        case closed
    }

    enum Expect: Sendable, Equatable {
        case mail
        case rcpt(Int)
        case data
        /// The lone "." sent after 354 when no recipient was accepted.
        case emptyData
    }

    public let configuration: Configuration
    var state = State.greeting
    public private(set) var capabilities: [String: String] = [:]
    public private(set) var isTLS: Bool
    public private(set) var greeting: SMTPReply?
    public private(set) var serverName: String?
    var current: Transaction?
    var outcomes: [Outcome?] = []
    var expecting: [Expect] = []
    var unsent: [String] = []
    var accepted = 0
    var mailFailed: SMTPReply?

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.isTLS = configuration.implicitTLS
    }

    public var pipelining: Bool { capabilities["PIPELINING"] != nil }
    /// The server's SIZE limit (RFC 1870), when it gave one.
    public var sizeLimit: Int? { capabilities["SIZE"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } }
    public var isReady: Bool { if case .ready = state { return true } else { return false } }

    // MARK: Events

    public mutating func received(_ reply: SMTPReply) -> [Action] {
        // RFC 5321 §3.8: 421 may come at any time; the server is closing.
        if reply.code == 421, !isQuitting { return fail(Failure(reply)) }
        switch state {
        case .greeting:
            guard reply.code == 220 else { return fail(Failure(reply, permanent: reply.code >= 500)) }
            greeting = reply
            serverName = reply.lines.first.map { String($0.prefix { $0 != " " }) }
            return ehlo()
        case .ehlo:
            if reply.code == 250 {
                readCapabilities(reply)
                return afterHello()
            }
            // RFC 5321 §4.1.4: an EHLO refused may be followed by HELO (only
            // before TLS: after STARTTLS, EHLO is required).
            if reply.code >= 500, !isTLS {
                state = .helo
                return [.send("HELO \(configuration.heloName)\r\n")]
            }
            return fail(Failure(reply, permanent: reply.code >= 500))
        case .helo:
            guard reply.code == 250 else { return fail(Failure(reply, permanent: reply.code >= 500)) }
            capabilities = [:]
            return afterHello()
        case .startTLS:
            if reply.code == 220 {
                state = .handshaking
                return [.startTLS]
            }
            if configuration.tls == .required {
                return fail(Failure(reply, tlsPolicy: true))
            }
            return afterTLSDecision(skipTLS: true)
        case .handshaking:
            // Bytes before the handshake are a protocol violation (RFC 3207 §4.2 injection).
            return fail(Failure(SMTPReply(451, "4.7.5", "unexpected reply during TLS handshake"), tlsPolicy: true))
        case .auth(let step, let mechanism):
            return authReply(reply, step: step, mechanism: mechanism)
        case .ready, .closed:
            return fail(Failure(SMTPReply(451, "4.5.0", "unexpected reply: \(reply.oneLine)")))
        case .transaction:
            return transactionReply(reply)
        case .awaitingFinal:
            var result: [Outcome?] = outcomes
            for i in result.indices where result[i] == nil { result[i] = .of(reply, delivered: true) }
            return finish(result, then: .ready)
        case .resetting:
            state = .ready
            return [.ready]
        case .quitting:
            state = .closed
            return [.close]
        }
    }

    var isQuitting: Bool { if case .quitting = state { return true } else { return false } }

    /// The TLS handshake completed: greet again (RFC 3207 §4.2: forget what
    /// was learnt before TLS).
    public mutating func tlsEstablished() -> [Action] {
        isTLS = true
        capabilities = [:]
        return ehlo()
    }

    /// The TLS handshake failed or the peer's certificate did not pass.
    public mutating func tlsFailed(_ reason: String) -> [Action] {
        fail(Failure(SMTPReply(454, "4.7.5", "TLS failed: \(reason)"), tlsPolicy: true))
    }

    /// The connection closed or timed out under us.
    public mutating func connectionLost(_ reason: String) -> [Action] {
        if case .closed = state { return [] }
        if case .quitting = state { state = .closed; return [] }
        return fail(Failure(SMTPReply(451, "4.4.2", reason)))
    }

    // MARK: Commands from the driver

    /// Starts a transaction; only when `ready`.
    public mutating func begin(_ t: Transaction) -> [Action] {
        guard case .ready = state else { return [] }
        current = t
        outcomes = Array(repeating: nil, count: t.recipients.count)
        accepted = 0
        mailFailed = nil
        // RFC 1870 §6: a message over the declared limit is refused before sending.
        if let limit = sizeLimit, t.size > limit {
            return finish(outcomes.map { _ in .failed(SMTPReply(552, "5.3.4", "message size \(t.size) exceeds the server's limit \(limit)")) }, then: .ready)
        }
        // RFC 6531 §3.4: without SMTPUTF8 at the server, such a message cannot go.
        if t.needsSMTPUTF8, capabilities["SMTPUTF8"] == nil {
            return finish(outcomes.map { _ in .failed(SMTPReply(553, "5.6.7", "the server does not support SMTPUTF8")) }, then: .ready)
        }
        var mail = "MAIL FROM:<\(t.from)>"
        if capabilities["SIZE"] != nil { mail += " SIZE=\(t.size)" }
        if t.eightBit, capabilities["8BITMIME"] != nil { mail += " BODY=8BITMIME" }
        if t.needsSMTPUTF8 { mail += " SMTPUTF8" }
        var lines = [mail + "\r\n"]
        expecting = [.mail]
        for (i, r) in t.recipients.enumerated() {
            lines.append("RCPT TO:<\(r)>\r\n")
            expecting.append(.rcpt(i))
        }
        lines.append("DATA\r\n")
        expecting.append(.data)
        state = .transaction
        if pipelining {
            // RFC 2920 §3.1: MAIL, the RCPTs and DATA go as one group.
            unsent = []
            return [.send(lines.joined())]
        }
        unsent = Array(lines.dropFirst())
        return [.send(lines[0])]
    }

    /// Ends the connection politely.
    public mutating func quit() -> [Action] {
        switch state {
        case .closed, .quitting: return []
        case .handshaking:
            state = .closed
            return [.close]
        default:
            state = .quitting
            return [.send("QUIT\r\n")]
        }
    }

    // MARK: Internals

    mutating func ehlo() -> [Action] {
        state = .ehlo
        return [.send("EHLO \(configuration.heloName)\r\n")]
    }

    mutating func readCapabilities(_ reply: SMTPReply) {
        capabilities = [:]
        serverName = reply.lines.first.map { String($0.prefix { $0 != " " }) } ?? serverName
        for line in reply.lines.dropFirst() {
            let words = line.split(separator: " ", maxSplits: 1)
            guard let key = words.first else { continue }
            capabilities[key.uppercased()] = words.count > 1 ? String(words[1]) : ""
        }
    }

    mutating func afterHello() -> [Action] {
        if !isTLS, configuration.tls != .none {
            if capabilities["STARTTLS"] != nil {
                state = .startTLS
                return [.send("STARTTLS\r\n")]
            }
            if configuration.tls == .required {
                return fail(Failure(SMTPReply(451, "4.7.4", "the server does not offer STARTTLS"), tlsPolicy: true))
            }
        }
        return afterTLSDecision(skipTLS: false)
    }

    mutating func afterTLSDecision(skipTLS: Bool) -> [Action] {
        guard let creds = configuration.auth else { state = .ready; return [.ready] }
        // Never a password in the clear (RFC 4954 §4, RFC 8314).
        guard isTLS else { return fail(Failure(SMTPReply(451, "4.7.10", "refusing AUTH without TLS"), tlsPolicy: true)) }
        let mechanisms = (capabilities["AUTH"] ?? "").uppercased().split(separator: " ").map(String.init)
        if mechanisms.contains("PLAIN") {
            state = .auth(step: 0, mechanism: "PLAIN")
            let token = Base64.encode(Array("\0\(creds.user)\0\(creds.password)".utf8))
            return [.send("AUTH PLAIN \(token)\r\n")]
        }
        if mechanisms.contains("LOGIN") {
            state = .auth(step: 0, mechanism: "LOGIN")
            return [.send("AUTH LOGIN\r\n")]
        }
        return fail(Failure(SMTPReply(451, "4.7.12", "the relay offers no AUTH PLAIN or LOGIN")))
    }

    mutating func authReply(_ reply: SMTPReply, step: Int, mechanism: String) -> [Action] {
        if reply.code == 235 {
            state = .ready
            return [.ready]
        }
        if reply.code == 334, mechanism == "LOGIN", step < 2, let creds = configuration.auth {
            state = .auth(step: step + 1, mechanism: mechanism)
            return [.send(Base64.encode(Array((step == 0 ? creds.user : creds.password).utf8)) + "\r\n")]
        }
        // A refused login is a configuration problem: keep the mail (4xx).
        return fail(Failure(SMTPReply(454, reply.enhanced ?? "4.7.0", "AUTH refused: \(reply.oneLine)")))
    }

    mutating func transactionReply(_ reply: SMTPReply) -> [Action] {
        guard !expecting.isEmpty, let t = current else { return fail(Failure(SMTPReply(451, "4.5.0", "unexpected reply"))) }
        let what = expecting.removeFirst()
        var actions: [Action] = []
        switch what {
        case .mail:
            if reply.code != 250 { mailFailed = reply }
        case .rcpt(let i):
            if let m = mailFailed {
                outcomes[i] = .of(m)
            } else if reply.code == 250 || reply.code == 251 {
                accepted += 1
            } else {
                outcomes[i] = .of(reply)
            }
        case .data:
            if reply.code == 354 {
                if accepted > 0 {
                    expecting = []
                    state = .awaitingFinal
                    return [.sendMessage]
                }
                // RFC 2920 §3.1: DATA accepted although no recipient was: end it empty.
                expecting = [.emptyData]
                return [.send(".\r\n")]
            }
            for i in outcomes.indices where outcomes[i] == nil { outcomes[i] = .of(mailFailed ?? reply) }
            return finish(outcomes, then: .resetting)
        case .emptyData:
            for i in outcomes.indices where outcomes[i] == nil { outcomes[i] = .of(reply) }
            return finish(outcomes, then: .ready)
        }
        if !pipelining {
            // One command at a time: stop after a failed MAIL or when no recipient is left to accept DATA.
            if mailFailed != nil || (expecting == [.data] && accepted == 0) {
                for i in outcomes.indices where outcomes[i] == nil { outcomes[i] = .of(mailFailed ?? reply) }
                expecting = []
                unsent = []
                return finish(outcomes, then: .resetting)
            }
            if !unsent.isEmpty { actions.append(.send(unsent.removeFirst())) }
        }
        _ = t
        return actions
    }

    /// Reports the transaction; `.ready` next, or RSET first after a failed one.
    mutating func finish(_ result: [Outcome?], then next: State) -> [Action] {
        guard let t = current else { return [] }
        let outcomes = zip(t.recipients, result).map { ($0, $1 ?? .deferred(SMTPReply(451, "4.3.0", "no reply"))) }
        current = nil
        self.outcomes = []
        let done = Action.finished(TransactionResult(id: t.id, outcomes: outcomes))
        if case .resetting = next {
            state = .resetting
            return [done, .send("RSET\r\n")]
        }
        state = .ready
        return [done, .ready]
    }

    mutating func fail(_ failure: Failure) -> [Action] {
        var actions: [Action] = []
        if let t = current {
            let outcomes = zip(t.recipients, self.outcomes).map { r, o -> (String, Outcome) in
                // A failure after the final dot was sent is the at-least-once window.
                (r, o ?? (failure.reply.code >= 500 ? .failed(failure.reply) : .deferred(failure.reply)))
            }
            actions.append(.finished(TransactionResult(id: t.id, outcomes: outcomes)))
            current = nil
        }
        state = .closed
        actions.append(.failed(failure))
        actions.append(.close)
        return actions
    }
}
