import Foundation
import MIME

/// Locates `Tests/Vectors/MIME` from this file's path (no SwiftPM resources).
enum VectorFiles {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors/MIME")

    static func bytes(_ relativePath: String) -> [UInt8] {
        let url = root.appendingPathComponent(relativePath)
        return [UInt8]((try? Data(contentsOf: url)) ?? Data())
    }

    static func text(_ relativePath: String) -> String {
        String(decoding: bytes(relativePath), as: UTF8.self)
    }

    /// Every message file: `.msg`, `.eml`, and `.txt` other than licences/readmes.
    static func allMessages() -> [String] {
        guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var out: [String] = []
        for case let url as URL in e {
            let name = url.lastPathComponent
            let ext = url.pathExtension
            guard ext == "msg" || ext == "eml" || ext == "txt" else { continue }
            guard !name.uppercased().contains("LICENSE"), !name.uppercased().contains("README") else { continue }
            out.append(String(url.path.dropFirst(root.path.count + 1)))
        }
        return out.sorted()
    }
}

/// Test-only helper: builds a byte array from a string with "\n" turned into CR LF.
func crlf(_ s: String) -> [UInt8] {
    Array(s.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n").utf8)
}

func string(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
