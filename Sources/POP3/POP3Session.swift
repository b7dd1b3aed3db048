import MailCore

/// One INBOX message as a POP3 session sees it.
public struct POP3Message: Hashable, Sendable {
    public var uid: UInt32
    public var size: Int64
    public init(uid: UInt32, size: Int64) { self.uid = uid; self.size = size }
}

/// The engine's side of POP3 (the POP3 target never imports the store).
/// Calls block and run off the event loop.
public protocol POP3Backend: AnyObject, Sendable {
    /// INBOX and its UIDVALIDITY (for stable UIDL values).
    func inbox(user: String) throws -> (uidValidity: Int64, messages: [POP3Message])
    func bytes(user: String, uid: UInt32) throws -> [UInt8]
    /// Removes the messages deleted in the session (RFC 1939 §6, UPDATE state).
    func delete(user: String, uids: [UInt32]) throws
    /// RFC 1939 §8: the maildrop is locked while a session holds it.
    func lock(user: String) -> Bool
    func unlock(user: String)
}

/// POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595), SASL PLAIN
/// (RFC 5034), UIDL and TOP, as a session that runs one command at a time.
///
/// ```
/// C: USER alice@example.test      S: +OK
/// C: PASS ...                     S: +OK 2 messages
/// C: RETR 1                       S: +OK 120 octets / ... / .
/// ```
public final class POP3Session: @unchecked Sendable {
    public enum Outcome: Sendable {
        case respond([UInt8])
        case startTLS([UInt8])
        case authenticate(user: String, password: String)
        /// Send "+ " and give the next line to `saslResponse`.
        case saslContinuation
        case quit([UInt8])
    }

    enum State { case authorization, transaction }

    let backend: POP3Backend
    let tlsAvailable: Bool
    public private(set) var isTLS: Bool
    var state = State.authorization
    var pendingUser: String?
    public private(set) var user: String?
    var uidValidity: Int64 = 0
    var messages: [POP3Message] = []
    var deleted = Set<Int>()

    /// RFC 2449 §4: command lines are at most 255 octets; AUTH responses more.
    public static let maxLine = 255
    public static let maxAuthLine = 2048

    public init(backend: POP3Backend, isTLS: Bool, tlsAvailable: Bool) {
        self.backend = backend
        self.isTLS = isTLS
        self.tlsAvailable = tlsAvailable
    }

    public func greeting() -> [UInt8] { Array("+OK Postcell POP3 ready\r\n".utf8) }
    public func tlsEstablished() { isTLS = true }

    static func ok(_ text: String) -> [UInt8] { Array("+OK \(text)\r\n".utf8) }
    static func err(_ text: String) -> [UInt8] { Array("-ERR \(text)\r\n".utf8) }

    /// A multi-line response: dot-stuffed, CRLF line ends, "." terminator (RFC 1939 §3).
    static func multiline(_ first: String, _ body: [UInt8]) -> [UInt8] {
        var out = Array("+OK \(first)\r\n".utf8)
        out.reserveCapacity(body.count + 64)
        var atLineStart = true
        var i = 0
        while i < body.count {
            let b = body[i]
            if atLineStart && b == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
            if b == 10 && (i == 0 || body[i - 1] != 13) { out.append(13) }
            out.append(b)
            atLineStart = b == 10
            i += 1
        }
        if !atLineStart { out += [13, 10] }
        out += Array(".\r\n".utf8)
        return out
    }

