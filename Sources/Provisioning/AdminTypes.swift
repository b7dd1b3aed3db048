import Foundation

/// The JSON bodies of the engine admin API (docs/ADMIN-API.md), one type per
/// body. Optional fields the contract marks `?` are optional here; fields
/// whose `null` means something (a quota of `null` is "no quota of its own")
/// encode `null` explicitly.
public enum EngineAdmin {}

extension EngineAdmin {
    /// `GET /v1/health`.
    public struct Health: Codable, Sendable, Hashable {
        public var status: String
        public var version: String
        public var uptimeSeconds: Int64
        public var suspended: Bool
        public var users: Int
        public var domains: Int
        public var queuedMessages: Int
        public init(status: String, version: String, uptimeSeconds: Int64, suspended: Bool, users: Int, domains: Int, queuedMessages: Int) {
            self.status = status; self.version = version; self.uptimeSeconds = uptimeSeconds; self.suspended = suspended
            self.users = users; self.domains = domains; self.queuedMessages = queuedMessages
        }
    }

    /// One mailbox owner, as `GET /v1/users` lists it and `PUT /v1/users/{address}` returns it.
    public struct User: Codable, Sendable, Hashable {
        public var address: String
        public var quotaBytes: Int64?
        public var addresses: [String]
        public init(address: String, quotaBytes: Int64? = nil, addresses: [String] = []) {
            self.address = address; self.quotaBytes = quotaBytes; self.addresses = addresses
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            address = try c.decode(String.self, forKey: .address)
            quotaBytes = try c.decodeIfPresent(Int64.self, forKey: .quotaBytes)
            addresses = try c.decodeIfPresent([String].self, forKey: .addresses) ?? []
        }
    }

    /// The body of `PUT /v1/users/{address}`: an scrypt PHC hash, never a plaintext password.
    public struct PutUser: Codable, Sendable, Hashable {
        public var password: String
        public var quotaBytes: Int64?
        public var addresses: [String]?
        public init(passwordHash: String, quotaBytes: Int64? = nil, addresses: [String]? = nil) {
            self.password = passwordHash; self.quotaBytes = quotaBytes; self.addresses = addresses
        }
    }

    /// `{"password": "$scrypt$…"}`.
    public struct PasswordBody: Codable, Sendable, Hashable {
        public var password: String
    }

    /// `{"quotaBytes": n or null}`; `null` falls back to the cell's default.
    public struct UserQuotaBody: Codable, Sendable, Hashable {
        public var quotaBytes: Int64?
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(quotaBytes, forKey: .quotaBytes)
        }
    }

    /// `{"cellBytes": n or null}`.
    public struct CellQuotaBody: Codable, Sendable, Hashable {
        public var cellBytes: Int64?
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(cellBytes, forKey: .cellBytes)
        }
    }

    /// `{"targets": [...]}`.
    public struct AliasBody: Codable, Sendable, Hashable {
        public var targets: [String]
    }

    /// `{"suspended": bool}`.
    public struct SuspensionBody: Codable, Sendable, Hashable {
        public var suspended: Bool
    }

    /// `GET /v1/usage`.
    public struct Usage: Codable, Sendable, Hashable {
        public struct UserUsage: Codable, Sendable, Hashable {
            public var address: String
            public var usedBytes: Int64
            public var messages: Int64
            public var quotaBytes: Int64?
        }
        public var cellBytes: Int64
        public var cellQuotaBytes: Int64?
        public var users: [UserUsage]
    }

    /// `POST /v1/export`: where the archive is, relative to the data directory.
    public struct ExportResult: Codable, Sendable, Hashable {
        public var path: String
        public var bytes: Int64
    }

    /// `{"error": "text"}`, the body of every error reply.
    public struct ErrorBody: Codable, Sendable, Hashable {
        public var error: String
    }

    /// Whether a `PUT` made something new (201) or replaced it (200).
    public enum PutOutcome: Sendable, Hashable {
        case created, replaced
    }
}
