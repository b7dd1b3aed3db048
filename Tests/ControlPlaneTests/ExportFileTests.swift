import Foundation
import Testing
@testable import ControlPlane

/// The cell names its export file; the control plane (root) must not be
/// led outside the cell's exports directory by that name or by links.
@Suite struct ExportFileTests {
    @Test func onlyPlainNamesInExports() {
        #expect(ExportFile.plainName("exports/cell-20261124T101010Z-ab12.tar") == "cell-20261124T101010Z-ab12.tar")
        for bad in ["../c-victim/cell.json", "exports/../../etc/shadow", "exports/a/b.tar", "/etc/shadow", "exports/.tar",
                    "exports/..tar", "exports/x.tar\0", "exports/", "exports/a b.tar", "exports/x.txt"] {
            #expect(ExportFile.plainName(bad) == nil, "\(bad)")
        }
    }

    @Test func refusesLinksDirectoriesAndFilesOfAnotherOwner() throws {
        let data = NSTemporaryDirectory() + "export-test-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: data + "/exports", withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: data) }
        let secret = data + "/secret.txt"
        try Data("secret".utf8).write(to: URL(fileURLWithPath: secret))
        try fm.createSymbolicLink(atPath: data + "/exports/link.tar", withDestinationPath: secret)
        try fm.createDirectory(atPath: data + "/exports/dir.tar", withIntermediateDirectories: true)
        try Data("tar".utf8).write(to: URL(fileURLWithPath: data + "/exports/good.tar"))
        let now = Date()
        #expect(throws: ServiceError.self) { _ = try ExportFile.open(dataDirectory: data, reply: "exports/link.tar", filename: "x", now: now) }
        #expect(throws: ServiceError.self) { _ = try ExportFile.open(dataDirectory: data, reply: "exports/dir.tar", filename: "x", now: now) }
        if getuid() == 0 {
            try Data("other".utf8).write(to: URL(fileURLWithPath: data + "/exports/other.tar"))
            #expect(chown(data + "/exports/other.tar", 4242, 4242) == 0)
            #expect(throws: ServiceError.self) { _ = try ExportFile.open(dataDirectory: data, reply: "exports/other.tar", filename: "x", now: now) }
        }
        // The exports directory itself replaced by a link: refused.
        try fm.moveItem(atPath: data + "/exports", toPath: data + "/real-exports")
        try fm.createSymbolicLink(atPath: data + "/exports", withDestinationPath: data + "/real-exports")
        #expect(throws: ServiceError.self) { _ = try ExportFile.open(dataDirectory: data, reply: "exports/good.tar", filename: "x", now: now) }
        try fm.removeItem(atPath: data + "/exports")
        try fm.moveItem(atPath: data + "/real-exports", toPath: data + "/exports")
        // A good one opens, an old leftover is swept, and finishing removes it; the link target is untouched.
        try Data("old".utf8).write(to: URL(fileURLWithPath: data + "/exports/old.tar"))
        try fm.setAttributes([.modificationDate: now.addingTimeInterval(-7200)], ofItemAtPath: data + "/exports/old.tar")
        let file = try ExportFile.open(dataDirectory: data, reply: "exports/good.tar", filename: "x.tar", now: now)
        #expect(file.size == 3)
        #expect(!fm.fileExists(atPath: data + "/exports/old.tar"))
        file.finish()
        #expect(!fm.fileExists(atPath: data + "/exports/good.tar"))
        #expect(fm.fileExists(atPath: secret))
    }
}
