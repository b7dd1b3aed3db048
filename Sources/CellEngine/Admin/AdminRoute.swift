import Foundation

/// The admin API's resources (docs/ADMIN-API.md), parsed from a request
/// target. Path segments are percent-decoded one by one, so an address may
/// be sent as `alice%40example.test` or `alice@example.test`.
enum AdminRoute: Hashable, Sendable {
    case health
    case users
    case user(String)
    case userPassword(String)
    case userQuota(String)
    case aliases
    case alias(String)
    case domains
    case domain(String)
    case quota
    case suspension
    case usage
    case export

    /// The methods each resource answers; others get 405.
    var methods: [String] {
        switch self {
        case .health, .users, .aliases, .domains, .usage: return ["GET"]
        case .user, .alias, .domain: return ["PUT", "DELETE"]
        case .userPassword, .userQuota, .quota, .suspension: return ["PUT"]
        case .export: return ["POST"]
        }
    }

    /// The route and the query's `name=value` pairs; nil for no such resource.
    static func parse(_ target: String) -> (AdminRoute, [String: String])? {
        let (path, query) = split(target)
        let raw = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard raw.count >= 3, raw[0].isEmpty, raw[1] == "v1" else { return nil }
        var segments: [String] = []
        for s in raw.dropFirst(2) {
            guard let decoded = s.removingPercentEncoding, !decoded.isEmpty, !decoded.contains("/") else { return nil }
            segments.append(decoded)
        }
        let route: AdminRoute
        switch (segments.count, segments[0]) {
        case (1, "health"): route = .health
        case (1, "users"): route = .users
        case (2, "users"): route = .user(segments[1])
        case (3, "users") where segments[2] == "password": route = .userPassword(segments[1])
        case (3, "users") where segments[2] == "quota": route = .userQuota(segments[1])
        case (1, "aliases"): route = .aliases
        case (2, "aliases"): route = .alias(segments[1])
        case (1, "domains"): route = .domains
        case (2, "domains"): route = .domain(segments[1])
        case (1, "quota"): route = .quota
        case (1, "suspension"): route = .suspension
        case (1, "usage"): route = .usage
        case (1, "export"): route = .export
        default: return nil
        }
        return (route, query)
    }

    static func split(_ target: String) -> (path: String, query: [String: String]) {
        guard let q = target.firstIndex(of: "?") else { return (target, [:]) }
        var query: [String: String] = [:]
        for pair in target[target.index(after: q)...].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            query[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        return (String(target[..<q]), query)
    }
}
