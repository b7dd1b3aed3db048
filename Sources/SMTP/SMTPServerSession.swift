import MailCore

/// What a listener allows (docs/SMTP.md): `mx` receives for the cell's
/// domains without AUTH; `submission` requires AUTH over TLS and relays.
public enum SMTPRole: String, Hashable, Sendable, Codable {
    case mx
    case submission
}

/// Per-session limits and facts the state machine needs.
public struct SMTPSessionConfiguration: Hashable, Sendable {
    public var hostname: String
    public var role: SMTPRole
    public var tlsAvailable: Bool
    public var maxMessageBytes: Int
    public var maxRecipients: Int
    public var maxCommands: Int
    public var maxErrors: Int
    /// Failed AUTH attempts in one session before it is closed.
    public var maxAuthFailures: Int
    /// RFC 5321 §4.5.3.1.4 sets 512; extensions need more (default 4096).
    public var maxLineLength: Int

    public init(hostname: String, role: SMTPRole, tlsAvailable: Bool, maxMessageBytes: Int = 36_700_160,
                maxRecipients: Int = 100, maxCommands: Int = 10_000, maxErrors: Int = 20, maxAuthFailures: Int = 3,
                maxLineLength: Int = SMTPCommandParser.defaultMaxLineLength) {
        self.maxLineLength = max(512, maxLineLength)
        self.hostname = hostname
        self.role = role
        self.tlsAvailable = tlsAvailable
        self.maxMessageBytes = maxMessageBytes
        self.maxRecipients = maxRecipients
        self.maxCommands = maxCommands
        self.maxErrors = maxErrors
        self.maxAuthFailures = maxAuthFailures
    }
}

/// A mail transaction: the envelope gathered between MAIL and the end of data.
public struct SMTPTransaction: Hashable, Sendable {
    public var sender: ReversePath
    public var parameters: MailParameters
    public var recipients: [MailAddress] = []
    public var rejectedRecipients = 0
    public var usesBDAT = false
    public var bytesReceived = 0

    public init(sender: ReversePath, parameters: MailParameters) {
        self.sender = sender
        self.parameters = parameters
    }
}

/// The SMTP server's session logic as a pure state machine (RFC 5321 §4.1,
/// RFC 3207, RFC 4954, RFC 3030, RFC 2920). Events go in; `Action`s come out
/// for a driver to carry out. No I/O, no clock.
///
/// ```
/// C: EHLO client.example     -> [.send(250-...)]
/// C: MAIL FROM:<a@b.example>  -> [.checkSender(...)]   driver: senderChecked(nil) -> [.send(250)]
/// C: RCPT TO:<u@example.test> -> [.checkRecipient(...)] driver: recipientChecked(nil) -> [.send(250)]
/// C: DATA                    -> [.send(354), .receiveData]
///    ...data...               driver: dataEnded(...) -> [.deliver(tx)]; delivered(reply) -> [.send(reply)]
/// ```
public struct SMTPServerSession: Sendable {
    public enum Action: Hashable, Sendable {
        case send(SMTPReply)
        case sendAndClose(SMTPReply)
        /// The 220 reply has been queued: flush it, drop any buffered input,
        /// and start TLS; then call `tlsEstablished()`.
        case startTLS
        /// Verify credentials; answer with `authenticated(_:)`.
        case authenticate(user: String, password: String)
        /// Decide whether the sender is acceptable; answer with `senderChecked(_:)`.
        case checkSender(ReversePath, MailParameters)
        /// Decide on one recipient; answer with `recipientChecked(_:)`.
        case checkRecipient(MailAddress, SMTPTransaction)
        /// Switch input to DATA framing and open a message for the transaction.
        case receiveData(SMTPTransaction)
        /// Read exactly `size` bytes of BDAT content; keep them in the message
        /// (opening it on the first chunk) or discard them; then call `chunkRead()`.
        case receiveChunk(size: Int, keep: Bool, transaction: SMTPTransaction?)
        /// Commit the message durably; answer with `delivered(_:)`.
        case deliver(SMTPTransaction)
        /// Throw away the partly received message.
        case discardMessage
    }

