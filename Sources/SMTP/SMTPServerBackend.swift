import MailCore
import NIOCore

/// Who is on the other end of a session. `host` is nil for a unix-socket
/// peer without a PROXY header.
public struct SMTPClient: Hashable, Sendable {
    public var host: String?
    public var port: Int
    /// Whether the address came from a trusted PROXY v2 header.
    public var viaProxy: Bool

    public init(host: String?, port: Int, viaProxy: Bool) {
        self.host = host
        self.port = port
        self.viaProxy = viaProxy
    }
}

/// What a backend knows of the session asking it.
public struct SMTPSessionContext: Sendable {
    public var id: String
    public var listener: String
    public var role: SMTPRole
    public var client: SMTPClient
    public var helo: String?
    public var esmtp: Bool
    public var isTLS: Bool
    public var authenticatedUser: String?
}

/// The engine's side of an SMTP session: the SMTP target declares it and
/// never imports the store (STYLE habit 11).
public protocol SMTPServerBackend: AnyObject, Sendable {
    /// The limits for a new session on this listener (read again per session,
    /// so a reload applies to new sessions).
    func sessionConfiguration(listener: String, isTLS: Bool) -> SMTPSessionConfiguration
    /// Idle timeout for sessions (RFC 5321 §4.5.3.2.7), in seconds.
    func idleTimeoutSeconds() -> Int64
    func authenticate(user: String, password: String, context: SMTPSessionContext, eventLoop: EventLoop) -> EventLoopFuture<AuthVerdict>
    /// nil accepts; a reply refuses.
    func checkSender(_ path: ReversePath, parameters: MailParameters, context: SMTPSessionContext) -> SMTPReply?
    func checkRecipient(_ address: MailAddress, transaction: SMTPTransaction, context: SMTPSessionContext) -> SMTPReply?
    /// Opens a message for the transaction; never fails outright: a sink that
    /// cannot store answers its failure from `commit`.
    func openMessage(_ transaction: SMTPTransaction, context: SMTPSessionContext, eventLoop: EventLoop) -> SMTPMessageSink
}

/// Receives a message's content as it arrives, on the session's event loop.
public protocol SMTPMessageSink: AnyObject {
    /// Content bytes, unstuffed, in order.
    func append(_ bytes: inout ByteBuffer)
    /// Makes the message durable and answers the reply for the client.
    func commit(_ transaction: SMTPTransaction) -> EventLoopFuture<SMTPReply>
    func discard()
}

/// Sent down a session's pipeline to ask it to finish: idle sessions close at
/// once with 421 4.3.2; busy ones after their current transaction.
public struct SMTPShutdownEvent: Sendable {
    public init() {}
}
