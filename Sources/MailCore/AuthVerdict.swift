/// How a password check came out, for SMTP AUTH, IMAP and POP3 alike.
public enum AuthVerdict: Hashable, Sendable {
    case success(user: String)
    case invalid
    /// Locked out (too many failures for the IP or the account) or the
    /// credential store is unavailable: SMTP 454 4.7.0 (RFC 4954 §6),
    /// IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP].
    case temporaryFailure
}
