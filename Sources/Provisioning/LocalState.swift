import Foundation
import MailCore
#if canImport(Glibc)
import Glibc
#endif

/// What the local backend keeps under its root directory:
///
///     ROOT/uids.json        cell id → uid index (never reused)
///     ROOT/cells/ID/        the cell's data directory (its uid, 0700), /data inside
///     ROOT/run/ID.json      the run record of a started cell (pid, start time, cgroups)
///     ROOT/logs/ID.log      the engine's stdout and stderr
///
/// ROOT and ROOT/cells are 0711, so that a cell's uid can reach its own
/// directory (bwrap binds it as that uid) but list nothing.
struct LocalLayout: Sendable {
    var root: String
    var cells: String { root + "/cells" }
    var run: String { root + "/run" }
    var logs: String { root + "/logs" }
    func dataDirectory(_ id: String) -> String { cells + "/" + id }
    func runRecord(_ id: String) -> String { run + "/" + id + ".json" }
    func log(_ id: String) -> String { logs + "/" + id + ".log" }
    var uids: String { root + "/uids.json" }

    func prepare() throws {
        for (dir, mode) in [(root, mode_t(0o711)), (cells, 0o711), (run, 0o700), (logs, 0o700)] {
            try DurableFile.makeDirectory(dir, mode: mode)
            chmod(dir, mode)
        }
    }
}

/// The stable uid index of each cell. An index is handed out once and never
/// again, even after the cell is removed, so no two cells (nor a new cell
/// and an old cell's kept data) ever share a uid.
struct UIDIndex: Codable, Sendable, Equatable {
    var next: Int = 0
    var cells: [String: Int] = [:]

    /// The cell's index, assigning the next one when new.
    mutating func index(for id: String) -> (Int, isNew: Bool) {
        if let i = cells[id] { return (i, false) }
        let i = next
        next += 1
        cells[id] = i
        return (i, true)
    }

    static func load(_ path: String) throws -> UIDIndex {
        guard DurableFile.exists(path) else { return UIDIndex() }
        return try JSONDecoder().decode(UIDIndex.self, from: Data(try DurableFile.readAll(path)))
    }

    func save(_ path: String) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        try DurableFile.write(Array(try e.encode(self)), to: path, tmpDirectory: DurableFile.parentDirectory(of: path))
    }
}

/// What identifies a started cell's process across a restart of the control
/// plane: its pid together with its start time (pid reuse changes the
/// latter), the data directory it was given, and its cgroups.
struct RunRecord: Codable, Sendable, Equatable {
    var pid: Int32
    var startTicks: UInt64
    var startedAt: Date
    var dataDirectory: String
    var cgroups: CellCgroups
    var sandbox: SandboxMode

    static func load(_ path: String) -> RunRecord? {
        guard let bytes = try? DurableFile.readAll(path) else { return nil }
        return try? JSONDecoder().decode(RunRecord.self, from: Data(bytes))
    }

    func save(_ path: String) throws {
        try DurableFile.write(Array(try JSONEncoder().encode(self)), to: path, tmpDirectory: DurableFile.parentDirectory(of: path))
    }

    /// Whether the process the record names is still that process: same pid,
    /// same start time, and a command line that binds this data directory.
    func isAlive() -> Bool {
        guard ProcessSpawner.startTicks(pid) == startTicks else { return false }
        return ProcessSpawner.commandLine(pid).contains { $0 == dataDirectory || $0 == dataDirectory + "/cell.json" }
    }
}

/// Writes a cell's configuration durably and owned by the cell: temporary
/// file, fchown, fsync, rename, fsync of the directory.
func writeCellConfiguration(_ text: String, dataDirectory: String, uid: uid_t?, gid: gid_t?) throws {
    let path = dataDirectory + "/cell.json"
    let tmp = dataDirectory + "/.cell.json.\(getpid()).tmp"
    unlink(tmp)
    let fd = try DurableFile.create(tmp, mode: 0o600)
    do {
        try Array(text.utf8).withUnsafeBytes { try DurableFile.writeAll(fd, $0, path: tmp) }
        if let uid, let gid, fchown(fd, uid, gid) != 0 { throw FileSystemError("fchown", path: tmp, errno: errno) }
        try DurableFile.fsync(fd, path: tmp)
        close(fd)
    } catch {
        close(fd)
        unlink(tmp)
        throw error
    }
    do { try DurableFile.rename(tmp, path) } catch { unlink(tmp); throw error }
    try DurableFile.syncDirectory(dataDirectory)
}

/// Makes the data directory (0700) and gives it to the cell's uid; a tree
/// owned by someone else (restored data, a changed uid base) is handed over
/// whole.
func prepareDataDirectory(_ dir: String, uid: uid_t?, gid: gid_t?) throws {
    if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw FileSystemError("mkdir", path: dir, errno: errno) }
    guard let uid, let gid else { return }
    var st = stat()
    guard lstat(dir, &st) == 0 else { throw FileSystemError("stat", path: dir, errno: errno) }
    if st.st_uid == uid && st.st_gid == gid { return }
    try chownTree(dir, uid: uid, gid: gid)
}

private func chownTree(_ path: String, uid: uid_t, gid: gid_t) throws {
    if lchown(path, uid, gid) != 0 { throw FileSystemError("chown", path: path, errno: errno) }
    var st = stat()
    guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return }
    for name in DurableFile.list(path) where name != "." && name != ".." {
        try chownTree(path + "/" + name, uid: uid, gid: gid)
    }
}
