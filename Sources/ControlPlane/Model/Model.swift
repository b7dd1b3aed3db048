import Foundation
import NIOConcurrencyHelpers

/// The control plane's model: what the control database holds.

public enum Role: String, Sendable, Codable, CaseIterable {
    /// A customer: the owner of one tenant.
    case owner
    /// Provider staff: everything.
    case admin
    /// Provider staff: read-only views of tenants, for helping customers.
    case support
    /// Provider staff: plans and invoices (billing comes with a later issue).
    case billing

    public var isStaff: Bool { self != .owner }
}

public enum TenantStatus: String, Sendable, Codable, CaseIterable {
    /// Signed up, e-mail address not yet verified: no cell yet.
    case pending
    case active
    /// Staff suspended it: the cell keeps receiving mail but refuses logins.
    case suspended
    /// Closed by its owner or deleted by staff: the cell and its data are gone.
    case closed
}

public struct Plan: Sendable, Codable, Hashable {
    public var id: String
    public var name: String
    public var currency: String
    public var monthlyPrice: String
    public var mailboxes: Int
    public var storageBytes: Int64
    public var messagesPerDay: Int
    public var domains: Int
}

public struct Tenant: Sendable, Codable, Hashable {
    public var id: String
    public var slug: String
    public var name: String
    public var planID: String
    public var status: TenantStatus
    public var statusReason: String?
    public var createdAt: Int64
}

public struct PanelUser: Sendable, Hashable {
    public var id: String
    public var tenantID: String?
    public var email: String
    public var passwordHash: String
    public var role: Role
    public var emailVerified: Bool
    public var totpSecret: String?
    public var totpEnabled: Bool
    public var totpLastStep: Int64
    public var disabled: Bool
}

public struct CellHost: Sendable, Codable, Hashable {
    public var id: String
    public var name: String
    public var backend: String
    public var capacityCells: Int
    public var portBase: Int
    public var portStride: Int
}

public struct Cell: Sendable, Codable, Hashable {
    public var id: String
    public var tenantID: String
    public var hostID: String
    public var slot: Int
    public var desiredState: String
    public var observedPhase: String
    public var healthy: Bool
    public var restarts: Int
    public var lastExit: String?
    public var detail: String?
    public var observedAt: Int64?
}

public struct Domain: Sendable, Codable, Hashable {
    public var name: String
    public var tenantID: String
    public var kind: String
}

public struct Mailbox: Sendable, Hashable {
    public var address: String
    public var tenantID: String
    public var displayName: String
    public var passwordHash: String
    public var quotaBytes: Int64?
}

public struct Alias: Sendable, Codable, Hashable {
    public var address: String
    public var tenantID: String
    public var targets: [String]
}

/// An API token as its owner sees it: never the token, which is shown once
/// and stored only as a hash.
public struct APIToken: Sendable, Codable, Hashable {
    public var id: String
    public var name: String
    public var createdAt: Int64
    public var expiresAt: Int64?
    public var lastUsedAt: Int64?
}

public struct AuditEntry: Sendable, Codable, Hashable {
    public var id: String
    public var at: Int64
    public var actorID: String?
    public var actorEmail: String?
    public var actorRole: String?
    public var tenantID: String?
    public var action: String
    public var target: String?
    public var detail: String?
    public var ip: String?
}

/// Random identifiers: a prefix and 16 lower-case base32 characters (80 bits).
public enum Identifier {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
    public static func make(_ prefix: String) -> String {
        var rng = SystemRandomNumberGenerator()
        return prefix + String((0..<16).map { _ in alphabet[Int(rng.next() % 32)] })
    }
    /// Sortable by time: milliseconds, then a per-process sequence (so
    /// entries of one millisecond keep their order), then randomness.
    public static func timeOrdered(_ now: Date) -> String {
        let ms = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        let n = sequence.withLockedValue { $0 &+= 1; return $0 }
        return hex(ms, 12) + hex(n & 0xFFFFFF, 6) + make("").prefix(8)
    }
    static let sequence = NIOLockedValueBox<UInt64>(0)
    static func hex(_ v: UInt64, _ width: Int) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }
}
