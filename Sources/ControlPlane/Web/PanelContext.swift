import Foundation
import Hummingbird
import NIOCore

/// The per-request context: who is asking (from the session cookie or an
/// API token) and from where.
public struct PanelContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var session: SessionInfo?
    /// The user of an API token (no session, no CSRF: the token is the proof).
    public var tokenUser: PanelUser?
    public var remoteIP: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteIP = source.channel.remoteAddress?.ipAddress
    }

    public var maxUploadSize: Int { 1 << 20 }

    /// The panels' caller for the service layer: only the session cookie
    /// counts, never an API token (a stolen token must not drive the
    /// account pages, such as TOTP enrolment). A session waiting for its
    /// second factor is not logged in yet.
    public var caller: Caller {
        if let s = session, !s.secondFactorPending { return Caller(user: s.user, ip: remoteIP) }
        return Caller(user: nil, ip: remoteIP)
    }
    public var user: PanelUser? { caller.user }

    /// The API's caller: only a bearer token counts, never the session
    /// cookie (so the API needs no CSRF protection).
    public var apiCaller: Caller { Caller(user: tokenUser, ip: remoteIP) }

    /// A path parameter, percent-decoded (`anna%40smith.example`).
    public func pathParameter(_ name: String) -> String {
        let raw = parameters.get(name) ?? ""
        return raw.removingPercentEncoding ?? raw
    }
}
