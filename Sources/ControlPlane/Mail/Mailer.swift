import Foundation
import MailCore
import MIME
import Mustache

/// Mail the control plane sends to customers (address verification). The
/// text comes from `templates/email/NAME.mustache`: a header block (Subject:
/// line), a blank line, the body. Messages are written as RFC 5322 files into
/// the outbox directory (`STATE/outbox/`), durably, one per message: an
/// operator's MTA (or `postcell up`'s console) picks them up from there. The
/// link is also logged when `logLinks` is on (the demo setup, no relay).
public final class Mailer: Sendable {
    let outbox: String
    let from: String
    let library: MustacheLibrary
    let clock: @Sendable () -> Date
    let onSend: (@Sendable (_ to: String, _ subject: String, _ body: String) -> Void)?

    public init(outbox: String, from: String, library: MustacheLibrary, clock: @escaping @Sendable () -> Date = { Date() },
                onSend: (@Sendable (String, String, String) -> Void)? = nil) throws {
        self.outbox = outbox; self.from = from; self.library = library; self.clock = clock; self.onSend = onSend
        try FileManager.default.createDirectory(atPath: outbox + "/tmp", withIntermediateDirectories: true)
    }

    public func send(to: String, template: String, context: [String: String]) async throws {
        guard let text = library.render(context, withTemplate: template) else {
            throw ServiceError(.unavailable, "The e-mail template \(template) is missing.")
        }
        let (subject, body) = Mailer.split(text)
        let id = Identifier.timeOrdered(clock())
        let date = RFC5322Date.format(Int64(clock().timeIntervalSince1970))
        var message = "From: \(from)\r\nTo: \(to)\r\nSubject: \(subject)\r\nDate: \(date)\r\n"
        message += "Message-ID: <\(id)@\(from.split(separator: "@").last ?? "postcell")>\r\nMIME-Version: 1.0\r\n"
        message += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        message += body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
        try DurableFile.write(Array(message.utf8), to: outbox + "/" + id + ".eml", tmpDirectory: outbox + "/tmp")
        onSend?(to, subject, body)
    }

    static func split(_ text: String) -> (String, String) {
        var subject = "Postcell"
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        while let first = lines.first, !first.trimmingCharacters(in: .whitespaces).isEmpty {
            if first.lowercased().hasPrefix("subject:") { subject = first.dropFirst(8).trimmingCharacters(in: .whitespaces) }
            lines.removeFirst()
        }
        if !lines.isEmpty { lines.removeFirst() }
        return (subject, lines.joined(separator: "\n"))
    }
}
