import DNS
import MailAuth
import MailCore
import MailStore
import NIOCore
import SMTP

/// A message kept in memory until the end of data, for the work that must
/// see all of it before its first byte is written, because what it adds goes
/// on top: the inbound checks (Authentication-Results, RFC 8601 §5) and DKIM
/// signing (DKIM-Signature, RFC 6376 §5.6). Nothing is copied: the bytes are
/// written to the message file once, at the end, after the new fields.
///
/// A message longer than `MessageWriter.maxHeldBytes` is written to its file
/// as it arrives (spilled), like any other, and at the end it is read back
/// and rewritten behind the new fields: one extra copy, for large messages only.
struct MessageHold {
    enum Purpose {
        /// `mx`: SPF, DKIM and DMARC (InboundChecks).
        case check(InboundChecks)
        /// Submission to remote recipients with signing keys configured.
        case sign
    }

    var purpose: Purpose
    var setup: MailAuthSetup
    var bytes: [UInt8] = []
    /// Where the search for the end of the header section resumes.
    var scanFrom = 0
    var headerSeen = false
    var spilled = false
}

/// What the work at the end of data made of a held message.
struct PreparedMessage: @unchecked Sendable {
    var message: IncomingMessage?
    var disposition: InboundDisposition
    /// For the log line: "spf=pass dkim=pass dmarc=pass", "dkim signed d=…".
    var summary: String
}

extension MessageWriter {
    /// Messages up to this size are held in memory (MessageHold); 64 KiB
    /// messages at 1000 sessions stay under 64 MiB.
    static let maxHeldBytes = 1 << 20

    /// Whether this transaction's message must be held, and for what.
    static func hold(engine: EngineState, context: SMTPSessionContext, transaction: SMTPTransaction) -> MessageHold? {
        guard var hold = purpose(engine: engine, context: context, transaction: transaction) else { return nil }
        // SIZE= (RFC 1870), when given, spares the array its regrowths.
        if let size = transaction.parameters.size, size > 0 { hold.bytes.reserveCapacity(min(size, maxHeldBytes) + 256) }
        return hold
    }

    static func purpose(engine: EngineState, context: SMTPSessionContext, transaction: SMTPTransaction) -> MessageHold? {
        let s = engine.snapshot
        let setup = s.mailAuth
        switch context.role {
        case .mx:
            guard setup.checks else { return nil }
            let resolver = s.resolver, loop = engine.eventLoop
            let checks = InboundChecks(
                setup: setup, dns: ResolverMailAuthDNS(resolver: resolver, eventLoop: loop),
                prefetch: { name in
                    guard let n = DNSName(name), resolver.cached(n, .txt) == nil else { return }
                    _ = resolver.query(n, .txt, on: loop)
                },
                client: context.client.host, helo: context.helo ?? "", mailFrom: transaction.sender.address?.description ?? "",
                receiver: s.config.hostname, clock: engine.clock)
            return MessageHold(purpose: .check(checks), setup: setup)
        case .submission:
            guard !setup.signers.isEmpty else { return nil }
            // Only mail that leaves the cell is signed (local copies share the file).
            let remote = transaction.recipients.contains { r in
                let a = r.domain.isEmpty ? MailAddress(localPart: r.localPart, domain: s.directory.firstDomain) : r
                switch s.directory.resolve(a) {
                case .notOurDomain: return true
                case .deliver(_, let remote): return !remote.isEmpty
                case .unknown: return false
                }
            }
            return remote ? MessageHold(purpose: .sign, setup: setup) : nil
        }
    }

    /// Content while held: kept, with the header section's end looked for
    /// (the checks' DNS questions start there) until the size limit.
    func appendHeld(_ buffer: inout ByteBuffer) {
        hold!.bytes += buffer.readableBytesView
        if !hold!.headerSeen {
            var from = hold!.scanFrom
            let end = HeaderSection.findEnd(hold!.bytes, from: &from)
            hold!.scanFrom = from
            if let end {
                hold!.headerSeen = true
                if case .check(let checks) = hold!.purpose {
                    checks.headerReceived(hold!.bytes, HeaderSection(hold!.bytes, limit: end))
                }
            }
        }
        if hold!.bytes.count > MessageWriter.maxHeldBytes { spill() }
    }

    /// Over the limit: from here on the message goes to its file as it comes.
    func spill() {
        guard hold != nil, !hold!.spilled else { return }
        hold!.spilled = true
        header = hold!.bytes
        hold!.bytes = []
        var from = 0
        writeHeader(through: HeaderSection.findEnd(header, from: &from) ?? 0)
    }

