import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where this process sits in the cgroup hierarchies (from /proc/self/cgroup),
/// i.e. under which directories a cell's cgroups are made. On this kind of
/// machine (ISOLATION.md) limits come from cgroup v1 controllers (memory,
/// pids, cpu) and the v2 tree at `/sys/fs/cgroup/unified` only offers
/// `cgroup.procs` and `cgroup.kill`.
public struct CgroupLayout: Sendable, Hashable, Codable {
    public var memory: String?
    public var pids: String?
    public var cpu: String?
    public var unified: String?

    public init(memory: String? = nil, pids: String? = nil, cpu: String? = nil, unified: String? = nil) {
        self.memory = memory; self.pids = pids; self.cpu = cpu; self.unified = unified
    }

    /// Parses /proc/self/cgroup (`ID:controllers:path` lines) against the
    /// mount root; a hierarchy whose directory does not exist is left out.
    public static func parse(_ procSelfCgroup: String, root: String = "/sys/fs/cgroup",
                             exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> CgroupLayout {
        var layout = CgroupLayout()
        for line in procSelfCgroup.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let controllers = parts[1].split(separator: ",").map(String.init)
            let path = parts[2] == "/" ? "" : String(parts[2])
            func dir(_ mount: String) -> String? {
                let d = root + "/" + mount + path
                return exists(d) ? d : nil
            }
            if controllers.isEmpty {
                // The v2 tree: hybrid mounts it at root/unified, pure v2 at root.
                layout.unified = dir("unified") ?? (exists(root + "/cgroup.controllers") ? root + path : nil)
            } else {
                let joined = controllers.joined(separator: ",")
                var found = dir(joined)
                for c in controllers where found == nil { found = dir(c) }
                if controllers.contains("memory") { layout.memory = found }
                if controllers.contains("pids") { layout.pids = found }
                if controllers.contains("cpu") { layout.cpu = found }
            }
        }
        return layout
    }

    public static func current() -> CgroupLayout {
        parse((try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "")
    }
}

/// The cgroups of one cell: one directory per hierarchy, named after the
/// cell. Recorded in the cell's run record so that a restarted control plane
/// finds them even if it now runs in another cgroup.
struct CellCgroups: Sendable, Hashable, Codable {
    var memory: String?
    var pids: String?
    var cpu: String?
    var unified: String?

    var directories: [String] { [memory, pids, cpu, unified].compactMap { $0 } }
    /// The files the launcher writes its pid to before exec.
    var procsFiles: [String] { directories.map { $0 + "/cgroup.procs" } }

    /// Makes the directories it can (an existing one is reused) and writes
    /// the limits; returns what could not be set, for the observation's detail.
    static func create(name: String, layout: CgroupLayout, limits: ResourceLimits) -> (CellCgroups, [String]) {
        var groups = CellCgroups()
        var notes: [String] = []
        func make(_ parent: String?, _ what: String) -> String? {
            guard let parent else { notes.append("no \(what) cgroup"); return nil }
            let dir = parent + "/" + name
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                notes.append("\(what) cgroup: \(String(cString: strerror(errno)))")
                return nil
            }
            return dir
        }
        groups.memory = make(layout.memory, "memory")
        groups.pids = make(layout.pids, "pids")
        groups.cpu = make(layout.cpu, "cpu")
        groups.unified = make(layout.unified, "unified")
        notes += groups.setLimits(limits)
        return (groups, notes)
    }

    /// Writes the limits (also to a running cell's cgroups: they apply at once).
    func setLimits(_ limits: ResourceLimits) -> [String] {
        var notes: [String] = []
        func write(_ dir: String?, _ file: String, _ value: String) {
            guard let dir else { return }
            if !Self.write(value, to: dir + "/" + file) { notes.append("\(file): \(String(cString: strerror(errno)))") }
        }
        write(memory, "memory.limit_in_bytes", String(limits.memoryBytes))
        write(pids, "pids.max", String(limits.pids))
        write(cpu, "cpu.shares", String(limits.cpuShares))
        return notes
    }

    /// The processes in the cell's cgroups.
    func processes() -> [pid_t] {
        var seen = Set<pid_t>()
        for file in procsFiles {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") { if let p = pid_t(line) { seen.insert(p) } }
        }
        return seen.sorted()
    }

    /// Sends `signal` to every process in the cell's cgroups.
    func signalAll(_ signal: Int32) {
        for p in processes() { kill(p, signal) }
    }

    /// Kills the whole tree: `cgroup.kill` in the v2 tree (atomic, no process
    /// escapes by forking), else SIGKILL to every listed process.
    func killAll() {
        if let unified, Self.write("1", to: unified + "/cgroup.kill") { return }
        signalAll(SIGKILL)
    }

    /// OOM kills so far (`oom_kill` in memory.oom_control), if the kernel tells.
    func oomKills() -> Int? {
        guard let memory, let text = try? String(contentsOfFile: memory + "/memory.oom_control", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return Int(line.dropFirst("oom_kill ".count))
        }
        return nil
    }

    /// Removes the directories (only empty cgroups can go); true when all went.
    @discardableResult
    func remove() -> Bool {
        var ok = true
        for d in directories where rmdir(d) != 0 && errno != ENOENT { ok = false }
        return ok
    }

    static func write(_ value: String, to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
    }
}
