import MailCore
import NIOCore

/// What IMAP and POP3 sessions get from the engine alike: blocking work on
/// the store thread (the single writer, shared with deliveries) and the
/// password check with its lockout limits.
protocol EngineSessionServices: AnyObject {
    var engine: EngineState { get }
    var sessionID: String { get }
}

extension EngineSessionServices {
    func runBlocking<T: Sendable>(on eventLoop: EventLoop, quick: Bool, _ body: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        engine.scheduler.run(on: eventLoop, quick: quick, body)
    }

    func authenticate(user: String, password: String, clientHost: String?, eventLoop: EventLoop) -> EventLoopFuture<AuthVerdict> {
        engine.verifyPassword(user: user, password: password, ip: clientHost, session: sessionID, eventLoop: eventLoop)
    }
}
