import POP3
import Testing

final class MemoryMaildrop: POP3Backend, @unchecked Sendable {
    var store: [UInt32: [UInt8]] = [1: Array("Subject: a\r\n\r\n.leading\r\nline 2\r\nline 3\r\n".utf8), 2: Array("Subject: b\n\nbare LF\n".utf8)]
    var locked = Set<String>()
    func inbox(user: String) throws -> (uidValidity: Int64, messages: [POP3Message]) {
        (77, store.keys.sorted().map { POP3Message(uid: $0, size: Int64(store[$0]!.count)) })
    }
    func bytes(user: String, uid: UInt32) throws -> [UInt8] { store[uid]! }
    func delete(user: String, uids: [UInt32]) throws { for u in uids { store[u] = nil } }
    func lock(user: String) -> Bool { locked.insert(user).inserted }
    func unlock(user: String) { locked.remove(user) }
}

/// RFC 1939 transcripts against an in-memory maildrop.
@Suite struct POP3SessionTests {
    func text(_ o: POP3Session.Outcome) -> String {
        switch o {
        case .respond(let b), .startTLS(let b), .quit(let b): return String(decoding: b, as: UTF8.self)
        case .authenticate(let u, let p): return "AUTH \(u) \(p)"
        case .saslContinuation: return "+"
        }
    }
    func run(_ s: POP3Session, _ line: String) -> String { text(s.execute(Array(line.utf8))) }

    @Test func loginOnlyOverTLS() {
        let s = POP3Session(backend: MemoryMaildrop(), isTLS: false, tlsAvailable: true)
        #expect(run(s, "CAPA").contains("STLS"))
        #expect(!run(s, "CAPA").contains("USER"))
        #expect(run(s, "USER alice").hasPrefix("-ERR"))
        #expect(run(s, "STAT") == "-ERR Not authenticated\r\n")
        #expect(run(s, "STLS") == "+OK Begin TLS negotiation\r\n")
        s.tlsEstablished()
        #expect(run(s, "USER alice") == "+OK Send PASS\r\n")
        #expect(run(s, "PASS two words") == "AUTH alice two words")
        #expect(text(s.saslResponse(Array("AGFsaWNlAHNlY3JldA==".utf8))) == "AUTH alice secret")
    }

    @Test func transaction() {
        let drop = MemoryMaildrop()
        let s = POP3Session(backend: drop, isTLS: true, tlsAvailable: true)
        #expect(String(decoding: s.authenticated(user: "alice"), as: UTF8.self) == "+OK 2 messages\r\n")
        // A second session is refused while the maildrop is locked.
        let other = POP3Session(backend: drop, isTLS: true, tlsAvailable: true)
        #expect(String(decoding: other.authenticated(user: "alice"), as: UTF8.self).hasPrefix("-ERR [IN-USE]"))
        #expect(run(s, "STAT") == "+OK 2 60\r\n")
        #expect(run(s, "LIST") == "+OK Listing follows\r\n1 40\r\n2 20\r\n.\r\n")
        #expect(run(s, "UIDL 2") == "+OK 2 77.2\r\n")
        // Dot-stuffing and CRLF on the way out (RFC 1939 §3).
        #expect(run(s, "RETR 1") == "+OK 40 octets\r\nSubject: a\r\n\r\n..leading\r\nline 2\r\nline 3\r\n.\r\n")
        #expect(run(s, "RETR 2") == "+OK 20 octets\r\nSubject: b\r\n\r\nbare LF\r\n.\r\n")
        #expect(run(s, "TOP 1 1") == "+OK Top of message follows\r\nSubject: a\r\n\r\n..leading\r\n.\r\n")
        #expect(run(s, "DELE 1") == "+OK Deleted\r\n")
        #expect(run(s, "RETR 1") == "-ERR No such message\r\n")
        #expect(run(s, "RSET") == "+OK 2 messages\r\n")
        #expect(run(s, "DELE 2") == "+OK Deleted\r\n")
        #expect(run(s, "RETR 9") == "-ERR No such message\r\n")
        #expect(run(s, "FROB") == "-ERR Unknown command\r\n")
        #expect(run(s, "QUIT") == "+OK Bye\r\n")
        #expect(drop.store.keys.sorted() == [1])
        #expect(drop.locked.isEmpty)
    }

    @Test func closingWithoutQuitDeletesNothing() {
        let drop = MemoryMaildrop()
        let s = POP3Session(backend: drop, isTLS: true, tlsAvailable: true)
        _ = s.authenticated(user: "alice")
        _ = run(s, "DELE 1")
        s.closed()
        #expect(drop.store.count == 2)
        #expect(drop.locked.isEmpty)
    }
}