    enum State: Hashable, Sendable {
        case fresh
        case greeted
        case authPlain
        case authLoginUser
        case authLoginPassword(user: String)
        case waiting
        case data
        case chunk(last: Bool, error: SMTPReply?)
        case closed
    }

    public let configuration: SMTPSessionConfiguration
    public private(set) var isTLS: Bool
    public private(set) var helo: String?
    public private(set) var esmtp = false
    public private(set) var authenticatedUser: String?
    public private(set) var transaction: SMTPTransaction?
    var state: State = .fresh
    var commands = 0
    var errors = 0
    var authFailures = 0
    var pendingMail: (ReversePath, MailParameters)?
    var pendingRecipient: MailAddress?

    public init(configuration: SMTPSessionConfiguration, isTLS: Bool = false) {
        self.configuration = configuration
        self.isTLS = isTLS
    }

    /// Whether the driver should frame input as command lines.
    public var expectsCommandLine: Bool {
        switch state {
        case .fresh, .greeted, .authPlain, .authLoginUser, .authLoginPassword: return true
        default: return false
        }
    }

    /// Lines may be longer while AUTH is in progress (RFC 4954 §4).
    public var inAuthExchange: Bool {
        switch state {
        case .authPlain, .authLoginUser, .authLoginPassword: return true
        default: return false
        }
    }

    public mutating func greeting() -> [Action] {
        state = .greeted
        return [.send(SMTPReply(220, nil, "\(configuration.hostname) ESMTP Postcell"))]
    }

    /// A command line was too long; it has been discarded.
    public mutating func lineTooLong() -> [Action] {
        if inAuthExchange { state = .greeted }
        return fail(.lineTooLong)
    }

    /// One line of input in command framing, without its line ending.
    public mutating func receivedLine(_ line: [UInt8]) -> [Action] {
        commands += 1
        if commands > configuration.maxCommands {
            state = .closed
            return [.sendAndClose(.tooManyCommands)]
        }
        switch state {
        case .authPlain:
            state = .greeted
            return authPlainResponse(line)
        case .authLoginUser:
            guard let user = decodeSASL(line) else { return saslAbortOrBad(line) }
            state = .authLoginPassword(user: String(decoding: user, as: UTF8.self))
            return [.send(SMTPReply(334, nil, "UGFzc3dvcmQ6"))]
        case .authLoginPassword(let user):
            guard let pass = decodeSASL(line) else { return saslAbortOrBad(line) }
            state = .waiting
            return [.authenticate(user: user, password: String(decoding: pass, as: UTF8.self))]
        case .greeted, .fresh:
            break
        default:
            return fail(.localError)
        }
        switch SMTPCommandParser.parse(line) {
        case .failure(let reply):
            return fail(reply)
        case .success(let command):
            return handle(command)
        }
    }

