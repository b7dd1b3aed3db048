import Crypto
import Foundation
import HTTPTypes

import Hummingbird
import NIOCore
import PanelSecurity

/// Cookies: the session (`__Host-` prefix: Secure, Path=/, no Domain, so no
/// other site or subdomain can set or read it) and, before login, the
/// double-submit CSRF cookie.
enum Cookies {
    static let session = "__Host-postcell"
    static let csrf = "__Host-postcell-csrf"

    static func session(_ id: String, maxAge: Int) -> Cookie {
        Cookie(name: session, value: id, maxAge: maxAge, path: "/", secure: true, httpOnly: true, sameSite: .lax)
    }
    static func clearSession() -> Cookie {
        Cookie(name: session, value: "", maxAge: 0, path: "/", secure: true, httpOnly: true, sameSite: .lax)
    }
    static func csrfCookie(_ v: String) -> Cookie {
        Cookie(name: csrf, value: v, maxAge: 3600 * 12, path: "/", secure: true, httpOnly: true, sameSite: .strict)
    }
}

/// CSRF tokens: logged in, a form carries the session's token; logged out
/// (signup, login), it carries the value of the CSRF cookie. SameSite on
/// both cookies is the second line.
enum CSRF {
    static func token(for s: SessionInfo) -> String { CSRFToken(secret: Array(s.csrfSecret.utf8)).token(sessionID: s.idHash, purpose: "form") }

    static func valid(_ form: Form, request: Request, ctx: PanelContext) -> Bool {
        let sent = form["csrf"]
        guard !sent.isEmpty else { return false }
        if let s = ctx.session { return CSRFToken(secret: Array(s.csrfSecret.utf8)).verify(sent, sessionID: s.idHash, purpose: "form") }
        guard let cookie = request.cookies[Cookies.csrf]?.value, !cookie.isEmpty else { return false }
        return constantTimeEqual(Array(cookie.utf8), Array(sent.utf8))
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var d: UInt8 = 0
        for (x, y) in zip(a, b) { d |= x ^ y }
        return d == 0
    }
}

/// Loads the session from its cookie, or the user of an API token; adds
/// the security headers to every reply.
struct SessionMiddleware: RouterMiddleware {
    typealias Context = PanelContext
    let service: ControlService

    func handle(_ request: Request, context: PanelContext, next: (Request, PanelContext) async throws -> Response) async throws -> Response {
        var ctx = context
        // Tokens are for the API only; the panels go by the session cookie.
        if request.uri.path.hasPrefix("/api/"), let auth = request.headers[.authorization], auth.lowercased().hasPrefix("bearer ") {
            ctx.tokenUser = try await service.user(apiToken: String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        } else if let id = request.cookies[Cookies.session]?.value, !id.isEmpty {
            ctx.session = try await service.session(id: id)
        }
        var response = try await next(request, ctx)
        // The panel is HTML without inline script; only our own files load.
        response.headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        response.headers[.strictTransportSecurity] = "max-age=31536000"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}
