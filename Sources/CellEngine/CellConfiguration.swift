import DNS
import Foundation
import MailCore
import MailQueue
import SMTP

/// The cell configuration file (docs/CELL-CONFIG.md), as decoded. Unknown
/// keys are rejected so that a misspelt limit never goes unnoticed.
public struct CellConfiguration: Codable, Sendable {
    public struct User: Codable, Sendable {
        public var address: String
        public var password: String
        public var quotaBytes: Int64?
        public var addresses: [String]?
    }
    public struct Quota: Codable, Sendable {
        public var cellBytes: Int64?
        public var userBytes: Int64?
    }
    public struct Limits: Codable, Sendable {
        public var maxMessageBytes: Int?
        public var maxRecipients: Int?
        public var maxCommandLineBytes: Int?
        public var maxCommandsPerSession: Int?
        public var maxErrorsPerSession: Int?
        public var idleTimeoutSeconds: Int?
        public var maxConnections: Int?
        public var maxConnectionsPerIP: Int?
    }
    public struct Auth: Codable, Sendable {
        public var maxFailuresPerIP: Int?
        public var maxFailuresPerAccount: Int?
        public var windowSeconds: Int?
        public var lockoutSeconds: Int?
    }
    public struct TLS: Codable, Sendable {
        public var certificate: String?
        public var key: String?
    }
    /// The resolvers the cell asks (outbound delivery, SPF, DKIM, DMARC, DANE).
    public struct DNS: Codable, Sendable, Equatable {
        public var servers: [String]?
        public var timeoutMs: Int?
        public var attempts: Int?
        public var trustAD: Bool?
    }
    /// Outbound delivery (docs/CELL-CONFIG.md `outbound`).
    public struct Outbound: Codable, Sendable, Equatable {
        public struct Relay: Codable, Sendable, Equatable {
            public var host: String?
            public var port: Int?
            public var path: String?
            public var tls: OutboundConfiguration.Relay.TLS?
            public var username: String?
            /// A file holding the password (relative to the data directory); never the password itself.
            public var passwordFile: String?
            public var verifyCertificate: Bool?
        }
        public var hold: Bool?
        public var port: Int?
        public var ipv6: Bool?
        public var mtaSTSPort: Int?
        public var retryBaseSeconds: Int?
        public var retryMaxSeconds: Int?
        public var maxQueueSeconds: Int?
        public var delayWarningSeconds: Int?
        public var maxConnections: Int?
        public var maxConnectionsPerDestination: Int?
        public var maxRecipientsPerTransaction: Int?
        public var connectTimeoutMs: Int?
        public var commandTimeoutMs: Int?
        public var trustRoots: String?
        public var relay: Relay?
    }
    public struct Listener: Codable, Sendable, Hashable {
        public var name: String
        public var role: ListenerRole
        public var address: String?
        public var path: String?
        /// An inherited socket, already bound and listening (fd 3 and up):
        /// the host binds it and hands it to a cell that has no network of
        /// its own. Kept across reloads, since it cannot be bound again.
        public var fd: Int32?
        public var implicitTLS: Bool?
        public var proxyProtocol: Bool?
    }
    /// The admin API (docs/ADMIN-API.md): HTTP on a unix socket.
    public struct Admin: Codable, Sendable, Hashable {
        /// Relative to the data directory unless absolute.
        public var path: String
    }

