import Foundation
import MailCore

/// The envelope of a queued outbound message.
public struct OutboundEnvelope: Codable, Hashable, Sendable {
    public var id: String
    /// The reverse-path, "" for the null sender.
    public var from: String
    public var recipients: [String]
    /// Unix time the message was accepted.
    public var received: Int64
    /// The authenticated user who submitted it, if any.
    public var user: String?

    public init(id: String, from: String, recipients: [String], received: Int64, user: String?) {
        self.id = id
        self.from = from
        self.recipients = recipients
        self.received = received
        self.user = user
    }
}

/// The durable outbound spool `DATA/queue/outbound/` (docs/DATA-DIR.md): one
/// self-delimiting file per message. Delivery comes with the outbound issue;
/// this is the single way in, as Postfix's cleanup is.
public final class OutboundSpool: Sendable {
    public let directory: String
    static let magic = "PCQ1"
    static let endMarker = Array("\nPCQ1-END\n".utf8)

    public init(directory: String) throws {
        self.directory = directory
        for sub in ["", "/outbound", "/tmp", "/corrupt"] { try DurableFile.makeDirectory(directory + sub) }
    }

    /// Removes spool files that were being written when the engine stopped.
    public func recover() {
        for name in DurableFile.list(directory + "/tmp") { DurableFile.remove(directory + "/tmp/" + name) }
    }

    /// Encodes envelope and message into the spool format.
    public static func encode(_ envelope: OutboundEnvelope, message: [UInt8]) throws -> [UInt8] {
        let json = try JSONEncoder().encode(envelope)
        var out = Array("\(magic) \(json.count) \(message.count)\n".utf8)
        out += json
        out += message
        out += endMarker
        return out
    }

    /// Decodes a spool file; nil if torn or malformed.
    public static func decode(_ bytes: [UInt8]) -> (OutboundEnvelope, [UInt8])? {
        guard let nl = bytes.firstIndex(of: UInt8(ascii: "\n")), nl < 64 else { return nil }
        let head = String(decoding: bytes[0..<nl], as: UTF8.self).split(separator: " ")
        guard head.count == 3, head[0] == magic, let jl = Int(head[1]), let ml = Int(head[2]), jl >= 0, ml >= 0 else { return nil }
        let start = nl + 1
        guard bytes.count == start + jl + ml + endMarker.count,
              Array(bytes[(start + jl + ml)...]) == endMarker,
              let env = try? JSONDecoder().decode(OutboundEnvelope.self, from: Data(bytes[start..<(start + jl)]))
        else { return nil }
        return (env, Array(bytes[(start + jl)..<(start + jl + ml)]))
    }

    /// Writes a message durably (tmp, fsync, rename, directory fsync).
    public func enqueue(_ envelope: OutboundEnvelope, message: [UInt8]) throws {
        let bytes = try OutboundSpool.encode(envelope, message: message)
        try DurableFile.write(bytes, to: directory + "/outbound/\(envelope.id).msg", tmpDirectory: directory + "/tmp")
    }

    /// Queued messages; torn or malformed files are moved to `corrupt/`.
    public func list() -> [(envelope: OutboundEnvelope, size: Int)] {
        var out: [(OutboundEnvelope, Int)] = []
        for name in DurableFile.list(directory + "/outbound").sorted() where name.hasSuffix(".msg") {
            let path = directory + "/outbound/" + name
            guard let bytes = try? DurableFile.readAll(path) else { continue }
            if let (env, msg) = OutboundSpool.decode(bytes) {
                out.append((env, msg.count))
            } else {
                try? DurableFile.rename(path, directory + "/corrupt/" + name)
            }
        }
        return out
    }
}
