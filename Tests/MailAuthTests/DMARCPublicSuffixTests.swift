import Foundation
import MailAuth
import Testing

/// The Public Suffix List parser: the list's own test cases
/// (Tests/Vectors/DMARC/test_psl.txt) against the system's list, and the
/// algorithm's rules on a small list written here.
@Suite struct DMARCPublicSuffixTests {
    struct Check: Sendable, CustomTestStringConvertible {
        var domain: String
        var registrable: String?
        var testDescription: String { "\(domain) → \(registrable ?? "null")" }
    }

    /// `checkPublicSuffix('a.b', 'b')` lines; `null` as nil; commented lines left out.
    static let checks: [Check] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Vectors/DMARC/test_psl.txt")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("checkPublicSuffix(") else { return nil }
            let args = line.dropFirst("checkPublicSuffix(".count).split(separator: ",").map {
                $0.trimmingCharacters(in: CharacterSet(charactersIn: " );'"))
            }
            guard args.count == 2, args[0] != "null" else { return nil }
            return Check(domain: args[0], registrable: args[1] == "null" ? nil : args[1])
        }
    }()

    static let system: PublicSuffixList? = try? PublicSuffixList(contentsOfFile: PublicSuffixList.debianPath)

    @Test func theSystemListIsInstalled() throws {
        // scripts/test.sh installs the Debian package publicsuffix: its absence is a failure.
        let list = try #require(Self.system, "no list at \(PublicSuffixList.debianPath) (apt-get install publicsuffix)")
        #expect(list.ruleCount > 5000)
        #expect(Self.checks.count == 77)
    }

    @Test(arguments: checks)
    func listTestCases(_ c: Check) throws {
        let list = try #require(Self.system)
        #expect(list.registrableDomain(of: c.domain) == c.registrable)
    }

    static let small = PublicSuffixList(text: """
        // a list written for these tests
        com
        *.ck
        !www.ck
        co.uk
        uk
        // ===BEGIN PRIVATE DOMAINS===
        blogspot.com   trailing words are ignored
        公司.cn
        cn
        """)

    @Test func rules() {
        let l = Self.small
        #expect(l.registrableDomain(of: "mail.example.com") == "example.com")
        #expect(l.registrableDomain(of: "a.b.example.co.uk.") == "example.co.uk")
        #expect(l.registrableDomain(of: "co.uk") == nil)
        #expect(l.registrableDomain(of: "x.blogspot.com") == "x.blogspot.com")
        #expect(l.registrableDomain(of: "a.b.ck") == "a.b.ck")
        #expect(l.registrableDomain(of: "b.ck") == nil)
        #expect(l.registrableDomain(of: "www.ck") == "www.ck")
        #expect(l.publicSuffix(of: "www.www.ck") == "ck")
        // Unlisted TLD: the implicit "*" rule.
        #expect(l.registrableDomain(of: "a.b.example") == "b.example")
        #expect(l.registrableDomain(of: "x.xn--55qx5d.cn") == "x.xn--55qx5d.cn")
        #expect(l.registrableDomain(of: "a..com") == nil)
        #expect(l.organizationalDomain(of: "Mail.Example.COM") == "example.com")
        #expect(l.organizationalDomain(of: "co.uk") == "co.uk")
    }
}
