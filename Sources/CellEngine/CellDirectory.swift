import MailCore

/// Lookup tables derived from a configuration: who owns which address, what
/// aliases expand to, which domains are ours. Immutable; a reload builds a new one.
public struct CellDirectory: Sendable {
    public struct UserEntry: Sendable {
        public var address: String
        public var password: PasswordHash
        public var quotaBytes: Int64
        /// Every address (lower-cased) this user may receive at and send from.
        public var owned: Set<String>
    }

    /// Where mail for one envelope recipient goes.
    public enum Resolution: Hashable, Sendable {
        /// Local users' primary addresses and remote addresses to forward to.
        case deliver(local: [String], remote: [String])
        case notOurDomain
        case unknown
    }

    public let domains: Set<String>
    public let firstDomain: String
    public let users: [String: UserEntry]
    /// The first configured user: receives postmaster@ of every domain unless
    /// a user or alias says otherwise (RFC 5321 §4.5.1 requires postmaster).
    let firstUser: String?
    let owners: [String: String]
    let aliases: [String: [String]]
    let delimiter: String

    public init(_ config: CellConfiguration) throws {
        domains = Set(config.domains.map { $0.lowercased() })
        firstDomain = config.domains[0].lowercased()
        delimiter = config.recipientDelimiter ?? "+"
        var users: [String: UserEntry] = [:]
        var owners: [String: String] = [:]
        let defaultQuota = config.quota?.userBytes ?? 0
        for u in config.users ?? [] {
            let key = MailAddress.parse(u.address)!.lookupKey
            var owned: Set<String> = [key]
            for extra in u.addresses ?? [] { owned.insert(MailAddress.parse(extra)!.lookupKey) }
            users[key] = UserEntry(address: key, password: try PasswordHash(parsing: u.password),
                                   quotaBytes: u.quotaBytes ?? defaultQuota, owned: owned)
            for a in owned { owners[a] = key }
        }
        self.users = users
        self.owners = owners
        firstUser = config.users?.first.map { MailAddress.parse($0.address)!.lookupKey }
        var aliases: [String: [String]] = [:]
        for (k, v) in config.aliases ?? [:] {
            let key = k.hasPrefix("@") ? k.lowercased() : MailAddress.parse(k)!.lookupKey
            aliases[key] = v.map { MailAddress.parse($0)!.lookupKey }
        }
        self.aliases = aliases
    }

    public func isLocalDomain(_ domain: String) -> Bool { domains.contains(domain.lowercased()) }

    /// Resolves a recipient: exact owner, alias, plus-address base, catch-all.
    public func resolve(_ address: MailAddress) -> Resolution {
        guard !address.isAddressLiteral, isLocalDomain(address.domain) else { return .notOurDomain }
        // Quoted local parts never name a local user (they are how "user@other"
        // relaying tricks are written).
        if address.wasQuoted { return .unknown }
        var local: [String] = []
        var remote: [String] = []
        guard expand(address.lookupKey, depth: 0, local: &local, remote: &remote) else {
            if address.localPart.lowercased() == "postmaster", let firstUser { return .deliver(local: [firstUser], remote: []) }
            return .unknown
        }
        return .deliver(local: local, remote: remote)
    }

    func expand(_ key: String, depth: Int, local: inout [String], remote: inout [String]) -> Bool {
        guard depth < 8, let at = key.lastIndex(of: "@") else { return false }
        let domain = String(key[key.index(after: at)...])
        guard domains.contains(domain) else {
            if !remote.contains(key) { remote.append(key) }
            return true
        }
        if let owner = owners[key] {
            if !local.contains(owner) { local.append(owner) }
            return true
        }
        if let targets = aliases[key] {
            var any = false
            for t in targets where expand(t, depth: depth + 1, local: &local, remote: &remote) { any = true }
            return any
        }
        let localPart = String(key[..<at])
        if !delimiter.isEmpty, let d = localPart.range(of: delimiter), d.lowerBound != localPart.startIndex {
            let base = String(localPart[..<d.lowerBound]) + "@" + domain
            if expand(base, depth: depth + 1, local: &local, remote: &remote) { return true }
        }
        if let targets = aliases["@" + domain] {
            var any = false
            for t in targets where t != key && expand(t, depth: depth + 1, local: &local, remote: &remote) { any = true }
            return any
        }
        return false
    }
}
