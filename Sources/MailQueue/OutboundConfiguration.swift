import NIOCore
import NIOSSL

/// How the cell sends mail out (docs/CELL-CONFIG.md `outbound`).
public struct OutboundConfiguration: Sendable {
    /// A relay (smarthost) all mail goes through: the edge's relay, or an
    /// ISP's for a home appliance.
    public struct Relay: Sendable, Hashable {
        public enum TLS: String, Sendable, Hashable, Codable {
            /// STARTTLS required (RFC 3207).
            case starttls
            /// TLS from the first byte (RFC 8314, port 465).
            case implicit
            /// No TLS: only for a relay on a unix socket or loopback; AUTH is then refused.
            case none
        }
        /// A host name or address, with `port`; or a unix socket `path`.
        public var host: String?
        public var port: Int
        public var path: String?
        public var tls: TLS
        public var username: String?
        public var password: String?
        /// Verify the relay's certificate against the trust roots and its name.
        public var verifyCertificate: Bool

        public init(host: String?, port: Int, path: String?, tls: TLS, username: String?, password: String?, verifyCertificate: Bool) {
            self.host = host
            self.port = port
            self.path = path
            self.tls = tls
            self.username = username
            self.password = password
            self.verifyCertificate = verifyCertificate
        }
    }

    /// EHLO name and Reporting-MTA of DSNs.
    public var hostname: String
    /// Keep mail in the queue and send nothing (an operator's pause; the
    /// test suite's default, so that no test sends mail it did not mean to).
    public var hold = false
    /// The port of MX hosts (25; tests point it elsewhere).
    public var port: Int = 25
    public var ipv6 = true
    /// The HTTPS port MTA-STS policies are fetched from (443; tests point it elsewhere).
    public var mtaSTSPort = 443
    public var retry = RetryPolicy()
    /// Connections at once, in all and per destination domain.
    public var maxConnections = 20
    public var maxConnectionsPerDestination = 4
    /// Recipients per transaction (the rest go in the next one on the same connection).
    public var maxRecipientsPerTransaction = 50
    public var connectTimeout: TimeAmount = .seconds(30)
    /// How long a server may stay silent (RFC 5321 §4.5.3.2: minutes).
    public var commandTimeout: TimeAmount = .seconds(300)
    public var relay: Relay?
    /// PEM file of CA certificates for verified TLS (a relay, MTA-STS); nil: the system's.
    public var trustRoots: String?

    public init(hostname: String) { self.hostname = hostname }
}
