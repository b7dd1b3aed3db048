import Foundation
@testable import MailCore
import Testing

/// The export's tar writer: headers read back by a small ustar/pax reader
/// here, and by Python's tarfile when python3 is installed.
@Suite struct AdminTarTests {
    struct Member: Equatable {
        var name: String
        var type: UInt8
        var mode: Int
        var mtime: Int
        var contents: [UInt8]
    }

    /// Reads what `TarWriter` writes: checks each header's checksum and
    /// magic, applies pax `path` records, stops at the zero blocks.
    static func read(_ bytes: [UInt8]) throws -> [Member] {
        struct Bad: Error { var why: String }
        func field(_ h: ArraySlice<UInt8>, _ at: Int, _ n: Int) -> [UInt8] {
            Array(h[h.startIndex + at..<h.startIndex + at + n].prefix { $0 != 0 })
        }
        func octal(_ h: ArraySlice<UInt8>, _ at: Int, _ n: Int) -> Int {
            Int(String(decoding: field(h, at, n), as: UTF8.self).trimmingCharacters(in: .whitespaces), radix: 8) ?? -1
        }
        var out: [Member] = []
        var offset = 0
        var paxPath: String?
        while offset + 512 <= bytes.count {
            let h = bytes[offset..<offset + 512]
            if h.allSatisfy({ $0 == 0 }) {
                guard bytes[offset...].allSatisfy({ $0 == 0 }), bytes.count - offset == 1024 else { throw Bad(why: "end") }
                return out
            }
            var blank = Array(h)
            blank.replaceSubrange(148..<156, with: [UInt8](repeating: 32, count: 8))
            guard octal(h, 148, 8) == blank.reduce(0, { $0 + Int($1) }) else { throw Bad(why: "checksum") }
            guard field(h, 257, 6) == Array("ustar".utf8), field(h, 263, 2) == Array("00".utf8) else { throw Bad(why: "magic") }
            let size = octal(h, 124, 12)
            let data = Array(bytes[offset + 512..<offset + 512 + size])
            offset += 512 + (size + 511) / 512 * 512
            let prefix = field(h, 345, 155)
            var name = String(decoding: (prefix.isEmpty ? [] : prefix + [UInt8(ascii: "/")]) + field(h, 0, 100), as: UTF8.self)
            if h[h.startIndex + 156] == UInt8(ascii: "x") {
                let text = String(decoding: data, as: UTF8.self)
                let record = try #require(text.split(separator: "\n").first)
                let (length, rest) = (record.split(separator: " ", maxSplits: 1)[0], record.split(separator: " ", maxSplits: 1)[1])
                guard Int(length) == data.count, rest.hasPrefix("path=") else { throw Bad(why: "pax") }
                paxPath = String(rest.dropFirst(5))
                continue
            }
            if let p = paxPath { name = p; paxPath = nil }
            out.append(Member(name: name, type: h[h.startIndex + 156], mode: octal(h, 100, 8), mtime: octal(h, 136, 12), contents: data))
        }
        throw Bad(why: "no end")
    }

