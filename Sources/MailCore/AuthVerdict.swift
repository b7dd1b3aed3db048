/// How a password check came out, for SMTP AUTH, IMAP and POP3 alike.
public enum AuthVerdict: Hashable, Sendable {
    case success(user: String)
    case invalid
    /// Locked out (too many failures for the IP or the account) or the
    /// credential store is unavailable: SMTP 454 4.7.0 (RFC 4954 §6),
    /// IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP].
    case temporaryFailure
    /// The password was right but the cell is suspended (docs/ADMIN-API.md):
    /// SMTP 525 5.7.13 (RFC 5248's registry, X.7.13 "User Account
    /// Disabled", given after a successful authentication), IMAP
    /// NO [UNAVAILABLE] (RFC 5530 §3), POP3 -ERR [AUTH] (RFC 3206 §4).
    case suspended
}
