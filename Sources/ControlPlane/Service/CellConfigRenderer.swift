import Foundation
import Provisioning

/// Renders a local cell's `cell.json` (docs/CELL-CONFIG.md) from the model:
/// its domains, mailboxes and aliases, its plan's quota, suspension, the
/// admin socket, and one inherited-fd listener per port (the local backend
/// binds them on the host; the sandbox has no network).
public enum CellConfigRenderer {
    struct Document: Encodable {
        struct User: Encodable { var address: String; var password: String; var quotaBytes: Int64?; var addresses: [String] }
        struct Listener: Encodable { var name: String; var role: String; var fd: Int; var implicitTLS: Bool? }
        struct Admin: Encodable { var path: String }
        struct Quota: Encodable { var cellBytes: Int64 }
        struct Authentication: Encodable { var checks: Bool }
        var hostname: String
        var domains: [String]
        var users: [User]
        var aliases: [String: [String]]
        var quota: Quota
        var suspended: Bool
        var admin = Admin(path: "sockets/admin.sock")
        var authentication = Authentication(checks: false)
        var listeners: [Listener]
    }

    public static func render(tenant: Tenant, plan: Plan, domains: [Domain], mailboxes: [Mailbox], aliases: [Alias], mailHost: String) -> String {
        let doc = Document(
            hostname: "mail." + (domains.first?.name ?? tenant.slug),
            domains: domains.map(\.name),
            users: mailboxes.map { .init(address: $0.address, password: $0.passwordHash, quotaBytes: $0.quotaBytes, addresses: []) },
            aliases: Dictionary(uniqueKeysWithValues: aliases.map { ($0.address, $0.targets) }),
            quota: .init(cellBytes: plan.storageBytes),
            suspended: tenant.status == .suspended,
            listeners: CellPorts.listeners.enumerated().map { i, l in
                .init(name: l.name, role: l.role, fd: 3 + i, implicitTLS: l.implicitTLS ? true : nil)
            })
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? enc.encode(doc)) ?? Data(), as: UTF8.self) + "\n"
    }

    public static func listeners(slot: Int, host: CellHost, bindHost: String) -> [ListenerSocket] {
        CellPorts.listeners.map { ListenerSocket(name: $0.name, host: bindHost, port: CellPorts.port($0.name, slot: slot, host: host)) }
    }
}
