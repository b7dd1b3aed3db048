import MailAuth
import MailCore

/// The `authentication` and `dkim` sections of the cell configuration
/// (docs/CELL-CONFIG.md): checks on inbound mail (SPF, DKIM, DMARC) and
/// DKIM signing of what the cell's users send.
extension CellConfiguration {
    /// Checks on mail received by `mx` listeners.
    public struct Authentication: Codable, Sendable, Equatable {
        /// SPF, DKIM and DMARC on inbound mail, with an Authentication-Results
        /// field on every message (default on).
        public var checks: Bool?
        /// The authserv-id of our Authentication-Results fields (RFC 8601
        /// §2.5); default the cell's hostname.
        public var authservID: String?
        /// `enforce`, `quarantine-only` or `monitor` (DMARCEnforcement).
        public var dmarcEnforcement: String?
        /// The Public Suffix List DMARC finds Organizational Domains with.
        public var publicSuffixList: String?
    }

    /// One signing key: messages whose From domain is `domain` get a
    /// signature with d=domain, s=selector.
    public struct DKIMKey: Codable, Sendable, Equatable {
        public var domain: String
        public var selector: String
        /// PEM (PKCS#8 or PKCS#1) or a base64 Ed25519 seed; relative to the
        /// data directory unless absolute.
        public var keyFile: String
        /// `rsa-sha256` or `ed25519-sha256`; when given it must match the key.
        public var algorithm: String?
    }

    static let authenticationKnownKeys: [String: Set<String>] = [
        "authentication": ["checks", "authservID", "dmarcEnforcement", "publicSuffixList"],
        "dkim": ["domain", "selector", "keyFile", "algorithm"],
    ]

    /// Whether inbound checks run (docs/CELL-CONFIG.md: on unless turned off).
    public var checksEnabled: Bool { authentication?.checks ?? true }

    /// What the `authentication` and `dkim` sections may hold; the key files
    /// themselves are read when the configuration is loaded into the engine
    /// (`MailAuthSetup`).
    func validateAuthentication() throws {
        if let a = authentication {
            if let id = a.authservID, !AuthservID.isValid(id) {
                throw Invalid("authentication.authservID must be a domain-like token (letters, digits, \".\", \"-\", \"_\")")
            }
            if let e = a.dmarcEnforcement, DMARCEnforcement(rawValue: e) == nil {
                throw Invalid("authentication.dmarcEnforcement must be enforce, quarantine-only or monitor")
            }
            if let p = a.publicSuffixList, p.isEmpty { throw Invalid("authentication.publicSuffixList is empty") }
        }
        var seen = Set<String>()
        for (i, k) in (dkim ?? []).enumerated() {
            let name = "dkim[\(i)]"
            var p = AddressParser(Array(k.domain.utf8), utf8Allowed: false)
            guard p.domain() != nil, p.atEnd, k.domain.contains(".") else { throw Invalid("\(name): bad domain \(k.domain)") }
            guard !k.selector.isEmpty, k.selector.utf8.count <= 63 * 4,
                  k.selector.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ label in
                      !label.isEmpty && label.utf8.count <= 63
                          && label.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") }
                  }) else { throw Invalid("\(name): bad selector \(k.selector)") }
            guard !k.keyFile.isEmpty else { throw Invalid("\(name): keyFile is empty") }
            if let a = k.algorithm, DKIMSignature.Algorithm(rawValue: a) == nil || a == "rsa-sha1" {
                throw Invalid("\(name): algorithm must be rsa-sha256 or ed25519-sha256")
            }
            let id = k.domain.lowercased() + "/" + k.selector.lowercased()
            guard seen.insert(id).inserted else { throw Invalid("\(name): duplicate selector \(k.selector) for \(k.domain)") }
        }
    }
}

/// How far the cell follows the DMARC policies senders publish (RFC 7489
/// §6.6.4 leaves the final decision to the receiver).
public enum DMARCEnforcement: String, Codable, Sendable, Hashable {
    /// p=reject is refused at the end of DATA, p=quarantine goes to Junk.
    case enforce
    /// Both p=reject and p=quarantine go to Junk; nothing is refused.
    case quarantineOnly = "quarantine-only"
    /// Results are recorded, every message goes to the INBOX.
    case monitor
}

enum AuthservID {
    /// A dot-atom of domain characters: what RFC 8601 §2.5 expects (a
    /// domain name) and what can be written unquoted.
    static func isValid(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 255 && !s.hasPrefix(".") && !s.hasSuffix(".")
            && s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-_".unicodeScalars.contains($0)) }
    }
}
