import Foundation
import Hummingbird
import Mustache
import NIOCore

/// Server-rendered pages from `templates/panel/*.mustache`. Every value is
/// HTML-escaped by Mustache's `{{ }}`; templates never use `{{{ }}}` for
/// anything a user typed.
public struct Views: Sendable {
    public let library: MustacheLibrary
    public let providerDomain: String

    public init(library: MustacheLibrary, providerDomain: String) { self.library = library; self.providerDomain = providerDomain }

    static func isNone(_ v: Any) -> Bool {
        let m = Mirror(reflecting: v)
        return m.displayStyle == .optional && m.children.isEmpty
    }
    static func unwrap(_ v: Any) -> Any {
        let m = Mirror(reflecting: v)
        if m.displayStyle == .optional, let first = m.children.first { return first.value }
        return v
    }

    public func page(_ name: String, _ context: [String: Any], status: HTTPResponse.Status = .ok, ctx: PanelContext) -> Response {
        // An absent optional renders as nothing, not as "nil".
        var c = context.filter { !Views.isNone($0.value) }.mapValues(Views.unwrap)
        c["domainSuffix"] = providerDomain
        if let u = ctx.user {
            c["me"] = ["email": u.email, "staff": u.role.isStaff, "role": u.role.rawValue, "admin": u.role == .admin,
                       "auditor": u.role == .admin || u.role == .support]
            if let s = ctx.session { c["csrf"] = CSRF.token(for: s) }
        }
        let body = library.render(c, withTemplate: "panel/" + name) ?? "template panel/\(name) missing"
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// A form page with the values typed and the field errors beside them.
    public func form(_ name: String, _ context: [String: Any], error: ServiceError?, form: Form, ctx: PanelContext) -> Response {
        var c = context
        var values: [String: String] = [:]
        for (k, v) in form.all where !k.lowercased().contains("password") && k != "csrf" && k != "code" { values[k] = v.first ?? "" }
        c["values"] = values
        if let error {
            c["error"] = error.message
            c["fields"] = error.fields
            c["errorList"] = error.fields.sorted { $0.key < $1.key }.map { ["field": $0.key, "message": $0.value] }
            c["hasErrorList"] = !error.fields.isEmpty
        }
        let status: HTTPResponse.Status = error.map { HTTPResponse.Status(code: $0.httpStatus == 422 ? 422 : $0.httpStatus) } ?? .ok
        var response = page(name, c, status: status, ctx: ctx)
        if let after = error?.retryAfter { response.headers[.retryAfter] = String(after) }
        return response
    }
}

enum Reply {
    static func redirect(_ to: String) -> Response {
        Response(status: .seeOther, headers: [.location: to])
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? enc.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ e: ServiceError) -> Response {
        struct Body: Encodable { var error: String; var fields: [String: String]? }
        var r = json(Body(error: e.message, fields: e.fields.isEmpty ? nil : e.fields), status: HTTPResponse.Status(code: e.httpStatus))
        if let after = e.retryAfter { r.headers[.retryAfter] = String(after) }
        return r
    }
}

/// Sizes for people.
func humanBytes(_ n: Int64) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB"]
    var v = Double(n), i = 0
    while v >= 1000 && i < units.count - 1 { v /= 1000; i += 1 }
    return i == 0 ? "\(n) bytes" : String(format: v < 10 ? "%.1f %@" : "%.0f %@", v, units[i])
}

/// `2026-11-24 10:23:25 UTC` (gmtime_r: no formatter per row).
func timeText(_ t: Int64) -> String {
    var seconds = time_t(t)
    var tm = tm()
    guard gmtime_r(&seconds, &tm) != nil else { return "\(t)" }
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday)) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) UTC"
}