    mutating func handle(_ command: SMTPCommand) -> [Action] {
        switch command {
        case .helo(let name), .ehlo(let name):
            helo = name
            if case .ehlo = command { esmtp = true } else { esmtp = false }
            transaction = nil
            return [.send(esmtp ? ehloReply() : SMTPReply(250, nil, configuration.hostname))]
        case .noop:
            return [.send(.ok)]
        case .rset:
            let hadData = transaction != nil
            transaction = nil
            return hadData ? [.discardMessage, .send(.ok)] : [.send(.ok)]
        case .quit:
            state = .closed
            return [.sendAndClose(.bye)]
        case .help:
            return [.send(.help)]
        case .vrfy:
            return fail(.vrfyDisabled)
        case .expn:
            return fail(.expnDisabled)
        case .startTLS:
            if isTLS { return fail(.tlsActive) }
            guard configuration.tlsAvailable else { return fail(.tlsUnavailable) }
            guard helo != nil else { return fail(.needHelo) }
            state = .waiting
            return [.send(.readyForTLS), .startTLS]
        case .auth(let mechanism, let initial):
            return auth(mechanism: mechanism, initial: initial)
        case .mail(let path, let params):
            guard helo != nil else { return fail(.needHelo) }
            guard transaction == nil else { return fail(.nestedMail) }
            if configuration.role == .submission && authenticatedUser == nil { return fail(.authRequired) }
            if let size = params.size, size > configuration.maxMessageBytes { return fail(.messageTooBig) }
            pendingMail = (path, params)
            state = .waiting
            return [.checkSender(path, params)]
        case .rcpt(let path, _):
            guard helo != nil else { return fail(.needHelo) }
            guard let tx = transaction else { return fail(.needMail) }
            if tx.recipients.count >= configuration.maxRecipients { return fail(.tooManyRecipients) }
            let address: MailAddress
            switch path {
            case .postmaster: address = MailAddress(localPart: "postmaster", domain: "")
            case .mailbox(let m): address = m
            }
            if !address.isASCII && !tx.parameters.smtpUTF8 { return fail(.needUTF8) }
            pendingRecipient = address
            state = .waiting
            return [.checkRecipient(address, tx)]
        case .data:
            guard helo != nil else { return fail(.needHelo) }
            guard let tx = transaction else { return fail(.needMail) }
            if tx.usesBDAT { return fail(.dataAfterBDAT) }
            guard !tx.recipients.isEmpty else { return fail(tx.rejectedRecipients > 0 ? .noValidRecipients : .needRcpt) }
            state = .data
            return [.send(.startData), .receiveData(tx)]
        case .bdat(let size, let last):
            // The chunk's bytes follow the command whatever we answer, so they
            // are always read (RFC 3030 §2), kept only when the chunk is good.
            if size > configuration.maxMessageBytes + 65536 {
                state = .closed
                return [.sendAndClose(.messageTooBig)]
            }
            var error: SMTPReply?
            if helo == nil { error = .needHelo }
            else if transaction == nil { error = .needMail }
            else if transaction!.recipients.isEmpty { error = transaction!.rejectedRecipients > 0 ? .noValidRecipients : .needRcpt }
            else if transaction!.bytesReceived + size > configuration.maxMessageBytes { error = .messageTooBig }
            let first = error == nil && !transaction!.usesBDAT
            if error == nil {
                transaction!.usesBDAT = true
                transaction!.bytesReceived += size
            }
            state = .chunk(last: last, error: error)
            return [.receiveChunk(size: size, keep: error == nil, transaction: first ? transaction : nil)]
        }
    }

    func ehloReply() -> SMTPReply {
        var lines = [configuration.hostname, "PIPELINING", "SIZE \(configuration.maxMessageBytes)", "8BITMIME",
                     "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING"]
        if configuration.tlsAvailable && !isTLS { lines.append("STARTTLS") }
        if configuration.role == .submission && isTLS && authenticatedUser == nil { lines.append("AUTH PLAIN LOGIN") }
        return SMTPReply(250, nil, lines)
    }

    // MARK: AUTH (RFC 4954, RFC 4616 PLAIN, LOGIN as widely deployed)

    mutating func auth(mechanism: String, initial: String?) -> [Action] {
        guard configuration.role == .submission else { return fail(.authNotEnabled) }
        guard helo != nil else { return fail(.needHelo) }
        guard isTLS else { return fail(.encryptionRequired) }
        guard authenticatedUser == nil else { return fail(.alreadyAuthenticated) }
        guard transaction == nil else { return fail(SMTPReply(503, "5.5.1", "AUTH not allowed during a mail transaction")) }
        switch mechanism {
        case "PLAIN":
            guard let initial else {
                state = .authPlain
                return [.send(SMTPReply(334, nil, ""))]
            }
            return authPlainResponse(Array(initial.utf8))
        case "LOGIN":
            guard let initial else {
                state = .authLoginUser
                return [.send(SMTPReply(334, nil, "VXNlcm5hbWU6"))]
            }
            guard let user = decodeSASL(Array(initial.utf8)) else { return fail(.authBadEncoding) }
            state = .authLoginPassword(user: String(decoding: user, as: UTF8.self))
            return [.send(SMTPReply(334, nil, "UGFzc3dvcmQ6"))]
        default:
            return fail(.authMechanismUnknown)
        }
    }

    /// RFC 4616: `[authzid] NUL authcid NUL passwd`.
    mutating func authPlainResponse(_ line: [UInt8]) -> [Action] {
        guard let decoded = decodeSASL(line) else { return saslAbortOrBad(line) }
        let parts = decoded.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[1].isEmpty else { state = .greeted; return fail(.authBadEncoding) }
        let authz = String(decoding: parts[0], as: UTF8.self)
        let user = String(decoding: parts[1], as: UTF8.self)
        // Acting as another identity is not offered.
        if !authz.isEmpty && authz.lowercased() != user.lowercased() {
            state = .greeted
            return authenticated(.invalid)
        }
        state = .waiting
        return [.authenticate(user: user, password: String(decoding: parts[2], as: UTF8.self))]
    }

