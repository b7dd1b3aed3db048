import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts a child with `posix_spawn` and hands it listening sockets as
/// inherited descriptors 3, 4, ... (Foundation's `Process` closes every
/// descriptor above 2, so it cannot do this).
///
/// The child: stdin `/dev/null`, stdout and stderr appended to `logPath`,
/// the i-th of `inherited` at fd 3+i, every other descriptor closed, a new
/// session (so a terminal's signals to the control plane do not reach it),
/// an empty signal mask and default dispositions.
enum ProcessSpawner {
    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    static func spawn(_ argv: [String], environment: [String], inherited: [Int32], logPath: String) throws -> pid_t {
        precondition(!argv.isEmpty)
        let n = Int32(inherited.count)
        // Copies at descriptors >= 3+n, so that no dup2 target (3..3+n-1) is
        // the source of a later dup2, and every dup2 really duplicates (a
        // dup2 onto itself would keep FD_CLOEXEC). The copies are close-on-exec;
        // the dup2'd descriptors in the child are not.
        var high: [Int32] = []
        defer { for fd in high { close(fd) } }
        for fd in inherited {
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3 + n)
            guard copy >= 0 else { throw SpawnError(description: "dup of listener fd \(fd): \(String(cString: strerror(errno)))") }
            high.append(copy)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_APPEND | O_CREAT, 0o640)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        for (i, fd) in high.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, fd, 3 + Int32(i))
        }
        if let closeFrom = Self.addCloseFrom {
            _ = closeFrom(&actions, 3 + n)
        } else {
            // Older C libraries: close what is open now.
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
                if let fd = Int32(name), fd >= 3 + n { posix_spawn_file_actions_addclose(&actions, fd) }
            }
        }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)
        let setsid: Int32 = 0x80  // POSIX_SPAWN_SETSID (glibc >= 2.26)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | setsid))

        var cArgs = argv.map { strdup($0) } + [nil]
        var cEnv = environment.map { strdup($0) } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, &cArgs, &cEnv)
        guard rc == 0 else { throw SpawnError(description: "posix_spawn \(argv[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34), looked up at
    /// run time because the C library's header declares it only under _GNU_SOURCE.
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addCloseFrom: AddCloseFrom? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(sym, to: AddCloseFrom.self)
    }()

    /// How a wait status reads in an observation: "exit 1", "signal 9".
    static func describe(waitStatus status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exit \((status >> 8) & 0xff)" }
        return "signal \(signal)"
    }

    /// Collects the child if it has exited; nil while it runs. Only ever
    /// waits for `pid`, so children that other code in the process started
    /// are left to it.
    static func reap(_ pid: pid_t) -> ReapResult {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return .exited(status) }
            if r == 0 { return .running }
            if errno == EINTR { continue }
            return .notOurs
        }
    }

    enum ReapResult: Equatable {
        case running
        case exited(Int32)
        /// ECHILD: not a child of this process (adopted), or already collected.
        case notOurs
    }

    /// The start time of a process in clock ticks since boot (field 22 of
    /// /proc/PID/stat); with the pid it names one process across pid reuse.
    static func startTicks(_ pid: pid_t) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command name; field 3 (state) is the first here.
        let rest = text[text.index(after: close)...].split(separator: " ")
        guard rest.count > 19 else { return nil }
        return UInt64(rest[19])
    }

    /// The parent pid of a process, from /proc/PID/stat.
    static func parentPid(_ pid: pid_t) -> pid_t? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let rest = text[text.index(after: close)...].split(separator: " ")
        guard rest.count > 1 else { return nil }
        return pid_t(rest[1])
    }

    /// The arguments of a process (/proc/PID/cmdline).
    static func commandLine(_ pid: pid_t) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
    }

    /// `pid` and all its descendants, found by walking /proc (the fallback
    /// when there is no cgroup to list a cell's processes).
    static func processTree(_ root: pid_t) -> [pid_t] {
        var children: [pid_t: [pid_t]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), let parent = parentPid(pid) else { continue }
            children[parent, default: []].append(pid)
        }
        var out: [pid_t] = []
        var queue = [root]
        while let p = queue.popLast() {
            out.append(p)
            queue += children[p] ?? []
        }
        return out
    }
}
