import Foundation
import Testing
@testable import Provisioning

@Suite struct SandboxCommandTests {
    @Test func bubblewrapLineFollowsIsolationMD() {
        let a = SandboxCommand.bubblewrap(cellID: "c1", uid: 200_003, gid: 200_003, dataDirectory: "/srv/pc/cells/c1",
                                          engine: "/opt/pc/postcell-engine", runtimeDirectories: ["/opt/swift/usr/lib/swift/linux"])
        #expect(a == [
            "/usr/bin/setpriv", "--reuid=200003", "--regid=200003", "--clear-groups",
            "/usr/bin/bwrap", "--unshare-all", "--unshare-user", "--disable-userns",
            "--new-session", "--cap-drop", "ALL", "--hostname", "c1",
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
            "--ro-bind", "/opt/swift/usr/lib/swift/linux", "/opt/swift/usr/lib/swift/linux",
            "--ro-bind", "/opt/pc/postcell-engine", "/engine",
            "--proc", "/proc", "--dev", "/dev",
            "--bind", "/srv/pc/cells/c1", "/data", "--chdir", "/data",
            "--clearenv", "--remount-ro", "/",
            "/engine", "serve", "--config", "/data/cell.json",
        ])
        // Cells outlive the control plane: no --die-with-parent.
        #expect(!a.contains("--die-with-parent"))
        // --remount-ro / comes after every bind.
        let remount = a.firstIndex(of: "--remount-ro")!
        #expect(a.lastIndex(where: { $0.hasSuffix("bind") })! < remount)
    }

    @Test func launcherPassesValuesAsArgumentsOnly() {
        let a = SandboxCommand.launcher(openFiles: 1024, cgroupProcsFiles: ["/cg/memory/x/cgroup.procs", "/cg/pids/x/cgroup.procs"],
                                        directory: "/d ir", command: ["/usr/bin/setpriv", "--reuid=1", "x y"])
        #expect(a[0] == "/bin/sh" && a[1] == "-c")
        #expect(Array(a[3...]) == ["postcell-launch", "1024", "/d ir", "/cg/memory/x/cgroup.procs", "/cg/pids/x/cgroup.procs",
                                   "--", "/usr/bin/setpriv", "--reuid=1", "x y"])
        #expect(!a[2].contains("/cg/") && !a[2].contains("1024"))
    }

    /// The launcher script run for real: joins "cgroups" (plain files here),
    /// sets the open-files limit, changes directory, execs with arguments intact.
    @Test func launcherScriptRuns() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pc-launch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/w d", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/procs1", contents: nil)
        FileManager.default.createFile(atPath: dir + "/procs2", contents: nil)
        let argv = SandboxCommand.launcher(openFiles: 77, cgroupProcsFiles: [dir + "/procs1", dir + "/procs2"], directory: dir + "/w d",
                                           command: ["/bin/sh", "-c", "echo \"$(ulimit -n) $(pwd) $$ $1\" > out", "sh", "a b"])
        let pid = try ProcessSpawner.spawn(argv, environment: ["PATH=/usr/bin:/bin"], inherited: [], logPath: dir + "/log")
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(ProcessSpawner.describe(waitStatus: status) == "exit 0")
        let out = try String(contentsOfFile: dir + "/w d/out", encoding: .utf8)
        #expect(out == "77 \(dir)/w d \(pid) a b\n")
        #expect(try String(contentsOfFile: dir + "/procs1", encoding: .utf8) == "\(pid)\n")
        #expect(try String(contentsOfFile: dir + "/procs2", encoding: .utf8) == "\(pid)\n")
    }

    @Test func aCgroupThatCannotBeJoinedStopsTheStart() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pc-launch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let argv = SandboxCommand.launcher(openFiles: nil, cgroupProcsFiles: [dir + "/missing/cgroup.procs"], directory: dir,
                                           command: ["/bin/true"])
        let pid = try ProcessSpawner.spawn(argv, environment: [], inherited: [], logPath: dir + "/log")
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(ProcessSpawner.describe(waitStatus: status) == "exit 125")
        #expect(try String(contentsOfFile: dir + "/log", encoding: .utf8).contains("cannot join"))
    }

    /// Listening sockets arrive as fds 3 and 4, not close-on-exec, and nothing else leaks.
    @Test func inheritedListenersLandAtThreeAndUp() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pc-fds-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var sockets = ListenerSockets()
        defer { sockets.closeAll() }
        let fds = try sockets.update([ListenerSocket(name: "a", host: "127.0.0.1", port: 0),
                                      ListenerSocket(name: "b", host: "127.0.0.1", port: 0)])
        let ports = fds.map { ListenerSockets.localPort($0)! }
        let script = "for f in /proc/self/fd/*; do readlink $f; done > fds; ls /proc/self/fd > names"
        let pid = try ProcessSpawner.spawn(["/bin/sh", "-c", "cd \(dir) && " + script], environment: [], inherited: fds, logPath: dir + "/log")
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let names = try String(contentsOfFile: dir + "/names", encoding: .utf8).split(separator: "\n").compactMap { Int($0) }.sorted()
        // 0-2, the two sockets, and the fd ls itself opens for the directory.
        #expect(names.filter { $0 != names.last } == [0, 1, 2, 3, 4])
        let links = try String(contentsOfFile: dir + "/fds", encoding: .utf8)
        #expect(links.contains("socket:"))
        #expect(ports.allSatisfy { $0 > 0 })
        // The sockets stay bound in this process across spawns.
        #expect(try sockets.update([ListenerSocket(name: "a", host: "127.0.0.1", port: 0),
                                    ListenerSocket(name: "b", host: "127.0.0.1", port: 0)]) == fds)
    }

    @Test func runtimeDirectoriesFromLdd() {
        let out = """
        \tlinux-vdso.so.1 (0x00007ffd)
        \tlibsqlite3.so.0 => /lib/x86_64-linux-gnu/libsqlite3.so.0 (0x00007f)
        \tlibswiftCore.so => /opt/swift/usr/lib/swift/linux/libswiftCore.so (0x00007f)
        \tlibFoundation.so => /opt/swift/usr/lib/swift/linux/libFoundation.so (0x00007f)
        \tlibfoo.so => /usr/local/lib/libfoo.so (0x1)
        \tlibbar.so => not found
        \t/lib64/ld-linux-x86-64.so.2 (0x00007f)
        """
        #expect(SandboxCommand.runtimeDirectories(lddOutput: out) == ["/opt/swift/usr/lib/swift/linux"])
    }

    @Test func cgroupLayoutFromProcSelfCgroup() {
        let text = """
        9:name=systemd:/
        8:pids:/
        4:memory:/process_api/abc
        2:cpu,cpuacct:/
        1:cpuset:/
        0::/
        """
        let existing: Set<String> = ["/cg/pids", "/cg/memory/process_api/abc", "/cg/cpu,cpuacct", "/cg/unified"]
        let l = CgroupLayout.parse(text, root: "/cg", exists: { existing.contains($0) })
        #expect(l == CgroupLayout(memory: "/cg/memory/process_api/abc", pids: "/cg/pids", cpu: "/cg/cpu,cpuacct", unified: "/cg/unified"))
        // Separate cpu and cpuacct mounts; no v2 tree.
        let l2 = CgroupLayout.parse("3:cpu,cpuacct:/x\n", root: "/cg", exists: { $0 == "/cg/cpu/x" })
        #expect(l2 == CgroupLayout(cpu: "/cg/cpu/x"))
    }

    @Test func cellIDs() throws {
        try ProvisioningError.validate(cellID: "family-smith-01")
        for bad in ["", "A", "a/b", "..", "a.b", String(repeating: "a", count: 41)] {
            #expect(throws: ProvisioningError.self) { try ProvisioningError.validate(cellID: bad) }
        }
    }

    @Test func uidIndicesAreNeverReused() {
        var u = UIDIndex()
        #expect(u.index(for: "a").0 == 0)
        #expect(u.index(for: "b").0 == 1)
        let again = u.index(for: "a")
        #expect(again.0 == 0 && !again.isNew)
        u.cells["a"] = nil  // a removed cell
        #expect(u.index(for: "c").0 == 2)
    }
}
