import Foundation
import Testing
@testable import Provisioning
#if canImport(Glibc)
import Glibc
#endif

/// What the sandbox tests need: root, bwrap, setpriv, and the engine binary
/// (`swift build --product postcell-engine`, or POSTCELL_ENGINE=PATH).
/// POSTCELL_SKIP_SANDBOX_TESTS=1 skips them.
enum SandboxTestEnvironment {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let engine = ProcessInfo.processInfo.environment["POSTCELL_ENGINE"] ?? packageRoot + "/.build/debug/postcell-engine"
    static let available: Bool = ProcessInfo.processInfo.environment["POSTCELL_SKIP_SANDBOX_TESTS"] != "1"
        && geteuid() == 0 && access("/usr/bin/bwrap", X_OK) == 0 && access("/usr/bin/setpriv", X_OK) == 0
        && access(engine, X_OK) == 0
}

/// A temporary backend root (0711 so cell uids can reach their data) and
/// cgroup prefix; `cleanUp` kills and removes whatever the test left behind.
struct TestBackend {
    let root: String
    let prefix: String
    let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 16)

    init() throws {
        root = "/tmp/pc-prov-" + tag
        prefix = "pctest-\(tag)-"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        chmod(root, 0o711)
    }

    func configuration(_ sandbox: SandboxMode = .bubblewrap) -> LocalProvisioner.Configuration {
        var c = LocalProvisioner.Configuration(root: root, engineBinary: SandboxTestEnvironment.engine, sandbox: sandbox)
        c.cgroupPrefix = prefix
        c.uidBase = 210_000
        c.stopGrace = 5
        c.tickInterval = 0.1
        return c
    }

    /// The cell's cgroup directories, whether or not a provisioner still knows them.
    func cgroupDirectories(_ id: String) -> [String] {
        let l = CgroupLayout.current()
        return [l.memory, l.pids, l.cpu, l.unified].compactMap { $0 }.map { $0 + "/" + prefix + id }
            .filter { FileManager.default.fileExists(atPath: $0) }
    }

    func cleanUp(_ ids: [String]) {
        for id in ids {
            let groups = cgroupDirectories(id)
            for _ in 0..<50 {
                var pids: [Int32] = []
                for d in groups {
                    let text = (try? String(contentsOfFile: d + "/cgroup.procs", encoding: .utf8)) ?? ""
                    pids += text.split(separator: "\n").compactMap { Int32($0) }
                }
                if pids.isEmpty { break }
                for p in pids { kill(p, SIGKILL) }
                usleep(20_000)
            }
            for d in groups { rmdir(d) }
        }
        // Children of this test process that ended: collect them.
        var status: Int32 = 0
        while waitpid(-1, &status, WNOHANG) > 0 {}
        try? FileManager.default.removeItem(atPath: root)
    }
}

enum Probe {
    static func cellConfig(listeners: String = #"{"name":"mx","role":"mx","path":"sockets/mx.sock"}"#) -> String {
        #"{"hostname":"cell.test","domains":["cell.test"],"authentication":{"checks":false},"admin":{"path":"sockets/admin.sock"},"listeners":["# + listeners + "]}"
    }

    static func waitUntil(_ seconds: Double, _ what: String, _ cond: () async -> Bool) async throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if await cond() { return }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        Issue.record("timed out waiting for \(what)")
        throw CancellationError()
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// The engine processes (the sandbox's `/engine`) in a set of cgroups.
    static func enginePids(_ dirs: [String]) -> [Int32] {
        var pids = Set<Int32>()
        for d in dirs { for l in read(d + "/cgroup.procs").split(separator: "\n") { if let p = Int32(l) { pids.insert(p) } } }
        return pids.filter { ProcessSpawner.commandLine($0).first == "/engine" }.sorted()
    }

    static func statusIDs(_ pid: Int32, _ key: String) -> [String] {
        read("/proc/\(pid)/status").split(separator: "\n").first { $0.hasPrefix(key + ":") }?
            .split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().map(String.init) ?? []
    }