    /// The end of data for a held message: the checks or the signing off the
    /// event loop, the file written, then the delivery as usual (or a refusal).
    func commitHeld(_ transaction: SMTPTransaction) -> EventLoopFuture<SMTPReply> {
        let hold = self.hold!
        self.hold = nil
        guard let message else { return eventLoop.makeSucceededFuture(MessageWriter.reply(for: openFailure!)) }
        // Our trace field (and, on submission, Message-ID/Date) before the content.
        var prefix: [UInt8] = []
        if !hold.spilled {
            prefix = receivedHeader()
            if context.role == .submission {
                var from = 0
                let end = HeaderSection.findEnd(hold.bytes, from: &from) ?? hold.bytes.count
                prefix += addedFields(MessageWriter.fieldNames(Array(hold.bytes[..<end])), id: message.id)
            }
        }
        self.message = nil
        let store = engine.store, now = received, content = hold.bytes, fixed = prefix
        let logger = engine.logger, session = context.id, loop = eventLoop
        let writer = NIOLoopBound(self, eventLoop: eventLoop)
        return eventLoop.makeFutureWithTask {
            await MessageWriter.prepare(message, hold: hold, content: content, prefix: fixed, store: store, now: now)
        }.flatMap { prepared in
            guard let message = prepared.message else {
                if case .reject(let reply) = prepared.disposition {
                    logger.info("refused", metadata: ["session": "\(session)", "auth": "\(prepared.summary)"])
                    return loop.makeSucceededFuture(reply)
                }
                logger.warning("not stored", metadata: ["session": "\(session)", "reason": "\(prepared.summary)"])
                return loop.makeSucceededFuture(.insufficientStorage)
            }
            return writer.value.store(message, transaction, mailbox: prepared.disposition == .junk ? "Junk" : "INBOX", summary: prepared.summary)
        }
    }

    /// Runs the checks or signs, and writes the message file: the new fields,
    /// `prefix`, then the content (without forged Authentication-Results).
    /// A spilled message is read back from its file and written to a new one.
    static func prepare(_ message: IncomingMessage, hold: MessageHold, content held: [UInt8], prefix: [UInt8],
                        store: MailStore, now: Int64) async -> PreparedMessage {
        var content = held
        if hold.spilled {
            if message.failure != nil { return PreparedMessage(message: message, disposition: .inbox, summary: "") }
            do {
                content = try DurableFile.readAll(message.tmpPath)
            } catch {
                message.discard()
                return PreparedMessage(message: nil, disposition: .inbox, summary: "cannot read back: \(error)")
            }
        }
        var fields: [UInt8] = []
        var removed: [Range<Int>] = []
        var disposition = InboundDisposition.inbox
        var summary = ""
        switch hold.purpose {
        case .check(let checks):
            var verdict = await checks.finish(content, now: now)
            disposition = InboundPolicy.decide(&verdict, enforcement: hold.setup.enforcement)
            let results = verdict.results
            summary = results.map { "\($0.method)=\($0.result)" }.joined(separator: " ")
            if case .reject = disposition {
                message.discard()
                return PreparedMessage(message: nil, disposition: disposition, summary: summary)
            }
            fields = InboundPolicy.field(authservID: hold.setup.authservID, results)
            removed = InboundPolicy.forged(content, HeaderSection(content), authservID: hold.setup.authservID)
        case .sign:
            let domains = FromDomains.of(content, HeaderSection(content))
            let signers = hold.setup.signers(for: domains)
            if !signers.isEmpty {
                let signed = DKIMSigning.fields(prefix.isEmpty ? content : prefix + content, signers: signers, now: now)
                fields = signed.fields
                summary = signers.map { "dkim d=\($0.domain) s=\($0.selector)" }.joined(separator: ", ")
                if !signed.failures.isEmpty { summary += " (not signed: " + signed.failures.joined(separator: "; ") + ")" }
            }
        }
        var target = message
        if hold.spilled {
            do {
                target = try store.newMessage()
            } catch {
                message.discard()
                return PreparedMessage(message: nil, disposition: disposition, summary: "cannot rewrite: \(error)")
            }
        }
        target.write(fields)
        target.write(prefix)
        content.withUnsafeBytes { all in
            for r in InboundPolicy.kept(content.count, removing: removed) { target.write(UnsafeRawBufferPointer(rebasing: all[r])) }
        }
        if hold.spilled { message.discard() }
        return PreparedMessage(message: target, disposition: disposition, summary: summary)
    }
}