    public var hostname: String
    public var dataDirectory: String?
    public var domains: [String]
    public var users: [User]?
    public var aliases: [String: [String]]?
    public var recipientDelimiter: String?
    public var quota: Quota?
    public var limits: Limits?
    public var auth: Auth?
    public var tls: TLS?
    public var trustedProxies: [String]?
    public var dns: DNS?
    public var outbound: Outbound?
    public var listeners: [Listener]
    /// Inbound checks and DKIM signing (CellConfiguration+Authentication.swift).
    public var authentication: Authentication?
    public var dkim: [DKIMKey]?
    /// The admin API's socket; no section, no API.
    public var admin: Admin?
    /// Every login is refused (IMAP, POP3, SMTP AUTH); mail is still received.
    public var suspended: Bool?

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// The resolver settings: the configured servers, else the system's
    /// (`resolvConf`, normally /etc/resolv.conf), else 127.0.0.1.
    public func resolverConfiguration(resolvConf: String? = try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8))
        -> DNSResolverConfiguration {
        var servers = (dns?.servers ?? []).compactMap(DNSResolverConfiguration.server)
        if servers.isEmpty { servers = DNSResolverConfiguration.servers(resolvConf: resolvConf ?? "") }
        if servers.isEmpty { servers = [DNSResolverConfiguration.server("127.0.0.1")!] }
        var c = DNSResolverConfiguration(servers: servers)
        if let t = dns?.timeoutMs { c.timeout = .milliseconds(Int64(t)) }
        if let a = dns?.attempts { c.attempts = a }
        c.trustAD = dns?.trustAD ?? false
        return c
    }

    /// Reads and checks a configuration file.
    public static func load(path: String) throws -> CellConfiguration {
        try parse(DurableFile.readAll(path), source: path)
    }

    /// Checks a configuration's bytes: what `load` does once it has read the
    /// file, and what the admin API does with a changed configuration before
    /// it writes it.
    public static func parse(_ bytes: [UInt8], source: String) throws -> CellConfiguration {
        try rejectUnknownKeys(bytes)
        let config: CellConfiguration
        do {
            config = try JSONDecoder().decode(CellConfiguration.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw Invalid("\(source): \(describe(error))")
        }
        try config.validate()
        return config
    }

    /// The file's bytes: sorted keys, indented, absent settings left out.
    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self)) + [UInt8(ascii: "\n")]
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let ctx): return "missing key \((ctx.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: "."))"
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .dataCorrupted(let ctx):
            return "\(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    static let knownKeys: [String: Set<String>] = [
        "": ["hostname", "dataDirectory", "domains", "users", "aliases", "recipientDelimiter", "quota", "limits", "auth", "tls", "trustedProxies", "dns", "outbound", "listeners",
             "authentication", "dkim", "admin", "suspended"],
        "users": ["address", "password", "quotaBytes", "addresses"],
        "quota": ["cellBytes", "userBytes"],
        "limits": ["maxMessageBytes", "maxRecipients", "maxCommandLineBytes", "maxCommandsPerSession", "maxErrorsPerSession", "idleTimeoutSeconds", "maxConnections", "maxConnectionsPerIP"],
        "auth": ["maxFailuresPerIP", "maxFailuresPerAccount", "windowSeconds", "lockoutSeconds"],
        "tls": ["certificate", "key"],
        "dns": ["servers", "timeoutMs", "attempts", "trustAD"],
        "outbound": ["hold", "port", "ipv6", "mtaSTSPort", "retryBaseSeconds", "retryMaxSeconds", "maxQueueSeconds", "delayWarningSeconds",
                     "maxConnections", "maxConnectionsPerDestination", "maxRecipientsPerTransaction", "connectTimeoutMs",
                     "commandTimeoutMs", "trustRoots", "relay"],
        "outbound.relay": ["host", "port", "path", "tls", "username", "passwordFile", "verifyCertificate"],
        "listeners": ["name", "role", "address", "path", "fd", "implicitTLS", "proxyProtocol"],
        "admin": ["path"],
    ].merging(authenticationKnownKeys) { a, _ in a }

    static func rejectUnknownKeys(_ bytes: [UInt8]) throws {
        guard let top = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw Invalid("the configuration must be a JSON object")
        }
        func check(_ object: [String: Any], _ section: String) throws {
            for key in object.keys where !(knownKeys[section]?.contains(key) ?? true) {
                throw Invalid("unknown key \(section.isEmpty ? "" : section + ".")\(key)")
            }
        }
        try check(top, "")
        for (section, value) in top {
            if let o = value as? [String: Any], section != "aliases" {
                try check(o, section)
                for (sub, v) in o { if let inner = v as? [String: Any], knownKeys[section + "." + sub] != nil { try check(inner, section + "." + sub) } }
            }
            if let a = value as? [[String: Any]] { for o in a { try check(o, section) } }
        }
    }

    func validate() throws {
        guard !hostname.isEmpty else { throw Invalid("hostname is empty") }
        guard !domains.isEmpty else { throw Invalid("at least one domain is required") }
        for d in domains {
            var p = AddressParser(Array(d.utf8), utf8Allowed: true)
            guard p.domain() != nil, p.atEnd else { throw Invalid("bad domain \(d)") }
        }
        var seen = Set<String>()
        for u in users ?? [] {
            guard let a = MailAddress.parse(u.address) else { throw Invalid("bad user address \(u.address)") }
            guard !seen.contains(a.lookupKey) else { throw Invalid("duplicate address \(u.address)") }
            seen.insert(a.lookupKey)
            do { _ = try PasswordHash(parsing: u.password) } catch { throw Invalid("user \(u.address): password is not a supported hash") }
            for extra in u.addresses ?? [] {
                guard let e = MailAddress.parse(extra) else { throw Invalid("bad address \(extra)") }
                guard !seen.contains(e.lookupKey) else { throw Invalid("duplicate address \(extra)") }
                seen.insert(e.lookupKey)
            }
        }
        for (alias, targets) in aliases ?? [:] {
            let isCatchAll = alias.hasPrefix("@")
            if isCatchAll {
                var p = AddressParser(Array(alias.utf8.dropFirst()), utf8Allowed: true)
                guard p.domain() != nil, p.atEnd else { throw Invalid("bad catch-all \(alias)") }
            } else {
                guard MailAddress.parse(alias) != nil else { throw Invalid("bad alias \(alias)") }
            }
            guard !targets.isEmpty else { throw Invalid("alias \(alias) has no targets") }
            for t in targets where MailAddress.parse(t) == nil { throw Invalid("alias \(alias): bad target \(t)") }
        }
        var names = Set<String>()
        for l in listeners {
            guard names.insert(l.name).inserted else { throw Invalid("duplicate listener \(l.name)") }
            let places = [l.address != nil, l.path != nil, l.fd != nil].filter { $0 }.count
            guard places == 1 else { throw Invalid("listener \(l.name) needs exactly one of address, path and fd") }
            if let a = l.address, ListenerAddress.parse(a) == nil { throw Invalid("listener \(l.name): bad address \(a)") }
            // 0, 1 and 2 are standard input, output and error.
            if let fd = l.fd, fd < 3 { throw Invalid("listener \(l.name): fd must be 3 or more") }
        }
        let fds = listeners.compactMap(\.fd)
        guard Set(fds).count == fds.count else { throw Invalid("two listeners name the same fd") }
        if let a = admin, a.path.isEmpty { throw Invalid("admin.path is empty") }
        for t in trustedProxies ?? [] where PeerMatcher(t) == nil { throw Invalid("bad trusted proxy \(t)") }
        for server in dns?.servers ?? [] where DNSResolverConfiguration.server(server) == nil {
            throw Invalid("dns: bad server address \(server)")
        }
        if let t = dns?.timeoutMs, !(1...60_000).contains(t) { throw Invalid("dns.timeoutMs must be 1 to 60000") }
        if let a = dns?.attempts, !(1...10).contains(a) { throw Invalid("dns.attempts must be 1 to 10") }
        if (tls?.certificate == nil) != (tls?.key == nil) { throw Invalid("tls needs both certificate and key") }
        try validateAuthentication()
        try validateOutbound()
    }

    func validateOutbound() throws {
        guard let o = outbound else { return }
        func range(_ v: Int?, _ name: String, _ r: ClosedRange<Int>) throws {
            if let v, !r.contains(v) { throw Invalid("outbound.\(name) must be \(r.lowerBound) to \(r.upperBound)") }
        }
        try range(o.port, "port", 1...65535)
        try range(o.mtaSTSPort, "mtaSTSPort", 1...65535)
        try range(o.retryBaseSeconds, "retryBaseSeconds", 1...86_400)
        try range(o.retryMaxSeconds, "retryMaxSeconds", 1...604_800)
        try range(o.maxQueueSeconds, "maxQueueSeconds", 0...2_592_000)
        try range(o.delayWarningSeconds, "delayWarningSeconds", 0...2_592_000)
        try range(o.maxConnections, "maxConnections", 1...1000)
        try range(o.maxConnectionsPerDestination, "maxConnectionsPerDestination", 1...100)
        try range(o.maxRecipientsPerTransaction, "maxRecipientsPerTransaction", 1...1000)
        try range(o.connectTimeoutMs, "connectTimeoutMs", 1...600_000)
        try range(o.commandTimeoutMs, "commandTimeoutMs", 1...3_600_000)
        if let r = o.relay {
            guard (r.host == nil) != (r.path == nil) else { throw Invalid("outbound.relay needs exactly one of host and path") }
            try range(r.port, "relay.port", 1...65535)
            if r.username != nil, r.passwordFile == nil { throw Invalid("outbound.relay: username needs passwordFile") }
            // RFC 4954 §4 / RFC 8314: no password over a connection without TLS.
            if r.username != nil, (r.tls ?? .starttls) == .none { throw Invalid("outbound.relay: AUTH needs tls starttls or implicit") }
        }
    }

    /// The queue's settings; relative paths resolve against `dataDirectory`;
    /// the relay's password is read from its file here.
    public func outboundConfiguration(dataDirectory: String) throws -> OutboundConfiguration {
        func path(_ p: String) -> String { p.hasPrefix("/") ? p : dataDirectory + "/" + p }
        var c = OutboundConfiguration(hostname: hostname)
        guard let o = outbound else { return c }
        c.hold = o.hold ?? false
        if let v = o.port { c.port = v }
        if let v = o.ipv6 { c.ipv6 = v }
        if let v = o.mtaSTSPort { c.mtaSTSPort = v }
        if let v = o.retryBaseSeconds { c.retry.base = Int64(v) }
        if let v = o.retryMaxSeconds { c.retry.maximum = Int64(v) }
        if let v = o.maxQueueSeconds { c.retry.lifetime = Int64(v) }
        if let v = o.delayWarningSeconds { c.retry.warnAfter = Int64(v) }
        if let v = o.maxConnections { c.maxConnections = v }
        if let v = o.maxConnectionsPerDestination { c.maxConnectionsPerDestination = v }
        if let v = o.maxRecipientsPerTransaction { c.maxRecipientsPerTransaction = v }
        if let v = o.connectTimeoutMs { c.connectTimeout = .milliseconds(Int64(v)) }
        if let v = o.commandTimeoutMs { c.commandTimeout = .milliseconds(Int64(v)) }
        c.trustRoots = o.trustRoots.map(path)
        if let r = o.relay {
            var password: String?
            if let f = r.passwordFile {
                do {
                    let bytes = try DurableFile.readAll(path(f))
                    password = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .newlines)
                } catch {
                    throw Invalid("outbound.relay.passwordFile: cannot read \(f)")
                }
            }
            let tls = r.tls ?? .starttls
            c.relay = .init(host: r.host, port: r.port ?? (tls == .implicit ? 465 : 587), path: r.path.map(path), tls: tls,
                            username: r.username, password: password, verifyCertificate: r.verifyCertificate ?? true)
        }
        return c
    }
}

/// `HOST:PORT` with `[v6]:port` for IPv6.
enum ListenerAddress {
    static func parse(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard IPAddress.parse(host) != nil || host == "localhost" else { return nil }
        return (host, port)
    }
}

/// What a listener serves (docs/CELL-CONFIG.md).
public enum ListenerRole: String, Codable, Sendable, Hashable {
    case mx, submission, imap, pop3

    /// The SMTP role, for the SMTP listeners.
    var smtpRole: SMTPRole? {
        switch self {
        case .mx: return .mx
        case .submission: return .submission
        case .imap, .pop3: return nil
        }
    }
}
