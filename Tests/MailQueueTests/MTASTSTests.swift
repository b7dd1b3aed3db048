import Testing
@testable import MailQueue

/// RFC 8461 §3.1, §3.2 and §4.1.
@Suite struct MTASTSTests {
    @Test func policyParsing() throws {
        let p = try #require(MTASTSPolicy.parse("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n"))
        #expect(p.mode == .enforce && p.mx == ["mail.example.com", "*.example.net"] && p.maxAge == 604_800)
        #expect(MTASTSPolicy.parse("version: STSv1\nmode: testing\nmx: a.test\nmax_age: 99999999999\n")?.maxAge == 31_557_600)
        #expect(MTASTSPolicy.parse("version: STSv2\nmode: enforce\nmx: a\nmax_age: 1") == nil)
        #expect(MTASTSPolicy.parse("version: STSv1\nmode: enforce\nmax_age: 1") == nil)   // enforce without mx
        #expect(MTASTSPolicy.parse("version: STSv1\nmode: strict\nmx: a\nmax_age: 1") == nil)
        #expect(MTASTSPolicy.parse("<html>not found</html>") == nil)
        #expect(MTASTSPolicy.parse("version: STSv1\nmode: none\nmax_age: 86400")?.mode == MTASTSPolicy.Mode.none)
    }

    @Test func mxMatching() {
        let p = MTASTSPolicy(mode: .enforce, mx: ["mail.example.com", "*.example.net"], maxAge: 1)
        #expect(p.matches("mail.example.com") && p.matches("MAIL.example.com."))
        #expect(p.matches("mx1.example.net"))
        // The wildcard stands for one label only.
        #expect(!p.matches("a.b.example.net") && !p.matches("example.net") && !p.matches("other.example.com"))
    }

    @Test func txtRecord() {
        #expect(MTASTSPolicy.recordID("v=STSv1; id=20160831085700Z;") == "20160831085700Z")
        #expect(MTASTSPolicy.recordID("v=STSv1;id=abc") == "abc")
        #expect(MTASTSPolicy.recordID("v=spf1 -all") == nil)
        #expect(MTASTSPolicy.recordID("v=STSv1; id=bad-id") == nil)
        #expect(MTASTSPolicy.recordID("v=STSv1") == nil)
    }

    @Test func httpBodies() {
        let plain = Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloextra".utf8)
        #expect(HTTPFetchHandler.body(plain) == Array("hello".utf8))
        let chunked = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n".utf8)
        #expect(HTTPFetchHandler.body(chunked) == Array("abcde".utf8))
        #expect(HTTPFetchHandler.body(Array("HTTP/1.1 301 Moved\r\nLocation: x\r\n\r\n".utf8)) == nil)
        #expect(HTTPFetchHandler.body(Array("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort".utf8)) == nil)
        #expect(HTTPFetchHandler.body(Array("garbage".utf8)) == nil)
    }

    @Test func dayNames() {
        #expect(RFC3339Day.format(0) == "1970-01-01")
        #expect(RFC3339Day.format(1_795_506_825) == "2026-11-24")
        #expect(RFC3339Day.format(951_782_400) == "2000-02-29")
    }
}
