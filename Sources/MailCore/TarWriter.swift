/// A POSIX tar archive writer: ustar headers (POSIX.1-1988, as kept by
/// POSIX.1-2001 `pax`, "ustar Interchange Format"), and a pax extended header
/// (typeflag `x`) in front of an entry whose path does not fit ustar's
/// 155-byte prefix and 100-byte name. Regular files and directories only;
/// owner 0/0, no user or group names. Bytes go to `sink` as they are made,
/// so an archive of any size is written with one entry in memory.
///
///     var tar = TarWriter { bytes in try file.write(bytes) }
///     try tar.addDirectory("alice@example.test/Maildir/cur", mtime: 0)
///     try tar.addFile("alice@example.test/Maildir/cur/1.a:2,S", contents: message, mtime: 1_700_000_000)
///     try tar.finish()
public struct TarWriter {
    public enum Failure: Error, Hashable, Sendable {
        /// An empty path or one with a NUL byte.
        case badPath(String)
        /// Beyond ustar's 11 octal digits (8 GiB).
        case tooLarge(Int)
    }

    /// Every header and data block is 512 bytes.
    public static let blockSize = 512
    /// ustar's size field: 11 octal digits.
    static let maxSize = 0o77777777777

    let sink: ([UInt8]) throws -> Void
    /// Bytes handed to the sink so far.
    public private(set) var bytesWritten: Int64 = 0
    var pax = 0

    public init(sink: @escaping ([UInt8]) throws -> Void) {
        self.sink = sink
    }

    public mutating func addDirectory(_ path: String, mode: Int = 0o755, mtime: Int64) throws {
        let name = path.hasSuffix("/") ? path : path + "/"
        try addEntry(name, typeflag: UInt8(ascii: "5"), mode: mode, size: 0, mtime: mtime)
    }

    public mutating func addFile(_ path: String, contents: [UInt8], mode: Int = 0o644, mtime: Int64) throws {
        try addEntry(path, typeflag: UInt8(ascii: "0"), mode: mode, size: contents.count, mtime: mtime)
        try emit(contents + TarWriter.padding(contents.count))
    }

    /// The end of the archive: two zero blocks.
    public mutating func finish() throws {
        try emit([UInt8](repeating: 0, count: 2 * TarWriter.blockSize))
    }

    mutating func addEntry(_ path: String, typeflag: UInt8, mode: Int, size: Int, mtime: Int64) throws {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, !bytes.contains(0) else { throw Failure.badPath(path) }
        guard size <= TarWriter.maxSize else { throw Failure.tooLarge(size) }
        if let (prefix, name) = TarWriter.split(bytes) {
            try emit(TarWriter.header(name: name, prefix: prefix, typeflag: typeflag, mode: mode, size: size, mtime: mtime))
            return
        }
        // pax extended header: "LEN path=VALUE\n" records (POSIX.1-2001 pax, "pax Extended Header").
        let record = TarWriter.paxRecord("path", bytes)
        pax += 1
        try emit(TarWriter.header(name: Array("PaxHeaders/\(pax)".utf8), prefix: [], typeflag: UInt8(ascii: "x"), mode: 0o644,
                                  size: record.count, mtime: mtime))
        try emit(record + TarWriter.padding(record.count))
        // The ustar header's own name: the path's last 100 bytes, for readers without pax.
        try emit(TarWriter.header(name: Array(bytes.suffix(100)), prefix: [], typeflag: typeflag, mode: mode, size: size, mtime: mtime))
    }

    mutating func emit(_ bytes: [UInt8]) throws {
        try sink(bytes)
        bytesWritten += Int64(bytes.count)
    }

    /// Zeros up to the next block boundary.
    static func padding(_ count: Int) -> [UInt8] {
        [UInt8](repeating: 0, count: (blockSize - count % blockSize) % blockSize)
    }

    /// ustar's split of a path into prefix (155 bytes) and name (100 bytes)
    /// at a `/`; nil when no split fits.
    static func split(_ path: [UInt8]) -> (prefix: [UInt8], name: [UInt8])? {
        if path.count <= 100 { return ([], path) }
        // The directory entry's trailing slash stays with the name.
        let body = path.last == UInt8(ascii: "/") ? path.dropLast() : path[...]
        for i in body.indices.reversed() where body[i] == UInt8(ascii: "/") {
            let prefix = Array(path[..<i]), name = Array(path[(i + 1)...])
            if name.count > 100 { return nil }
            if prefix.count <= 155 && !name.isEmpty { return (prefix, name) }
        }
        return nil
    }

    /// One pax record; its decimal length counts itself.
    static func paxRecord(_ key: String, _ value: [UInt8]) -> [UInt8] {
        let rest = 1 + key.utf8.count + 1 + value.count + 1
        var length = rest + 1
        while String(length).utf8.count + rest != length { length = String(length).utf8.count + rest }
        return Array("\(length) \(key)=".utf8) + value + [UInt8(ascii: "\n")]
    }

    /// A 512-byte ustar header (field offsets from POSIX.1's ustar table).
    static func header(name: [UInt8], prefix: [UInt8], typeflag: UInt8, mode: Int, size: Int, mtime: Int64) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: blockSize)
        func put(_ bytes: [UInt8], at offset: Int) { h.replaceSubrange(offset..<offset + bytes.count, with: bytes) }
        /// `width - 1` octal digits, zero-filled, then NUL.
        func octal(_ value: Int64, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(name, at: 0)
        put(octal(Int64(mode), width: 8), at: 100)
        put(octal(0, width: 8), at: 108) // uid
        put(octal(0, width: 8), at: 116) // gid
        put(octal(Int64(size), width: 12), at: 124)
        put(octal(max(0, mtime), width: 12), at: 136)
        put([UInt8](repeating: UInt8(ascii: " "), count: 8), at: 148) // checksum, blank while summed
        h[156] = typeflag
        put(Array("ustar".utf8) + [0], at: 257)
        put(Array("00".utf8), at: 263)
        put(octal(0, width: 8), at: 329) // devmajor
        put(octal(0, width: 8), at: 337) // devminor
        put(prefix, at: 345)
        // The checksum: the unsigned sum of the header's bytes, six octal digits, NUL, space.
        let sum = h.reduce(0) { $0 + Int64($1) }
        put(octal(sum, width: 7) + [UInt8(ascii: " ")], at: 148)
        return h
    }
}
