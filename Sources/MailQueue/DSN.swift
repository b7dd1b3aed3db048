import MIME

/// A delivery status notification (RFC 3464) in a multipart/report
/// (RFC 6522): a note for people, the machine-readable status per
/// recipient, and the original message's header (RFC 3462 allows the
/// header alone; the body stays private and the report small).
///
/// Sent with the null reverse-path (RFC 5321 §4.5.5), and never about a
/// message that itself had the null sender.
public struct DSN: Sendable {
    public enum Action: String, Sendable { case failed, delayed }

    public struct Recipient: Sendable {
        public var address: String
        public var action: Action
        /// Enhanced status (RFC 3463), e.g. 5.1.1.
        public var status: String
        /// The reply or reason, one line.
        public var diagnostic: String?
        /// The server that gave the reply; nil when the reason is our own
        /// (no MX, expired), which then reads as an X-Postcell diagnostic.
        public var remote: String?
    }

    public var reportingMTA: String
    public var queueID: String
    public var originalSender: String
    public var arrival: Int64
    public var lastAttempt: Int64
    /// For `delayed`: until when retries go on.
    public var retryUntil: Int64?
    public var recipients: [Recipient]
    /// The original message's header section (cut at most at 64 KiB).
    public var originalHeader: [UInt8]

    public init(reportingMTA: String, queueID: String, originalSender: String, arrival: Int64, lastAttempt: Int64,
                retryUntil: Int64?, recipients: [Recipient], originalHeader: [UInt8]) {
        self.reportingMTA = reportingMTA
        self.queueID = queueID
        self.originalSender = originalSender
        self.arrival = arrival
        self.lastAttempt = lastAttempt
        self.retryUntil = retryUntil
        self.recipients = recipients
        self.originalHeader = originalHeader
    }

    /// The header section of a message (through the empty line), at most `limit` octets.
    public static func headerSection(of message: [UInt8], limit: Int = 65_536) -> [UInt8] {
        var i = 0
        let n = min(message.count, limit)
        while i + 1 < n {
            if message[i] == UInt8(ascii: "\n") {
                if message[i + 1] == UInt8(ascii: "\n") { return Array(message[...i]) }
                if message[i + 1] == UInt8(ascii: "\r"), i + 2 < message.count, message[i + 2] == UInt8(ascii: "\n") { return Array(message[...i]) }
            }
            i += 1
        }
        var cut = Array(message[..<n])
        if let lf = cut.lastIndex(of: UInt8(ascii: "\n")) { cut = Array(cut[...lf]) }
        return cut
    }

    var isDelay: Bool { recipients.allSatisfy { $0.action == .delayed } }

    /// The whole message, CRLF line ends; `messageID` makes its Message-ID.
    public func render(date: Int64, boundary: String) -> [UInt8] {
        var lines: [String] = []
        lines.append("From: Mail Delivery System <MAILER-DAEMON@\(reportingMTA)>")
        lines.append("To: <\(originalSender)>")
        lines.append(isDelay ? "Subject: Delayed Mail (still being retried)" : "Subject: Undelivered Mail Returned to Sender")
        lines.append("Date: \(RFC5322Date.format(date))")
        lines.append("Message-ID: <\(queueID).\(isDelay ? "delay" : "dsn").\(date)@\(reportingMTA)>")
        // RFC 3834 §5: an automatic reply; RFC 3464 §4 also relies on the null sender.
        lines.append("Auto-Submitted: auto-replied")
        lines.append("MIME-Version: 1.0")
        lines.append("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"\(boundary)\"")
        lines.append("")
        lines.append("This is a MIME-formatted delivery status notification.")
        lines.append("")
        lines.append("--\(boundary)")
        lines.append("Content-Type: text/plain; charset=utf-8")
        lines.append("Content-Transfer-Encoding: 8bit")
        lines.append("")
        lines.append("This is the mail system at \(reportingMTA).")
        lines.append("")
        if isDelay {
            lines.append("Your message has not been delivered yet to the recipients below.")
            if let until = retryUntil { lines.append("Delivery will be retried until \(RFC5322Date.format(until)).") }
            lines.append("You do not need to send it again.")
        } else {
            lines.append("Your message could not be delivered to the recipients below.")
            lines.append("It was not delivered and will not be retried.")
        }
        lines.append("")
        for r in recipients {
            lines.append("<\(r.address)>: \(r.diagnostic ?? r.status)")
        }
        lines.append("")
        lines.append("--\(boundary)")
        lines.append("Content-Type: message/delivery-status")
        lines.append("")
        // RFC 3464 §2.2: per-message fields.
        lines.append("Reporting-MTA: dns; \(reportingMTA)")
        lines.append("X-Postcell-Queue-ID: \(queueID)")
        lines.append("Arrival-Date: \(RFC5322Date.format(arrival))")
        for r in recipients {
            // RFC 3464 §2.3: per-recipient fields, each group after an empty line.
            lines.append("")
            lines.append("Final-Recipient: rfc822; \(r.address)")
            lines.append("Action: \(r.action.rawValue)")
            lines.append("Status: \(r.status)")
            if let remote = r.remote { lines.append("Remote-MTA: dns; \(remote)") }
            if let d = r.diagnostic {
                lines.append(r.remote != nil ? "Diagnostic-Code: smtp; \(d)" : "Diagnostic-Code: X-Postcell; \(d)")
            }
            lines.append("Last-Attempt-Date: \(RFC5322Date.format(lastAttempt))")
            if r.action == .delayed, let until = retryUntil { lines.append("Will-Retry-Until: \(RFC5322Date.format(until))") }
        }
        lines.append("")
        lines.append("--\(boundary)")
        lines.append("Content-Type: text/rfc822-headers")
        lines.append("")
        var out = Array(lines.joined(separator: "\r\n").utf8) + Array("\r\n".utf8)
        out += DSN.crlf(originalHeader)
        out += Array("\r\n--\(boundary)--\r\n".utf8)
        return out
    }

    /// Bare LF → CRLF.
    static func crlf(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        for (i, b) in bytes.enumerated() {
            if b == UInt8(ascii: "\n"), i == 0 || bytes[i - 1] != UInt8(ascii: "\r") { out.append(UInt8(ascii: "\r")) }
            out.append(b)
        }
        return out
    }
}