    public func execute(_ line: [UInt8]) -> Outcome {
        let text = String(decoding: line, as: UTF8.self)
        let parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let verb = parts[0].uppercased()
        let args = Array(parts.dropFirst())
        do {
            switch (state, verb) {
            case (_, "CAPA"):
                var caps = ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
                if state == .authorization {
                    if !isTLS && tlsAvailable { caps.append("STLS") }
                    if isTLS { caps += ["USER", "SASL PLAIN"] }
                }
                caps.append("IMPLEMENTATION Postcell")
                return .respond(POP3Session.ok("Capability list follows") + Array((caps.joined(separator: "\r\n") + "\r\n.\r\n").utf8))
            case (_, "QUIT"):
                if state == .transaction, let user {
                    let uids = deleted.sorted().map { messages[$0].uid }
                    var failed = false
                    if !uids.isEmpty { do { try backend.delete(user: user, uids: uids) } catch { failed = true } }
                    backend.unlock(user: user)
                    self.user = nil
                    return .quit(failed ? POP3Session.err("[SYS/TEMP] Some deleted messages not removed") : POP3Session.ok("Bye"))
                }
                return .quit(POP3Session.ok("Bye"))
            case (.authorization, "STLS"):
                guard !isTLS, tlsAvailable else { return .respond(POP3Session.err("TLS already active or unavailable")) }
                return .startTLS(POP3Session.ok("Begin TLS negotiation"))
            case (.authorization, "USER"):
                guard isTLS else { return .respond(POP3Session.err("[SYS/PERM] USER only after STLS")) }
                guard args.count == 1, !args[0].isEmpty else { return .respond(POP3Session.err("Syntax: USER name")) }
                pendingUser = args[0]
                return .respond(POP3Session.ok("Send PASS"))
            case (.authorization, "PASS"):
                guard let u = pendingUser else { return .respond(POP3Session.err("USER first")) }
                pendingUser = nil
                // The password may contain spaces (RFC 1939 §7 leaves this to servers).
                let password = String(text.dropFirst(min(5, text.count)))
                return .authenticate(user: u, password: password)
            case (.authorization, "AUTH"):
                guard isTLS else { return .respond(POP3Session.err("[SYS/PERM] AUTH only after STLS")) }
                guard let mech = args.first?.uppercased() else {
                    return .respond(POP3Session.ok("Methods follow") + Array("PLAIN\r\n.\r\n".utf8))
                }
                guard mech == "PLAIN" else { return .respond(POP3Session.err("Unsupported mechanism")) }
                if args.count >= 2 { return saslResponse(Array(args[1].utf8)) }
                return .saslContinuation
            case (.authorization, _):
                return .respond(POP3Session.err(["STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL"].contains(verb)
                    ? "Not authenticated" : "Unknown command"))
            case (.transaction, "STAT"):
                let live = messages.indices.filter { !deleted.contains($0) }
                return .respond(POP3Session.ok("\(live.count) \(live.reduce(Int64(0)) { $0 + messages[$1].size })"))
            case (.transaction, "NOOP"):
                return .respond(POP3Session.ok(""))
            case (.transaction, "RSET"):
                deleted = []
                return .respond(POP3Session.ok("\(messages.count) messages"))
            case (.transaction, "LIST"), (.transaction, "UIDL"):
                let isList = verb == "LIST"
                func value(_ i: Int) -> String { isList ? String(messages[i].size) : "\(uidValidity).\(messages[i].uid)" }
                if let a = args.first {
                    let i = try index(a)
                    return .respond(POP3Session.ok("\(i + 1) \(value(i))"))
                }
                var lines = ""
                for i in messages.indices where !deleted.contains(i) { lines += "\(i + 1) \(value(i))\r\n" }
                return .respond(POP3Session.ok("Listing follows") + Array((lines + ".\r\n").utf8))
            case (.transaction, "RETR"):
                guard args.count == 1 else { return .respond(POP3Session.err("Syntax: RETR n")) }
                let i = try index(args[0])
                let body = try backend.bytes(user: user!, uid: messages[i].uid)
                return .respond(POP3Session.multiline("\(body.count) octets", body))
            case (.transaction, "TOP"):
                guard args.count == 2, let n = Int(args[1]), n >= 0 else { return .respond(POP3Session.err("Syntax: TOP n lines")) }
                let i = try index(args[0])
                let body = try backend.bytes(user: user!, uid: messages[i].uid)
                return .respond(POP3Session.multiline("Top of message follows", POP3Session.top(body, lines: n)))
            case (.transaction, "DELE"):
                guard args.count == 1 else { return .respond(POP3Session.err("Syntax: DELE n")) }
                let i = try index(args[0])
                deleted.insert(i)
                return .respond(POP3Session.ok("Deleted"))
            default:
                return .respond(POP3Session.err("Unknown command"))
            }
        } catch let e as POP3Error {
            return .respond(POP3Session.err(e.text))
        } catch {
            return .respond(POP3Session.err("[SYS/TEMP] Storage error, try again"))
        }
    }