    func archive(_ build: (inout TarWriter) throws -> Void) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var blocks: [Int] = []
        var tar = TarWriter { chunk in bytes += chunk; blocks.append(chunk.count) }
        try build(&tar)
        try tar.finish()
        #expect(tar.bytesWritten == Int64(bytes.count))
        #expect(bytes.count % 512 == 0 && blocks.allSatisfy { $0 % 512 == 0 })
        return bytes
    }

    static let longDirectory = "u@example.test/Maildir/." + String(repeating: "Very long folder name ", count: 4).replacingOccurrences(of: " ", with: "_")
    static let members: [(String, [UInt8], Int64)] = [
        ("alice@example.test/Maildir/cur/1.P1_1.mx:2,S", Array("Subject: hi\r\n\r\nbody\r\n".utf8), 1_700_000_000),
        ("alice@example.test/Maildir/cur/empty", [], 0),
        ("alice@example.test/Maildir/.Entw&APw-rfe/cur/2:2,", [UInt8](repeating: 0xA5, count: 512), 5),
        ("alice@example.test/Maildir/.Gr\u{FC}\u{DF}e/cur/3:2,", Array((0..<1000).map { UInt8($0 % 251) }), 6),
        (longDirectory + "/cur/" + String(repeating: "n", count: 90), Array("x".utf8), 7),
        (String(repeating: "z", count: 120) + "/" + String(repeating: "q", count: 120), Array("no split fits".utf8), 8),
    ]

    @Test func roundTripThroughTheReader() throws {
        let bytes = try archive { tar in
            try tar.addDirectory("alice@example.test/Maildir/cur", mode: 0o700, mtime: 3)
            for (name, contents, mtime) in AdminTarTests.members { try tar.addFile(name, contents: contents, mode: 0o600, mtime: mtime) }
        }
        let read = try AdminTarTests.read(bytes)
        #expect(read.first == Member(name: "alice@example.test/Maildir/cur/", type: UInt8(ascii: "5"), mode: 0o700, mtime: 3, contents: []))
        #expect(read.dropFirst().map(\.name) == AdminTarTests.members.map(\.0))
        #expect(read.dropFirst().map(\.contents) == AdminTarTests.members.map(\.1))
        #expect(read.dropFirst().map(\.mtime) == AdminTarTests.members.map { Int($0.2) })
        #expect(read.dropFirst().allSatisfy { $0.type == UInt8(ascii: "0") && $0.mode == 0o600 })
    }

    @Test func splitsAtASlashOrNeedsPax() {
        #expect(TarWriter.split(Array(String(repeating: "a", count: 100).utf8))?.prefix == [])
        let long = Array((String(repeating: "d", count: 150) + "/" + String(repeating: "f", count: 99)).utf8)
        #expect(TarWriter.split(long)?.prefix.count == 150)
        #expect(TarWriter.split(Array((String(repeating: "d", count: 156) + "/f").utf8)) == nil)
        #expect(TarWriter.split(Array(("d/" + String(repeating: "f", count: 101)).utf8)) == nil)
        // The length of a pax record counts its own digits.
        // 92 bytes of value: 99 without the length, 101 with two digits, so three: 102.
        let r = TarWriter.paxRecord("path", Array(String(repeating: "p", count: 92).utf8))
        #expect(r.count == 102 && r.starts(with: Array("102 path=".utf8)))
        #expect(TarWriter.paxRecord("path", Array(String(repeating: "p", count: 90).utf8)).starts(with: Array("99 path=".utf8)))
    }

    @Test func badPathsAreRefused() throws {
        var tar = TarWriter { _ in }
        #expect(throws: TarWriter.Failure.self) { try tar.addFile("", contents: [], mtime: 0) }
        #expect(throws: TarWriter.Failure.self) { try tar.addFile("a\u{0}b", contents: [], mtime: 0) }
    }

    /// Python's tarfile (the contract's reader) lists the same members with the same bytes.
    @Test func pythonTarfileReadsIt() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { return }
        let bytes = try archive { tar in
            for (name, contents, mtime) in AdminTarTests.members { try tar.addFile(name, contents: contents, mtime: mtime) }
        }
        let path = NSTemporaryDirectory() + "postcell-tar-\(UUID().uuidString).tar"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let script = """
            import sys, tarfile
            with tarfile.open(sys.argv[1], format=tarfile.PAX_FORMAT) as t:
                for m in t.getmembers():
                    print(m.name, m.size, m.mtime, t.extractfile(m).read().hex(), sep="|")
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script, path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let lines = text.split(separator: "\n").map { $0.split(separator: "|").map(String.init) }
        #expect(lines.map { $0[0] } == AdminTarTests.members.map(\.0))
        #expect(lines.map { Int($0[1]) } == AdminTarTests.members.map { $0.1.count })
        #expect(lines.map { Int($0[2]) } == AdminTarTests.members.map { Int($0.2) })
        #expect(lines.map { $0.count > 3 ? $0[3] : "" } == AdminTarTests.members.map { $0.1.map { String(format: "%02x", $0) }.joined() })
    }
}
