import Foundation
import MailAuth

/// Locates `Tests/Vectors/DKIM` from this file's path (no SwiftPM resources).
enum DKIMVectors {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors/DKIM")

    static func bytes(_ path: String) -> [UInt8] {
        [UInt8]((try? Data(contentsOf: root.appendingPathComponent(path))) ?? Data())
    }

    static func text(_ path: String) -> String { String(decoding: bytes(path), as: UTF8.self) }

    /// A key record file's value (one line, trailing newline dropped).
    static func record(_ path: String) -> String {
        text(path).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The golden vectors: names without extension, sorted.
    static func verifyCases() -> [String] {
        let dir = root.appendingPathComponent("verify")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".eml") }.map { String($0.dropLast(4)) }.sorted()
    }

    /// `NAME VALUE` lines as TXT records.
    static func zone(_ text: String) -> StaticMailAuthDNS {
        var dns = StaticMailAuthDNS()
        for line in text.split(separator: "\n") where !line.isEmpty {
            guard let space = line.firstIndex(of: " ") else { continue }
            let name = String(line[..<space])
            let value = String(line[line.index(after: space)...])
            dns.add(name, value == "TIMEOUT" ? .timeout : .txt(Array(value.utf8)))
        }
        return dns
    }
}

/// Test-only: "\n" becomes CRLF.
func dkimCRLF(_ s: String) -> [UInt8] {
    Array(s.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n").utf8)
}

/// A fixed clock for tests: 2023-11-14T22:13:20Z.
let dkimTestNow: Int64 = 1_700_000_000
