import Foundation
import Hummingbird
import NIOCore

/// An `application/x-www-form-urlencoded` body (HTML forms) or a query
/// string, as a dictionary. Repeated names keep every value in `all`.
public struct Form: Sendable {
    public var all: [String: [String]] = [:]
    public subscript(_ name: String) -> String { all[name]?.first ?? "" }

    public init(_ text: Substring) {
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = Form.decode(kv[0]), v = kv.count > 1 ? Form.decode(kv[1]) : ""
            guard !k.isEmpty else { continue }
            all[k, default: []].append(v)
        }
    }

    static func decode(_ s: Substring) -> String {
        String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
    }

    /// Reads a request body of at most 256 KiB.
    public static func read(_ request: Request) async throws -> Form {
        let buffer = try await request.body.collect(upTo: 256 * 1024)
        return Form(Substring(String(buffer: buffer)))
    }
}

extension Request {
    public var queryForm: Form { Form(Substring(uri.query ?? "")) }
}