    mutating func saslAbortOrBad(_ line: [UInt8]) -> [Action] {
        state = .greeted
        if line == [UInt8(ascii: "*")] { return fail(.authCancelled) }
        return fail(.authBadEncoding)
    }

    func decodeSASL(_ line: [UInt8]) -> [UInt8]? {
        if line == [UInt8(ascii: "=")] { return [] }
        return Base64.decode(line)
    }

    public mutating func authenticated(_ verdict: AuthVerdict) -> [Action] {
        state = .greeted
        switch verdict {
        case .success(let user):
            authenticatedUser = user
            return [.send(.authSuccess)]
        case .temporaryFailure:
            return fail(.authTemporary)
        case .suspended:
            return fail(.authSuspended)
        case .invalid:
            authFailures += 1
            if authFailures >= configuration.maxAuthFailures {
                state = .closed
                return [.sendAndClose(.authTooManyFailures)]
            }
            return fail(.authInvalid)
        }
    }

    // MARK: Verdicts from the driver

    /// nil accepts the sender; a reply refuses it.
    public mutating func senderChecked(_ refusal: SMTPReply?) -> [Action] {
        state = .greeted
        guard let (path, params) = pendingMail else { return fail(.localError) }
        pendingMail = nil
        if let refusal { return fail(refusal) }
        transaction = SMTPTransaction(sender: path, parameters: params)
        return [.send(SMTPReply(250, "2.1.0", "Ok"))]
    }

    public mutating func recipientChecked(_ refusal: SMTPReply?) -> [Action] {
        state = .greeted
        guard let address = pendingRecipient, transaction != nil else { return fail(.localError) }
        pendingRecipient = nil
        if let refusal {
            transaction!.rejectedRecipients += 1
            return fail(refusal)
        }
        if !transaction!.recipients.contains(address) { transaction!.recipients.append(address) }
        return [.send(SMTPReply(250, "2.1.5", "Ok"))]
    }

    /// The end-of-data line arrived; `size` is the content size, `overflow`
    /// whether it went past the limit (content then was not kept).
    public mutating func dataEnded(size: Int, overflow: Bool) -> [Action] {
        guard var tx = transaction else { state = .greeted; return fail(.localError) }
        if overflow || size > configuration.maxMessageBytes {
            transaction = nil
            state = .greeted
            return [.discardMessage] + fail(.messageTooBig)
        }
        tx.bytesReceived = size
        transaction = tx
        state = .waiting
        return [.deliver(tx)]
    }

    /// The bytes of the current BDAT chunk have been read.
    public mutating func chunkRead() -> [Action] {
        guard case .chunk(let last, let error) = state else { return fail(.localError) }
        state = .greeted
        if let error {
            // A failed chunk fails the transaction (RFC 3030 §2).
            let hadMessage = transaction?.usesBDAT ?? false
            transaction = nil
            return (hadMessage ? [.discardMessage] : []) + fail(error)
        }
        if last {
            state = .waiting
            return [.deliver(transaction!)]
        }
        return [.send(SMTPReply(250, "2.0.0", "\(transaction!.bytesReceived) octets received"))]
    }

    public mutating func delivered(_ reply: SMTPReply) -> [Action] {
        transaction = nil
        state = .greeted
        return reply.isPositive ? [.send(reply)] : fail(reply)
    }

    /// RFC 3207 §4.2: after TLS starts, all earlier knowledge is discarded.
    public mutating func tlsEstablished() {
        isTLS = true
        helo = nil
        esmtp = false
        transaction = nil
        state = .greeted
    }

    mutating func fail(_ reply: SMTPReply) -> [Action] {
        errors += 1
        if errors > configuration.maxErrors {
            state = .closed
            return [.sendAndClose(.tooManyErrors)]
        }
        if reply.code == 421 {
            state = .closed
            return [.sendAndClose(reply)]
        }
        return [.send(reply)]
    }
}

