import Foundation
import MailAuth
import Testing

/// The RFC 7208 test suite (Tests/Vectors/SPF, README there): one case per
/// suite test, each run over `StaticMailAuthDNS` built from its scenario's
/// zone data.
@Suite struct SPFSuiteTests {
    /// Suite tests we do not run, each with its reason (also in the README).
    static let skipped: [String: String] = [:]

    @Test(arguments: SPFSuite.cases.filter { skipped[$0.name] == nil })
    func suite(_ c: SPFSuite.Case) async throws {
        let ip = try #require(IPAddress(c.host), "bad host \(c.host)")
        let checker = SPFChecker(dns: c.dns, receiver: "mx.example.net", now: { 1_400_000_000 })
        let verdict = await checker.checkMailFrom(ip: ip, mailFrom: c.mailFrom, helo: c.helo)
        #expect(c.results.contains(verdict.result.rawValue),
                "\(c.name) (\(c.spec)): got \(verdict.result) \(verdict.problem ?? ""), want \(c.results)")
        if let want = c.explanation {
            if want == "DEFAULT" {
                #expect(verdict.explanation == nil, "\(c.name): explanation \(verdict.explanation ?? "")")
            } else {
                // Names in the suite's expectations are in mixed case; DNS names are not case-sensitive.
                #expect(verdict.explanation?.lowercased() == want.lowercased(), "\(c.name): explanation")
            }
        }
    }

    @Test func everySuiteTestIsLoaded() {
        #expect(SPFSuite.cases.count == 203)
        #expect(Set(SPFSuite.cases.map(\.name)).count == SPFSuite.cases.count)
        for name in Self.skipped.keys { #expect(SPFSuite.cases.contains { $0.name == name }, "\(name) not in the suite") }
    }
}

/// Reads Tests/Vectors/SPF/rfc7208-tests.json and applies the suite's
/// conventions to its zone data (README): SPF-typed records are served as
/// TXT unless the name lists TXT itself ("TXT: NONE" lists none); TIMEOUT
/// times out the name (dropped where the name has TXT records, as the
/// timeout then stands for the SPF-type query we never make); CNAMEs are
/// followed when building the zone, a loop times out.
enum SPFSuite {
    struct Case: Sendable, CustomTestStringConvertible {
        var name, spec, helo, host, mailFrom: String
        var results: [String]
        var explanation: String?
        var dns: StaticMailAuthDNS
        var testDescription: String { name }
    }

    static let cases: [Case] = load()

    static func load() -> [Case] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Vectors/SPF/rfc7208-tests.json")
        guard let data = try? Data(contentsOf: url),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let scenarios = root["scenarios"] as? [[String: Any]] else { return [] }
        var out: [Case] = []
        for scenario in scenarios {
            let dns = zone(scenario["zonedata"] as? [String: [[String: Any]]] ?? [:])
            for t in scenario["tests"] as? [[String: Any]] ?? [] {
                out.append(Case(name: t["name"] as? String ?? "?", spec: t["spec"] as? String ?? "",
                                helo: t["helo"] as? String ?? "", host: t["host"] as? String ?? "",
                                mailFrom: t["mailfrom"] as? String ?? "", results: t["results"] as? [String] ?? [],
                                explanation: t["explanation"] as? String, dns: dns))
            }
        }
        return out
    }

    /// One octet per character (the converter's convention).
    static func octets(_ strings: [String]) -> [UInt8] {
        strings.joined().unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
    }

    static func zone(_ data: [String: [[String: Any]]]) -> StaticMailAuthDNS {
        var records: [String: [StaticMailAuthDNS.Record]] = [:]
        var cnames: [String: String] = [:]
        for (rawName, entries) in data {
            let name = rawName.lowercased()
            var list: [StaticMailAuthDNS.Record] = []
            let listsTXT = entries.contains { $0["type"] as? String == "TXT" }
            var timeout = false
            for e in entries {
                switch e["type"] as? String {
                case "TXT", "SPF":
                    guard e["none"] == nil, let strings = e["strings"] as? [String] else { continue }
                    if e["type"] as? String == "TXT" || !listsTXT { list.append(.txt(octets(strings))) }
                case "A", "AAAA":
                    if let ip = IPAddress(e["value"] as? String ?? "") {
                        list.append(ip.isIPv4 ? .a(ip.octets) : .aaaa(ip.octets))
                    }
                case "MX":
                    let exchange = e["exchange"] as? String ?? ""
                    list.append(.mx(UInt16(e["preference"] as? Int ?? 0), exchange.hasSuffix(".") ? String(exchange.dropLast()) : exchange))
                case "PTR":
                    let target = e["value"] as? String ?? ""
                    list.append(.ptr(target.hasSuffix(".") ? String(target.dropLast()) : target))
                case "CNAME":
                    let target = (e["value"] as? String ?? "").lowercased()
                    cnames[name] = target.hasSuffix(".") ? String(target.dropLast()) : target
                case "TIMEOUT":
                    timeout = true
                default:
                    continue
                }
            }
            let hasTXT = list.contains { if case .txt = $0 { return true } else { return false } }
            if timeout && !hasTXT { list = [.timeout] }
            records[name] = list
        }
        for (name, _) in cnames {
            var seen: Set<String> = [name]
            var target = cnames[name]!
            while let next = cnames[target], !seen.contains(target) { seen.insert(target); target = next }
            records[name] = seen.contains(target) || cnames[target] != nil ? [.timeout] : (records[target] ?? [])
            if records[name]!.isEmpty && records[target] == nil { records[name] = nil }
        }
        return StaticMailAuthDNS(records)
    }
}
