import Logging
import MailCore
import MailQueue
import MailStore
import NIOCore
import SMTP
#if canImport(Glibc)
import Glibc
#endif

/// The engine's `SMTPMessageSink`: writes the trace header and the content to
/// a file in `store/tmp/` as it arrives, holding only the header section in
/// memory (to add `Message-ID:`/`Date:` on submission), then hands the file
/// to the group-commit scheduler. A message that inbound checks or DKIM
/// signing must see whole first is held in memory instead (MessageHold,
/// MessageWriter+Hold.swift).
final class MessageWriter: SMTPMessageSink {
    let engine: EngineState
    let context: SMTPSessionContext
    let eventLoop: EventLoop
    let received: Int64
    var message: IncomingMessage?
    var openFailure: StoreFailure?
    var header: [UInt8] = []
    var headerDone = false
    /// Header sections longer than this are passed through unexamined.
    static let maxHeldHeader = 256 * 1024

    let smtpUTF8: Bool
    /// Set while the message is held in memory until the end of data.
    var hold: MessageHold?

    init(engine: EngineState, context: SMTPSessionContext, transaction: SMTPTransaction, eventLoop: EventLoop, now: Int64) {
        self.engine = engine
        self.context = context
        self.smtpUTF8 = transaction.parameters.smtpUTF8
        self.eventLoop = eventLoop
        self.received = now
        do {
            message = try engine.store.newMessage()
        } catch let e as FileSystemError {
            openFailure = .storage(e.description)
        } catch {
            openFailure = .storage("\(error)")
        }
        if message != nil { hold = MessageWriter.hold(engine: engine, context: context, transaction: transaction) }
    }

    func append(_ bytes: inout ByteBuffer) {
        guard let message else { return }
        if hold != nil && !hold!.spilled {
            appendHeld(&bytes)
            return
        }
        if headerDone {
            bytes.withUnsafeReadableBytes { message.write($0) }
            return
        }
        header += bytes.readableBytesView
        if let end = MessageWriter.headerEnd(header) {
            writeHeader(through: end)
        } else if header.count > MessageWriter.maxHeldHeader {
            writeHeader(through: 0)
        }
    }

