import Foundation

/// How the local backend confines a cell.
public enum SandboxMode: String, Sendable, Codable, Hashable {
    /// bubblewrap under the cell's own uid (ISOLATION.md); needs root,
    /// `bwrap` and `setpriv`.
    case bubblewrap
    /// A plain child process of the control plane, as the control plane's
    /// user, seeing the host's file system: for development without root.
    /// The configuration must not say `"dataDirectory": "/data"` here (leave
    /// it out: it defaults to the config file's folder, the data directory).
    case none
}

/// The command lines of the local backend, built as values (no I/O) so that
/// tests can read them.
public enum SandboxCommand {
    /// What the engine runs inside: `/engine serve --config /data/cell.json`.
    public static let engineArguments = ["serve", "--config", "/data/cell.json"]

    /// ISOLATION.md's line: drop to the cell's uid first (as root the sandbox
    /// would be host uid 0 even without capabilities), then bubblewrap with
    /// every namespace unshared, no further user namespaces, no capabilities,
    /// a new session, `/usr` (and its usual symlinks) read-only, the engine
    /// binary read-only at `/engine`, the Swift runtime directories read-only
    /// at their own paths, the data directory read-write at `/data`, an empty
    /// environment, and the root remounted read-only after every bind.
    ///
    /// No `--die-with-parent`: cells keep running when the control plane
    /// stops (mail flow never depends on it); the backend tracks them by pid,
    /// start time and cgroup instead, and adopts them when it comes back.
    public static func bubblewrap(cellID: String, uid: UInt32, gid: UInt32, dataDirectory: String,
                                  engine: String, runtimeDirectories: [String],
                                  setpriv: String = "/usr/bin/setpriv", bwrap: String = "/usr/bin/bwrap") -> [String] {
        var a = [setpriv, "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups",
                 bwrap, "--unshare-all", "--unshare-user", "--disable-userns",
                 "--new-session", "--cap-drop", "ALL", "--hostname", cellID,
                 "--ro-bind", "/usr", "/usr",
                 "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
                 "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin"]
        for dir in runtimeDirectories { a += ["--ro-bind", dir, dir] }
        a += ["--ro-bind", engine, "/engine",
              "--proc", "/proc", "--dev", "/dev",
              "--bind", dataDirectory, "/data", "--chdir", "/data",
              "--clearenv", "--remount-ro", "/",
              "/engine"] + engineArguments
        return a
    }

    /// The unsandboxed line: the engine on the host's paths.
    public static func plain(engine: String, dataDirectory: String) -> [String] {
        [engine, "serve", "--config", dataDirectory + "/cell.json"]
    }

    /// The launcher: `posix_spawn` cannot run code between fork and exec, so
    /// a tiny shell does it: sets RLIMIT_NOFILE (soft and hard), joins each
    /// cgroup by writing its own pid (`$$`, which the exec keeps), changes to
    /// `directory`, then execs `command`. Every value travels as a positional
    /// argument, never inside the script text, so nothing needs quoting.
    /// A cgroup it cannot join stops the start (exit 125): the backend made
    /// that cgroup and counts on its limits.
    ///
    ///     sh -c SCRIPT postcell-launch NOFILE DIR PROCS_FILE... -- COMMAND...
    public static func launcher(openFiles: Int?, cgroupProcsFiles: [String], directory: String, command: [String],
                                shell: String = "/bin/sh") -> [String] {
        let script = """
        n=$1; d=$2; shift 2
        if [ "$n" != - ]; then ulimit -n "$n" || echo "postcell-launch: cannot set open files to $n" >&2; fi
        while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
          echo $$ > "$1" || { echo "postcell-launch: cannot join $1" >&2; exit 125; }
          shift
        done
        shift
        cd "$d" || exit 125
        exec "$@"
        """
        return [shell, "-c", script, "postcell-launch", openFiles.map(String.init) ?? "-", directory]
            + cgroupProcsFiles + ["--"] + command
    }

    /// Directories outside `/usr` that hold shared libraries the binary
    /// needs, from `ldd` output lines (`libswiftCore.so => /opt/swift/usr/lib/swift/linux/libswiftCore.so (0x...)`).
    /// `/lib`, `/lib64` are covered by the sandbox's symlinks into `/usr`.
    public static func runtimeDirectories(lddOutput: String) -> [String] {
        var dirs: [String] = []
        for line in lddOutput.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            let path: Substring?
            if let arrow = fields.firstIndex(of: "=>"), arrow + 1 < fields.count {
                path = fields[arrow + 1]
            } else {
                path = fields.first  // the interpreter line: /lib64/ld-linux-x86-64.so.2 (0x...)
            }
            guard let p = path, p.hasPrefix("/") else { continue }
            let dir = String(p[..<(p.lastIndex(of: "/") ?? p.startIndex)])
            guard !dir.isEmpty, !["/usr", "/lib", "/lib64", "/lib32", "/libx32"].contains(where: { dir == $0 || dir.hasPrefix($0 + "/") }) else { continue }
            if !dirs.contains(dir) { dirs.append(dir) }
        }
        return dirs
    }
}
