import Foundation

/// An export archive a cell made in its data directory, opened safely for
/// streaming: `DATA/exports/NAME.tar` with every step opened `O_NOFOLLOW`
/// (the cell owns the directory and could plant links), a regular file owned
/// by the data directory's owner (the cell's uid). Older exports left behind
/// (a download that never finished) are swept when the next one is made.
public final class ExportFile: @unchecked Sendable {
    public let fd: CInt
    let exportsFD: CInt
    let name: String
    public let size: Int
    public let filename: String
    private var closed = false

    init(fd: CInt, exportsFD: CInt, name: String, size: Int, filename: String) {
        self.fd = fd; self.exportsFD = exportsFD; self.name = name; self.size = size; self.filename = filename
    }

    /// Whether `reply` is a plain `exports/NAME.tar` (no other directory, no dot segments).
    static func plainName(_ reply: String) -> String? {
        guard reply.hasPrefix("exports/") else { return nil }
        let name = String(reply.dropFirst("exports/".count))
        guard name.hasSuffix(".tar"), (5...200).contains(name.utf8.count), !name.hasPrefix("."),
              name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "." })
        else { return nil }
        return name
    }

    static func open(dataDirectory: String, reply: String, filename: String, now: Date) throws -> ExportFile {
        let refused = ServiceError(.unavailable, "The export could not be read.")
        guard let name = plainName(reply) else { throw refused }
        let dataFD = Glibc.open(dataDirectory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dataFD >= 0 else { throw refused }
        defer { close(dataFD) }
        var dataStat = stat()
        guard fstat(dataFD, &dataStat) == 0 else { throw refused }
        let exportsFD = openat(dataFD, "exports", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard exportsFD >= 0 else { throw refused }
        let fd = openat(exportsFD, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        var st = stat()
        guard fd >= 0, fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == dataStat.st_uid else {
            if fd >= 0 { close(fd) }
            close(exportsFD)
            throw refused
        }
        sweep(exportsFD, keeping: name, olderThan: now.addingTimeInterval(-3600))
        return ExportFile(fd: fd, exportsFD: exportsFD, name: name, size: Int(st.st_size), filename: filename)
    }

    /// Removes regular `*.tar` files older than `cutoff` (never following links).
    static func sweep(_ dirFD: CInt, keeping: String, olderThan cutoff: Date) {
        let dup = dup(dirFD)
        guard dup >= 0, let dir = fdopendir(dup) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasSuffix(".tar"), name != keeping else { continue }
            var st = stat()
            guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFREG,
                  Double(st.st_mtim.tv_sec) < cutoff.timeIntervalSince1970 else { continue }
            unlinkat(dirFD, name, 0)
        }
    }

    /// Removes the archive (through the directory handle) and closes both.
    public func finish() {
        guard !closed else { return }
        closed = true
        unlinkat(exportsFD, name, 0)
        close(fd)
        close(exportsFD)
    }

    deinit { finish() }
}
