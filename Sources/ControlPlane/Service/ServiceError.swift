import Foundation

/// What the service layer refuses, with text safe to show to the person who
/// asked. Panels render field errors beside the fields; the API returns them
/// as JSON with the matching status.
public struct ServiceError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// 422: the input is wrong; `fields` says where.
        case invalid
        /// 401: not logged in, or the login failed.
        case unauthenticated
        /// 403: logged in, but not allowed.
        case forbidden
        /// 404
        case notFound
        /// 409: taken already, or the state forbids it.
        case conflict
        /// 429: too many attempts; retry after `retryAfter` seconds.
        case rateLimited
        /// 503: a cell or the database did not answer.
        case unavailable
    }
    public var kind: Kind
    public var message: String
    public var fields: [String: String]
    public var retryAfter: Int?

    public init(_ kind: Kind, _ message: String, fields: [String: String] = [:], retryAfter: Int? = nil) {
        self.kind = kind; self.message = message; self.fields = fields; self.retryAfter = retryAfter
    }
    public static func invalid(_ fields: [String: String]) -> ServiceError {
        ServiceError(.invalid, "Please correct the highlighted fields.", fields: fields)
    }
    public var description: String { message }

    public var httpStatus: Int {
        switch kind {
        case .invalid: return 422
        case .unauthenticated: return 401
        case .forbidden: return 403
        case .notFound: return 404
        case .conflict: return 409
        case .rateLimited: return 429
        case .unavailable: return 503
        }
    }
}
