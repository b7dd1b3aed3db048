import ControlPlane
import Foundation
import MailCore
import PanelSecurity

/// The demo accounts `postcell up` prints: a staff admin and a customer
/// with one mailbox. Their passwords are made once and kept in
/// STATE/demo-credentials.json (mode 0600).
struct Demo: Codable {
    var staffEmail: String
    var staffPassword: String
    var ownerEmail: String
    var ownerPassword: String
    var mailbox: String

    static func password() -> String {
        // Four random words' worth of entropy in a form people can type.
        let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789")
        var rng = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String((0..<5).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }) }.joined(separator: "-")
    }

    /// A random password the service's policy accepts for `user`: about one
    /// draw in a hundred has runs cracklib calls systematic ("abcd", "8765")
    /// or contains a dictionary word, and is drawn again.
    static func password(acceptedBy service: ControlService, user: String) -> String {
        while true {
            let candidate = password()
            if service.checkPassword(candidate, user: user).accepted { return candidate }
        }
    }

    static func ensure(_ service: ControlService, state: String) async throws -> Demo {
        let file = state + "/demo-credentials.json"
        if let data = FileManager.default.contents(atPath: file), let demo = try? JSONDecoder().decode(Demo.self, from: data),
           try await service.store.user(email: demo.staffEmail) != nil {
            return demo
        }
        let domain = service.config.providerDomain
        let staffEmail = "admin@" + domain, ownerEmail = "owner@demo.example"
        let demo = Demo(staffEmail: staffEmail, staffPassword: password(acceptedBy: service, user: staffEmail), ownerEmail: ownerEmail,
                        ownerPassword: password(acceptedBy: service, user: ownerEmail), mailbox: "family@demo." + domain)
        let system = Caller.system("postcell up")
        let staff = try await service.createStaff(email: demo.staffEmail, password: demo.staffPassword, role: .admin, caller: system)
        _ = staff
        try await service.signupVerified(SignupRequest(email: demo.ownerEmail, password: demo.ownerPassword, name: "Demo family", slug: "demo", plan: "family"), caller: system)
        guard let owner = try await service.store.user(email: demo.ownerEmail) else { return demo }
        _ = try await service.createMailbox(tenant: nil, local: "family", domain: nil, displayName: "The Demo family", password: demo.ownerPassword,
                                            caller: Caller(user: owner, ip: "postcell up"))
        let data = try JSONEncoder().encode(demo)
        FileManager.default.createFile(atPath: file, contents: data, attributes: [.posixPermissions: 0o600])
        return demo
    }

    static func seed(_ service: ControlService, tenants: Int) async throws -> Int {
        try await service.seed(tenants: tenants, passwordHash: try PasswordHash.make(password: "seeded-" + password(), log2N: 10).description)
    }
}
