import NIOCore

/// An SMTP reply (RFC 5321 §4.2) with an optional enhanced status code
/// (RFC 3463 / RFC 2034). Multi-line replies use `-` after the code on all
/// lines but the last.
///
/// ```
/// S: 250-mx.example.test
/// S: 250 PIPELINING
/// ```
public struct SMTPReply: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: Int
    public var enhanced: String?
    public var lines: [String]

    public init(_ code: Int, _ enhanced: String? = nil, _ lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines.isEmpty ? [""] : lines
    }

    public init(_ code: Int, _ enhanced: String?, _ text: String) {
        self.init(code, enhanced, [text])
    }

    public var isPositive: Bool { code < 400 }
    public var isTransientFailure: Bool { code >= 400 && code < 500 }

    public func encode(into buffer: inout ByteBuffer) {
        for (i, line) in lines.enumerated() {
            buffer.writeString(String(code))
            buffer.writeStaticString(i == lines.count - 1 ? " " : "-")
            if let e = enhanced {
                // RFC 2034 §4: the enhanced code starts the text of every line.
                buffer.writeString(e)
                buffer.writeStaticString(" ")
            }
            buffer.writeString(line)
            buffer.writeStaticString("\r\n")
        }
    }

    public var description: String {
        var b = ByteBuffer()
        encode(into: &b)
        return b.readString(length: b.readableBytes) ?? ""
    }
}

/// The replies the server sends, named once (docs/SMTP.md is their table).
public extension SMTPReply {
    static let ok = SMTPReply(250, "2.0.0", "Ok")
    static let bye = SMTPReply(221, "2.0.0", "Bye")
    static let help = SMTPReply(214, "2.0.0", "See RFC 5321")
    static let startData = SMTPReply(354, nil, "End data with <CR><LF>.<CR><LF>")
    static let readyForTLS = SMTPReply(220, "2.0.0", "Ready to start TLS")
    static let authSuccess = SMTPReply(235, "2.7.0", "Authentication successful")

    static let unknownCommand = SMTPReply(500, "5.5.2", "Command not recognized")
    static let lineTooLong = SMTPReply(500, "5.5.2", "Line too long")
    static let nulInCommand = SMTPReply(500, "5.5.2", "NUL byte in command")
    static let syntaxHelo = SMTPReply(501, "5.5.4", "Syntax: EHLO hostname")
    static let syntax = SMTPReply(501, "5.5.4", "Syntax error in parameters or arguments")
    static let badSender = SMTPReply(501, "5.1.7", "Bad sender address syntax")
    static let badRecipient = SMTPReply(501, "5.1.3", "Bad recipient address syntax")
    static let unsupportedParameter = SMTPReply(555, "5.5.4", "Unsupported parameter")
    static let needHelo = SMTPReply(503, "5.5.1", "Send HELO/EHLO first")
    static let nestedMail = SMTPReply(503, "5.5.1", "Nested MAIL command")
    static let needMail = SMTPReply(503, "5.5.1", "Need MAIL command")
    static let needRcpt = SMTPReply(503, "5.5.1", "Need RCPT command")
    static let noValidRecipients = SMTPReply(554, "5.5.1", "No valid recipients")
    static let dataAfterBDAT = SMTPReply(503, "5.5.1", "DATA not allowed after BDAT")
    static let needUTF8 = SMTPReply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
    static let relayDenied = SMTPReply(550, "5.7.1", "Relaying denied")
    static let userUnknown = SMTPReply(550, "5.1.1", "User unknown")
    static let tooManyRecipients = SMTPReply(452, "4.5.3", "Too many recipients")
    static let messageTooBig = SMTPReply(552, "5.3.4", "Message size exceeds fixed maximum message size")
    static let mailboxFullTemporary = SMTPReply(452, "4.2.2", "Mailbox full")
    static let mailboxFullPermanent = SMTPReply(552, "5.2.2", "Mailbox full")
    static let insufficientStorage = SMTPReply(452, "4.3.1", "Insufficient system storage")
    static let localError = SMTPReply(451, "4.3.0", "Local error in processing")
    static let vrfyDisabled = SMTPReply(502, "5.5.1", "VRFY command is disabled")
    static let expnDisabled = SMTPReply(502, "5.5.1", "EXPN command is disabled")
    static let authRequired = SMTPReply(530, "5.7.0", "Authentication required")
    static let encryptionRequired = SMTPReply(538, "5.7.11", "Encryption required for requested authentication mechanism")
    static let authNotEnabled = SMTPReply(503, "5.5.1", "Authentication not enabled")
    static let alreadyAuthenticated = SMTPReply(503, "5.5.1", "Already authenticated")
    static let authMechanismUnknown = SMTPReply(504, "5.5.4", "Unrecognized authentication mechanism")
    static let authInvalid = SMTPReply(535, "5.7.8", "Authentication credentials invalid")
    static let authCancelled = SMTPReply(501, "5.0.0", "Authentication cancelled")
    static let authBadEncoding = SMTPReply(501, "5.5.2", "Cannot decode response")
    static let authTemporary = SMTPReply(454, "4.7.0", "Temporary authentication failure")
    /// RFC 5248 (IANA enhanced status codes): 525 X.7.13 "User Account
    /// Disabled", after a successful authentication to a disabled account.
    static let authSuspended = SMTPReply(525, "5.7.13", "Credentials valid but account suspended")
    static let authTooManyFailures = SMTPReply(421, "4.7.0", "Too many authentication failures")
    static let senderNotOwned = SMTPReply(553, "5.7.1", "Sender address not owned by user")
    static let tlsActive = SMTPReply(503, "5.5.1", "TLS already active")
    static let tlsUnavailable = SMTPReply(454, "4.7.0", "TLS not available")
    static let tooManyCommands = SMTPReply(421, "4.7.0", "Too many commands, closing connection")
    static let tooManyErrors = SMTPReply(421, "4.7.0", "Too many errors, closing connection")
    static let idleTimeout = SMTPReply(421, "4.4.2", "Idle timeout, closing connection")
    static let tooManyConnections = SMTPReply(421, "4.7.0", "Too many connections, try again later")
    static let shuttingDown = SMTPReply(421, "4.3.2", "Service shutting down")
}
