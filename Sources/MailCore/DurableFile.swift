#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A POSIX error with the call that failed; `isNoSpace` marks ENOSPC/EDQUOT,
/// which the servers turn into temporary "insufficient storage" replies.
public struct FileSystemError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var errno: Int32

    public init(_ operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var isNoSpace: Bool { errno == ENOSPC || errno == EDQUOT }
    public var isMissing: Bool { errno == ENOENT }
    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
}

/// Crash-safe file primitives: write to a temporary name, fsync, rename,
/// fsync the directory (STYLE habit 8). All calls block; run them off the
/// event loop.
public enum DurableFile {
    /// Creates a directory and its parents with the given mode.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0 && Glibc.errno != EEXIST {
                throw FileSystemError("mkdir", path: current, errno: Glibc.errno)
            }
        }
    }

    /// Opens a new file for writing (fails if it exists).
    public static func create(_ path: String, mode: mode_t = 0o600) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd < 0 { throw FileSystemError("open", path: path, errno: Glibc.errno) }
        return fd
    }

    /// Writes all bytes, retrying short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw FileSystemError("write", path: path, errno: Glibc.errno)
            }
            offset += n
        }
    }

    /// Starts writeback of a file's dirty pages without waiting
    /// (sync_file_range(2) with SYNC_FILE_RANGE_WRITE); durability still
    /// needs `fsync`. A no-op where unsupported.
    public static func startWriteback(_ fd: Int32) {
        #if os(Linux)
        _ = postcellSyncFileRange(fd, 0, 0, 2)
        #endif
    }

    public static func fsync(_ fd: Int32, path: String) throws {
        if Glibc.fsync(fd) != 0 { throw FileSystemError("fsync", path: path, errno: Glibc.errno) }
    }

    /// fsyncs a directory so that renames and creations in it are durable.
    public static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw FileSystemError("open", path: path, errno: Glibc.errno) }
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    public static func rename(_ from: String, _ to: String) throws {
        if Glibc.rename(from, to) != 0 { throw FileSystemError("rename", path: to, errno: Glibc.errno) }
    }

    /// Writes `bytes` to `path` durably through `tmpDirectory` (same file system).
    public static func write(_ bytes: [UInt8], to path: String, tmpDirectory: String, syncDirectory sync: Bool = true) throws {
        let name = path.split(separator: "/").last.map(String.init) ?? "file"
        let tmp = tmpDirectory + "/" + name + ".\(getpid()).tmp"
        let fd = try create(tmp)
        do {
            try bytes.withUnsafeBytes { try writeAll(fd, $0, path: tmp) }
            try fsync(fd, path: tmp)
            close(fd)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        do {
            try rename(tmp, path)
        } catch {
            unlink(tmp)
            throw error
        }
        if sync { try syncDirectory(parentDirectory(of: path)) }
    }

    /// Reads a whole file: one allocation of the file's size, then reads
    /// until end of file (the size is a hint; files here are immutable).
    /// `path` is relative to the open directory `directory` when given,
    /// which saves walking the directory's path again for every file.
    public static func readAll(_ path: String, in directory: Int32 = AT_FDCWD) throws -> [UInt8] {
        let fd = openat(directory, path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw FileSystemError("open", path: path, errno: Glibc.errno) }
        defer { close(fd) }
        var st = stat()
        let hint = fstat(fd, &st) == 0 ? max(Int(st.st_size), 0) : 0
        // Read into uninitialised storage (no zero fill); one byte spare
        // tells a file that grew from one that did not.
        var readError: Int32 = 0
        var out = [UInt8](unsafeUninitializedCapacity: hint + 1) { buffer, initialized in
            initialized = 0
            while initialized < buffer.count {
                let n = Glibc.read(fd, buffer.baseAddress! + initialized, buffer.count - initialized)
                if n < 0 {
                    if Glibc.errno == EINTR { continue }
                    readError = Glibc.errno
                    return
                }
                if n == 0 { return }
                initialized += n
            }
        }
        if readError != 0 { throw FileSystemError("read", path: path, errno: readError) }
        guard out.count == hint + 1 else { return out }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw FileSystemError("read", path: path, errno: Glibc.errno)
            }
            if n == 0 { return out }
            out += chunk[0..<n]
        }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func fileSize(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int(st.st_size)
    }

    /// Names in a directory, without "." and "..".
    public static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public static func remove(_ path: String) { unlink(path) }

    public static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

#if os(Linux)
/// sync_file_range(2); not exported by the Glibc module map. 2 = SYNC_FILE_RANGE_WRITE.
@_silgen_name("sync_file_range")
func postcellSyncFileRange(_ fd: Int32, _ offset: Int64, _ nbytes: Int64, _ flags: UInt32) -> Int32
#endif