    static func link(_ path: String) -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: path) }

    /// Connects (unix path or TCP port on 127.0.0.1) and reads the first reply line.
    static func greeting(unixPath: String? = nil, port: Int? = nil) -> String? {
        let fd = socket(unixPath != nil ? AF_UNIX : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var ok = false
        if let unixPath {
            var a = sockaddr_un()
            a.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &a.sun_path) { p in for (i, b) in unixPath.utf8.enumerated() where i < p.count - 1 { p[i] = b } }
            ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 } }
        } else if let port {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = UInt16(port).bigEndian
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
        }
        guard ok else { return nil }
        var buf = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buf, buf.count, 0)
        guard n > 0 else { return nil }
        return String(decoding: buf[..<n], as: UTF8.self).split(separator: "\r\n").first.map(String.init)
    }

    static func freePort() throws -> Int {
        let fd = try ListenerSockets.bind(host: "127.0.0.1", port: 0, backlog: 1)
        defer { close(fd) }
        return ListenerSockets.localPort(fd)!
    }
}

@Suite(.serialized, .enabled(if: SandboxTestEnvironment.available,
                             "needs root, bwrap, setpriv and the engine binary (.build/debug/postcell-engine)"))
struct LocalProvisionerIntegrationTests {
    /// One cell's whole life in bubblewrap: isolation, limits, inherited
    /// listener, crash and restart, adoption by a new provisioner, stop, removal.
    @Test func sandboxedCellLifecycle() async throws {
        let env = try TestBackend()
        let id = "life"
        defer { env.cleanUp([id]) }
        let p1 = try LocalProvisioner(env.configuration())
        #expect(p1.sandboxMode == .bubblewrap)
        let port = try Probe.freePort()
        let limits = ResourceLimits(memoryBytes: 256 << 20, pids: 256, cpuShares: 512, openFiles: 512)
        let spec = CellSpec(id: id, desired: .running, configuration: Probe.cellConfig(),
                            listeners: [ListenerSocket(name: "smtp", host: "127.0.0.1", port: port)], limits: limits)
        try await p1.apply(spec)
        let data = p1.dataDirectory(id)
        let groups = await p1.cgroupDirectories(of: id)
        #expect(groups.count == 4, "memory, pids, cpu and unified cgroups: \(groups)")
        try await Probe.waitUntil(30, "the engine to be ready") {
            FileManager.default.fileExists(atPath: data + "/run/listeners.json") && Probe.enginePids(groups).count == 1
        }
        let engine = Probe.enginePids(groups)[0]
        let uid = try #require(await p1.uid(of: id))

        // Its own uid, before and inside the sandbox.
        #expect(Probe.statusIDs(engine, "Uid") == Array(repeating: String(uid), count: 4))
        #expect(Probe.statusIDs(engine, "Gid") == Array(repeating: String(uid), count: 4))
        #expect(Probe.statusIDs(engine, "Groups").isEmpty)
        #expect(Probe.read("/proc/\(engine)/status").contains("CapEff:\t0000000000000000"))
        // Its own namespaces.
        for ns in ["pid", "net", "mnt", "ipc", "uts", "user"] {
            let theirs = Probe.link("/proc/\(engine)/ns/\(ns)"), ours = Probe.link("/proc/self/ns/\(ns)")
            #expect(theirs != nil && theirs != ours, "\(ns) namespace")
        }
        // Only /data is writable (besides the sandbox's private /dev and /proc).
        var writable: [String] = []
        for line in Probe.read("/proc/\(engine)/mountinfo").split(separator: "\n") {
            let f = line.split(separator: " ")
            let mountPoint = String(f[4]), options = f[5].split(separator: ",")
            if options.contains("rw") && !(mountPoint == "/dev" || mountPoint.hasPrefix("/dev/") || mountPoint == "/proc" || mountPoint.hasPrefix("/proc/")) {
                writable.append(mountPoint)
            }
        }
        #expect(writable == ["/data"])
        // The data directory and its configuration belong to the cell.
        var st = stat()
        stat(data, &st)
        #expect(st.st_uid == uid && st.st_mode & 0o777 == 0o700)
        stat(data + "/cell.json", &st)
        #expect(st.st_uid == uid && st.st_mode & 0o777 == 0o600)
        // Limits: cgroups joined and set, open files.
        for d in groups { #expect(Probe.read(d + "/cgroup.procs").split(separator: "\n").contains(Substring(String(engine)))) }
        #expect(Probe.read(groups[0] + "/memory.limit_in_bytes") == "\(256 << 20)\n")
        #expect(Probe.read(groups[1] + "/pids.max") == "256\n")
        #expect(Probe.read(groups[2] + "/cpu.shares") == "512\n")
        let nofile = Probe.read("/proc/\(engine)/limits").split(separator: "\n").first { $0.hasPrefix("Max open files") }
        #expect(nofile?.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).prefix(2).joined(separator: " ") == "512 512")
        // The listener is the backend's socket, inherited as fd 3.
        let fd3 = try #require(Probe.link("/proc/\(engine)/fd/3"))
        #expect(fd3.hasPrefix("socket:"))
        let ourLinks = Set(((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Probe.link("/proc/self/fd/" + $0) })
        #expect(ourLinks.contains(fd3))
        // The cell's unix socket is reachable from the host.
        #expect(Probe.greeting(unixPath: data + "/sockets/mx.sock")?.hasPrefix("220 ") == true)
        // The admin API answers: the cell is running and healthy.
        try await Probe.waitUntil(10, "the health check") { await p1.observe().first?.healthy == true }
        var o = try #require(await p1.observe().first)
        #expect(o.phase == .running)

        // kill -9 of the engine: the whole sandbox goes, the cell is back after the back-off, same port.
        let firstOuter = try #require(o.pid)
        kill(engine, SIGKILL)
        try await Probe.waitUntil(10, "the restart") {
            guard let o = await p1.observe().first else { return false }
            return o.restarts == 1 && o.pid != nil && o.pid != firstOuter && Probe.enginePids(groups).count == 1
        }
        o = try #require(await p1.observe().first)
        #expect(o.lastExit != nil)
        #expect(await p1.boundPorts(of: id) == ["smtp": port])
        let second = Probe.enginePids(groups)[0]
        #expect(second != engine)
        try await Probe.waitUntil(30, "the restarted engine's socket") {
            Probe.greeting(unixPath: data + "/sockets/mx.sock")?.hasPrefix("220 ") == true
        }
        #expect(Probe.link("/proc/\(second)/fd/3") == fd3, "the same listening socket across restarts")

        // The control plane goes away: the cell keeps running; a new one adopts it.
        await p1.shutdown(stopCells: false)
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(kill(second, 0) == 0)
        #expect(Probe.greeting(unixPath: data + "/sockets/mx.sock")?.hasPrefix("220 ") == true)
        let p2 = try LocalProvisioner(env.configuration())
        let adopted = try #require(await p2.observe().first)
        #expect(adopted.id == id && adopted.pid == o.pid && adopted.detail?.contains("adopted") == true)
        try await p2.apply(spec)
        try await Task.sleep(nanoseconds: 1_500_000_000)
        #expect(Probe.enginePids(groups) == [second], "no duplicate after adoption")
        #expect(await p2.observe().first?.pid == o.pid)

        // Stop: the tree is gone and the cgroups with it.
        var stopped = spec
        stopped.desired = .stopped
        try await p2.apply(stopped)
        try await Probe.waitUntil(15, "the stop") { await p2.observe().first?.phase == .stopped }
        #expect(kill(second, 0) != 0)
        try await Probe.waitUntil(5, "the cgroups to go") { env.cgroupDirectories(id).isEmpty }
        #expect(!FileManager.default.fileExists(atPath: env.root + "/run/\(id).json"))
        #expect(FileManager.default.fileExists(atPath: data + "/cell.json"), "stopping keeps the data")

        try await p2.remove(id: id, deleteData: true)
        #expect(!FileManager.default.fileExists(atPath: data))
        #expect(await p2.observe().isEmpty)
        await p2.shutdown(stopCells: true)
    }

    /// Two cells get two uids; a crashing configuration backs off and is
    /// reported with its exit; shutdown(stopCells: true) leaves nothing.
    @Test func badConfigurationBacksOffAndShutdownStopsAll() async throws {
        let env = try TestBackend()
        defer { env.cleanUp(["good", "bad", "tiny"]) }
        var conf = env.configuration()
        conf.backoff = RestartBackoff(initial: 0.5, maximum: 2, resetAfter: 60)
        let p = try LocalProvisioner(conf)
        try await p.apply(CellSpec(id: "good", desired: .running, configuration: Probe.cellConfig(), listeners: [],
                                   limits: .init(pids: 256)))
        try await p.apply(CellSpec(id: "bad", desired: .running, configuration: #"{"hostname":"x"}"#, listeners: []))
        try await Probe.waitUntil(20, "two failed starts of the bad cell") {
            (await p.observe().first { $0.id == "bad" }?.restarts ?? 0) >= 2
        }
        let bad = try #require(await p.observe().first { $0.id == "bad" })
        #expect(bad.lastExit == "exit 2")
        #expect(Probe.read(env.root + "/logs/bad.log").contains("domain"))
        let u1 = await p.uid(of: "good"), u2 = await p.uid(of: "bad")
        #expect(u1 != nil && u2 != nil && u1 != u2)

        let groups = await p.cgroupDirectories(of: "good")
        try await Probe.waitUntil(30, "the good engine") { Probe.enginePids(groups).count == 1 }
        await p.shutdown(stopCells: true)
        #expect(Probe.enginePids(groups).isEmpty)
        #expect(env.cgroupDirectories("good").isEmpty && env.cgroupDirectories("bad").isEmpty && env.cgroupDirectories("tiny").isEmpty)
    }

    /// Sandbox `none`: a plain child in the data directory, still in its
    /// cgroups, still handed its listener as fd 3.
    @Test func plainChildWithoutSandbox() async throws {
        let env = try TestBackend()
        let id = "plain"
        defer { env.cleanUp([id]) }
        let p = try LocalProvisioner(env.configuration(.none))
        #expect(p.sandboxMode == .none)
        try await p.apply(CellSpec(id: id, desired: .running, configuration: Probe.cellConfig(),
                                   listeners: [ListenerSocket(name: "smtp", host: "127.0.0.1", port: try Probe.freePort())],
                                   limits: .init(pids: 256)))
        let data = p.dataDirectory(id)
        try await Probe.waitUntil(30, "the engine") { Probe.greeting(unixPath: data + "/sockets/mx.sock")?.hasPrefix("220 ") == true }
        let o = try #require(await p.observe().first)
        let pid = try #require(o.pid)
        #expect(ProcessSpawner.commandLine(pid) == [SandboxTestEnvironment.engine.hasPrefix("/") ? URL(fileURLWithPath: SandboxTestEnvironment.engine).resolvingSymlinksInPath().path : "", "serve", "--config", data + "/cell.json"])
        #expect(Probe.link("/proc/\(pid)/cwd") == data)
        #expect(Probe.link("/proc/\(pid)/fd/3")?.hasPrefix("socket:") == true)
        #expect(o.detail?.contains("sandbox none") == true)
        #expect(Probe.read(env.cgroupDirectories(id)[0] + "/cgroup.procs").contains(String(pid)))
        await p.shutdown(stopCells: true)
        #expect(kill(pid, 0) != 0)
    }

    /// A TCP listener handed in as `"fd": 3`: mail clients reach the cell on
    /// the host's port. Skipped while the engine refuses `fd` listeners.
    @Test func fdListenerServesTCP() async throws {
        let env = try TestBackend()
        let id = "fd"
        defer { env.cleanUp([id]) }
        let p = try LocalProvisioner(env.configuration())
        let port = try Probe.freePort()
        try await p.apply(CellSpec(id: id, desired: .running,
                                   configuration: Probe.cellConfig(listeners: #"{"name":"mx","role":"mx","fd":3}"#),
                                   listeners: [ListenerSocket(name: "mx", host: "127.0.0.1", port: port)], limits: .init(pids: 256)))
        var greeting: String?
        let end = Date().addingTimeInterval(30)
        while Date() < end {
            if let o = await p.observe().first, o.restarts > 0 {
                let log = Probe.read(env.root + "/logs/\(id).log")
                await p.shutdown(stopCells: true)
                if log.contains("fd") {
                    let line = log.split(separator: "\n").first { $0.contains("fd") }.map(String.init) ?? ""
                    try Test.cancel("the engine does not accept fd listeners yet: \(line)")
                }
                Issue.record("the cell exited: \(o.lastExit ?? "?"): \(log)")
                return
            }
            if let g = Probe.greeting(port: port) { greeting = g; break }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        #expect(greeting?.hasPrefix("220 ") == true)
        await p.shutdown(stopCells: true)
    }
}