    /// Index just past the blank line ending the header section, or nil.
    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        if bytes.starts(with: [13, 10]) { return 0 }
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 2
        }
        return nil
    }

    /// Writes the trace header, any added fields, then what is held.
    /// `end` is the length of the header section (0 when unknown).
    func writeHeader(through end: Int) {
        guard let message, !headerDone else { return }
        headerDone = true
        var prefix = receivedHeader()
        if context.role == .submission {
            prefix += addedFields(MessageWriter.fieldNames(Array(header[0..<(end > 0 ? end : header.count)])), id: message.id)
        }
        message.write(prefix)
        message.write(header)
        header = []
    }

    /// What submission adds to a header without them (RFC 5322 §3.6: Date
    /// and, SHOULD, Message-ID; RFC 6409 §8.2, §8.3).
    func addedFields(_ names: Set<String>, id: String) -> [UInt8] {
        var out: [UInt8] = []
        if !names.contains("message-id") { out += Array("Message-ID: <\(id)@\(engine.hostname)>\r\n".utf8) }
        if !names.contains("date") { out += Array("Date: \(RFC5322Date.format(received))\r\n".utf8) }
        return out
    }

    /// Lower-cased names of the header fields (continuation lines skipped).
    static func fieldNames(_ section: [UInt8]) -> Set<String> {
        var names = Set<String>()
        for line in section.split(separator: 10, omittingEmptySubsequences: true) {
            guard let first = line.first, first != 32, first != 9, let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            names.insert(String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased().trimmed(" \t"))
        }
        return names
    }

    /// RFC 5321 §4.4 trace field. Submission names neither the client's
    /// address nor its EHLO name (the sender's home network stays private).
    func receivedHeader() -> [UInt8] {
        let id = message?.id ?? "-"
        // RFC 3848 transmission types; RFC 6531 §3.7.3 prefixes UTF8.
        let proto = (smtpUTF8 ? "UTF8SMTP" : context.esmtp ? "ESMTP" : "SMTP") + (context.isTLS ? "S" : "") + (context.authenticatedUser != nil ? "A" : "")
        var text: String
        if context.role == .submission {
            text = "Received: by \(engine.hostname) (Postcell) with \(proto)\r\n\tid \(id)"
        } else {
            let helo = String((context.helo ?? "unknown").unicodeScalars.filter { $0.value > 32 && $0.value < 127 && $0 != "(" && $0 != ")" }.map(Character.init)).prefix(255)
            let addr = context.client.host.map { " ([\($0.contains(":") ? "IPv6:" + $0 : $0)])" } ?? ""
            text = "Received: from \(helo)\(addr)\r\n\tby \(engine.hostname) (Postcell) with \(proto) id \(id)"
        }
        text += ";\r\n\t\(RFC5322Date.format(received))\r\n"
        return Array(text.utf8)
    }

    func commit(_ transaction: SMTPTransaction) -> EventLoopFuture<SMTPReply> {
        if hold != nil { return commitHeld(transaction) }
        if !headerDone { writeHeader(through: 0) }
        guard let message else { return eventLoop.makeSucceededFuture(MessageWriter.reply(for: openFailure!)) }
        self.message = nil
        return store(message, transaction, mailbox: "INBOX", summary: "")
    }

    /// Hands the written message to the scheduler: local recipients' `mailbox`
    /// (INBOX, or Junk for quarantined mail), the outbound spool for remote ones.
    func store(_ message: IncomingMessage, _ transaction: SMTPTransaction, mailbox: String, summary: String) -> EventLoopFuture<SMTPReply> {
        let directory = engine.directory
        var localUsers: [String] = []
        var remote: [String] = []
        var unresolved = false
        for r in transaction.recipients {
            let address = r.domain.isEmpty ? MailAddress(localPart: r.localPart, domain: directory.firstDomain) : r
            switch directory.resolve(address) {
            case .deliver(let l, let rm):
                for u in l where !localUsers.contains(u) { localUsers.append(u) }
                for x in rm where !remote.contains(x) { remote.append(x) }
            case .notOurDomain:
                if context.role == .submission {
                    if !remote.contains(address.description) { remote.append(address.description) }
                } else {
                    unresolved = true
                }
            case .unknown:
                unresolved = true
            }
        }
        // A reload between RCPT and the end of data removed a recipient: accept
        // nothing, so the client retries and then hears the right answer.
        if unresolved || localUsers.contains(where: { engine.store.userID($0) == nil }) {
            message.discard()
            return eventLoop.makeSucceededFuture(SMTPReply(451, "4.3.0", "Recipients changed, try again later"))
        }
        var delivery: Delivery?
        if !localUsers.isEmpty {
            var recipients: [(user: Int64, mailbox: String)] = []
            var quotas: [Int64: Int64] = [:]
            for u in localUsers {
                guard let id = engine.store.userID(u) else { continue }
                recipients.append((id, mailbox))
                quotas[id] = directory.users[u]?.quotaBytes ?? 0
            }
            delivery = Delivery(message: message, recipients: recipients, userQuotas: quotas,
                                cellQuota: engine.cellQuota, internalDate: received)
        }
        let outbound = remote.isEmpty ? nil : OutboundEnvelope(
            id: message.id, from: transaction.sender.address?.description ?? "", recipients: remote,
            received: received, user: context.authenticatedUser)
        let promise = eventLoop.makePromise(of: Result<String, StoreFailure>.self)
        engine.scheduler.submit(.init(delivery: delivery, outbound: outbound, message: message, promise: promise))
        let logger = engine.logger
        let session = context.id
        let localCount = localUsers.count, remoteCount = remote.count, size = message.size
        let engineRef = engine, notified = localUsers
        return promise.futureResult.map { result in
            switch result {
            case .success(let id):
                engineRef.notifyChanged(notified)
                var metadata: Logger.Metadata = ["session": "\(session)", "id": "\(id)", "local": "\(localCount)", "remote": "\(remoteCount)", "size": "\(size)"]
                if !summary.isEmpty { metadata["auth"] = "\(summary)" }
                if mailbox != "INBOX" { metadata["mailbox"] = "\(mailbox)" }
                logger.info("accepted", metadata: metadata)
                return SMTPReply(250, "2.0.0", "Ok: queued as \(id)")
            case .failure(let f):
                logger.warning("not stored", metadata: ["session": "\(session)", "reason": "\(f)"])
                return MessageWriter.reply(for: f)
            }
        }
    }

    static func reply(for failure: StoreFailure) -> SMTPReply {
        switch failure {
        case .overQuota: return .mailboxFullTemporary
        case .exceedsQuota: return .mailboxFullPermanent
        case .storage: return .insufficientStorage
        }
    }

    func discard() {
        if case .check(let checks) = hold?.purpose { checks.cancel() }
        hold = nil
        message?.discard()
        message = nil
    }
}

/// RFC 5322 §3.3 date-time in UTC: `Mon, 23 Nov 2026 23:08:00 +0000`.
enum RFC5322Date {
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(_ unix: Int64) -> String {
        var t = time_t(unix)
        var tm = tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(tm.tm_wday)]), \(tm.tm_mday) \(months[Int(tm.tm_mon)]) \(1900 + tm.tm_year) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) +0000"
    }
}

extension String {
    func trimmed(_ set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