    struct POP3Error: Error { var text: String }

    /// A live message number (1-based) as an index.
    func index(_ arg: String) throws -> Int {
        guard let n = Int(arg), n >= 1, n <= messages.count, !deleted.contains(n - 1) else { throw POP3Error(text: "No such message") }
        return n - 1
    }

    /// TOP: the header, the blank line, and the first `lines` body lines.
    static func top(_ m: [UInt8], lines: Int) -> [UInt8] {
        var i = 0
        var headerEnd = m.count
        while i < m.count {
            if m[i] == 10 && i + 1 < m.count && (m[i + 1] == 10 || (m[i + 1] == 13 && i + 2 < m.count && m[i + 2] == 10)) {
                headerEnd = m[i + 1] == 10 ? i + 2 : i + 3
                break
            }
            i += 1
        }
        if m.starts(with: [13, 10]) { headerEnd = 2 }
        var end = headerEnd
        var count = 0
        while end < m.count && count < lines {
            if let lf = m[end...].firstIndex(of: 10) { end = lf + 1 } else { end = m.count }
            count += 1
        }
        return Array(m[0..<end])
    }

    /// RFC 4616 PLAIN response to AUTH.
    public func saslResponse(_ line: [UInt8]) -> Outcome {
        if line == [UInt8(ascii: "*")] { return .respond(POP3Session.err("Authentication cancelled")) }
        guard let decoded = Base64.decode(line) else { return .respond(POP3Session.err("Bad base64")) }
        let parts = decoded.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[1].isEmpty else { return .respond(POP3Session.err("Malformed PLAIN response")) }
        let authz = String(decoding: parts[0], as: UTF8.self), authc = String(decoding: parts[1], as: UTF8.self)
        guard authz.isEmpty || authz.lowercased() == authc.lowercased() else { return .respond(POP3Session.err("[AUTH] Cannot act as another user")) }
        return .authenticate(user: authc, password: String(decoding: parts[2], as: UTF8.self))
    }

    /// After a successful password check: lock and open the maildrop.
    public func authenticated(user: String) -> [UInt8] {
        guard backend.lock(user: user) else { return POP3Session.err("[IN-USE] Mailbox in use by another session") }
        do {
            let inbox = try backend.inbox(user: user)
            self.user = user
            uidValidity = inbox.uidValidity
            messages = inbox.messages
            state = .transaction
            return POP3Session.ok("\(messages.count) messages")
        } catch {
            backend.unlock(user: user)
            return POP3Session.err("[SYS/TEMP] Mailbox unavailable")
        }
    }

    /// The credentials were right but logins are suspended: RFC 3206 §4
    /// [AUTH], a problem with the account that retrying will not fix.
    public func accountSuspended() -> [UInt8] {
        POP3Session.err("[AUTH] account suspended")
    }

    public func authenticationFailed(temporary: Bool) -> [UInt8] {
        POP3Session.err(temporary ? "[SYS/TEMP] Try again later" : "[AUTH] Authentication failed")
    }

    /// The connection closed without QUIT: nothing is deleted (RFC 1939 §6).
    public func closed() {
        if let user { backend.unlock(user: user) }
        user = nil
    }
}

