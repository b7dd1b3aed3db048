import Foundation

/// Input rules shared by the panels and the API.
/// A checked input: the normalised value, or what is wrong with it.
public enum Checked: Sendable, Equatable {
    case ok(String)
    case bad(String)
}

public enum Validation {
    /// Local parts the provider keeps: RFC 2142 role addresses and the
    /// names every mail system reserves.
    public static let reservedLocalParts: Set<String> = [
        "postmaster", "abuse", "hostmaster", "webmaster", "security", "noc", "root", "mailer-daemon",
        "nobody", "noreply", "no-reply", "admin", "administrator", "support", "info", "ssladmin",
        "sysadmin", "dmarc", "tls-reports", "dmarc-reports",
    ]
    /// Subdomain labels the provider keeps for itself.
    public static let reservedSlugs: Set<String> = [
        "www", "mail", "mx", "smtp", "imap", "pop", "pop3", "api", "panel", "staff", "admin", "static",
        "autoconfig", "autodiscover", "mta-sts", "postmaster", "abuse", "root", "support", "billing", "status",
        "edge", "relay", "ns", "ns1", "ns2", "dns", "webmail", "help", "security",
    ]

    /// A mailbox local part: lower-case dot-atom letters, digits and `.-_`,
    /// 1 to 64 characters (RFC 5321 §4.5.3.1.1), no leading, trailing or
    /// double dot (RFC 5322 §3.4.1 dot-atom).
    public static func localPart(_ raw: String) -> Checked {
        let s = raw.trimmingCharacters(in: .whitespaces).lowercased()
        if s.isEmpty { return .bad("Enter a name for the address.") }
        if s.utf8.count > 64 { return .bad("At most 64 characters.") }
        let ok = s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "-" || $0 == "_" }
        if !ok { return .bad("Use only letters, digits, dots, hyphens and underscores.") }
        if s.hasPrefix(".") || s.hasSuffix(".") || s.contains("..") { return .bad("Dots cannot start or end the name or be doubled.") }
        if reservedLocalParts.contains(s) { return .bad("“\(s)” is reserved.") }
        return .ok(s)
    }

    /// A tenant's subdomain label (RFC 1035 §2.3.1 letter-digit-hyphen), 3–30 characters.
    public static func slug(_ raw: String) -> Checked {
        let s = raw.trimmingCharacters(in: .whitespaces).lowercased()
        if s.count < 3 || s.count > 30 { return .bad("Between 3 and 30 characters.") }
        let ok = s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        if !ok || s.hasPrefix("-") || s.hasSuffix("-") || s.contains("--") {
            return .bad("Use letters, digits and single hyphens, not at the start or end.")
        }
        if reservedSlugs.contains(s) { return .bad("“\(s)” is reserved.") }
        return .ok(s)
    }

    /// An e-mail address to reach a customer at: one @, a dot-atom-ish local
    /// part and a domain with a dot; at most 254 octets (RFC 5321 §4.5.3.1.3).
    public static func email(_ raw: String) -> Checked {
        let s = raw.trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { return .bad("Enter your e-mail address.") }
        guard s.utf8.count <= 254, !s.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" || $0 == "\"" || $0 == "," || $0 == ";" || $0 == "\\" }) else {
            return .bad("That is not an e-mail address.")
        }
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64,
              !parts[0].hasPrefix("."), !parts[0].hasSuffix("."), !parts[0].contains(".."),
              domain(String(parts[1])) != nil else { return .bad("That is not an e-mail address.") }
        return .ok(String(parts[0]) + "@" + parts[1].lowercased())
    }

    /// A DNS domain name: LDH labels of 1–63, at least two labels, 253 octets.
    public static func domain(_ raw: String) -> String? {
        let s = raw.lowercased()
        guard s.utf8.count <= 253 else { return nil }
        let labels = s.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return nil }
        for l in labels {
            guard (1...63).contains(l.utf8.count), !l.hasPrefix("-"), !l.hasSuffix("-"),
                  l.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }) else { return nil }
        }
        return s
    }

    /// A display name: printable, 0–80 characters, no control characters.
    public static func displayName(_ raw: String) -> Checked {
        let s = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if s.count > 80 { return .bad("At most 80 characters.") }
        if s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "\"" || $0 == "<" || $0 == ">" }) {
            return .bad("Quotes, angle brackets and control characters are not allowed.")
        }
        return .ok(s)
    }
}
