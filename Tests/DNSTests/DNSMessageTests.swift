@testable import DNS
import Testing
import TestSupport

/// The wire codec: hand-assembled messages (RFC 1035 §4.1 layout), round
/// trips, and hostile input that must be refused without a trap.
struct DNSMessageTests {
    func name(_ s: String) -> DNSName { DNSName(s)! }

    @Test func namesParsePrintAndCompareWithoutCase() {
        #expect(name("Example.TEST").description == "Example.TEST.")
        #expect(name("example.test.") == name("EXAMPLE.test"))
        #expect(name("example.test").hashValue == name("EXAMPLE.TEST.").hashValue)
        #expect(DNSName(".") == .root && DNSName("") == .root)
        #expect(name("a\\.b.test").labels.count == 2)
        #expect(name("a\\.b.test").description == "a\\.b.test.")
        #expect(name("\\065b.test").description == "Ab.test.")
        #expect(name("x\\000y.test").description == "x\\000y.test.")
        #expect(DNSName("a..b") == nil)
        #expect(DNSName(String(repeating: "a", count: 64) + ".test") == nil)
        #expect(DNSName(String(repeating: "a", count: 63) + ".test") != nil)
        // 255 octets in wire form at most (RFC 1035 §2.3.4).
        let long = Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: ".")
        #expect(DNSName(long) == nil)
        #expect(DNSName(String(long.dropFirst(2))) != nil)
        #expect(name("mail.example.test").isSubdomain(of: name("EXAMPLE.test")))
        #expect(!name("example.test").isSubdomain(of: name("mail.example.test")))
    }

    @Test func aHandAssembledResponseDecodes() {
        // ID 0xBEEF, QR RD RA, one question example.test/MX, two MX answers
        // whose names point back into the question (compression).
        let bytes: [UInt8] = [
            0xBE, 0xEF, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,
            7, 101, 120, 97, 109, 112, 108, 101, 4, 116, 101, 115, 116, 0, 0, 15, 0, 1,
            0xC0, 12, 0, 15, 0, 1, 0, 0, 0x0E, 0x10, 0, 7, 0, 10, 2, 109, 120, 0xC0, 12,
            0xC0, 12, 0, 15, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 0, 20, 0xC0, 44,
        ]
        let m = try! DNSMessage.decode(bytes)
        #expect(m.id == 0xBEEF && m.isResponse && m.recursionDesired && m.recursionAvailable && !m.truncated)
        #expect(m.rcode == .noError)
        #expect(m.questions == [DNSQuestion(name: name("example.test"), type: .mx)])
        #expect(m.answers.map(\.data) == [.mx(preference: 10, exchange: name("mx.example.test")),
                                           .mx(preference: 20, exchange: name("mx.example.test"))])
        #expect(m.answers[0].ttl == 3600)
        #expect(m.answers.map(\.data.presentation) == ["10 mx.example.test.", "20 mx.example.test."])
    }

    @Test func everyRecordTypeRoundTrips() {
        var m = DNSMessage(id: 7, flags: 0)
        m.isResponse = true
        m.authenticData = true
        m.questions = [DNSQuestion(name: name("example.test"), type: .txt)]
        let soa = DNSRData.SOA(mname: name("ns.example.test"), rname: name("hostmaster.example.test"), serial: 2026112401,
                               refresh: 3600, retry: 600, expire: 86400, minimum: 300)
        m.answers = [
            DNSRecord(name: name("example.test"), type: .a, ttl: 60, data: .a([192, 0, 2, 1])),
            DNSRecord(name: name("example.test"), type: .aaaa, ttl: 60, data: .aaaa([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1])),
            DNSRecord(name: name("www.example.test"), type: .cname, ttl: 60, data: .cname(name("example.test"))),
            DNSRecord(name: name("1.2.0.192.in-addr.arpa"), type: .ptr, ttl: 60, data: .ptr(name("mx.example.test"))),
            DNSRecord(name: name("example.test"), type: .txt, ttl: 60, data: .txt([Array("v=spf1 -all".utf8), [0, 0xFF, 0x22], []])),
            DNSRecord(name: name("_25._tcp.mx.example.test"), type: .tlsa, ttl: 60, data: .tlsa(usage: 3, selector: 1, matchingType: 1, data: Array(0..<32))),
            DNSRecord(name: name("example.test"), type: DNSType(rawValue: 99), ttl: 60, data: .other([1, 2, 3])),
        ]
        m.authority = [DNSRecord(name: name("example.test"), type: .soa, ttl: 300, data: .soa(soa)),
                       DNSRecord(name: name("example.test"), type: .ns, ttl: 300, data: .ns(name("ns.example.test")))]
        m.edns = DNSEDNS(udpPayloadSize: 1232, dnssecOK: true)
        let wire = m.encode()
        let back = try! DNSMessage.decode(wire)
        #expect(back == m)
        #expect(back.authenticData)
        // Compression made the repeated names short.
        #expect(wire.count < 400)
        #expect(m.answers[1].data.presentation == "2001:db8::1")
        #expect(m.answers[4].data.presentation == "\"v=spf1 -all\" \"\\000\\255\\\"\" \"\"")
        #expect(m.answers[5].data.presentation.hasPrefix("3 1 1 000102"))
        #expect(m.answers[6].data.presentation == "\\# 3 010203")
        #expect(m.answers[4].data.joinedText == Array("v=spf1 -all".utf8) + [0, 0xFF, 0x22])
    }

    @Test func ipv6IsWrittenTheShortWay() {
        func v6(_ groups: [UInt16]) -> String { DNSRData.ipv6(groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }) }
        #expect(v6([0, 0, 0, 0, 0, 0, 0, 1]) == "::1")
        #expect(v6([0, 0, 0, 0, 0, 0, 0, 0]) == "::")
        #expect(v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]) == "2001:db8::1:0:0:1")   // RFC 5952 §4.2.3: the first of equal runs
        #expect(v6([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1]) == "2001:db8:0:1:1:1:1:1") // §4.2.2: one zero group stays
        #expect(v6([0x2001, 0xdb8, 0, 0, 0, 0, 2, 1]) == "2001:db8::2:1")
    }

    @Test func extendedRcodeAndFlags() {
        var m = DNSMessage(id: 1, flags: 0)
        m.isResponse = true
        m.truncated = true
        m.flags |= 0x0003  // NXDOMAIN
        #expect(m.rcode == .nxDomain && m.truncated)
        m.edns = DNSEDNS(udpPayloadSize: 512)
        m.edns!.extendedRcode = 1
        m.flags &= ~0x000F
        #expect(m.rcode == .badVers)
        #expect(try! DNSMessage.decode(m.encode()).rcode == .badVers)
    }

    @Test func hostileInputIsRefused() {
        let header: [UInt8] = [0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]
        let cases: [[UInt8]] = [
            [],
            [0, 1, 0x81],
            // A pointer to itself, and two pointing at each other.
            header + [0xC0, 12, 0, 1, 0, 1],
            header + [1, 97, 0xC0, 14, 0, 1, 0, 1],
            // A pointer forwards.
            header + [0xC0, 20, 0, 1, 0, 1, 0, 0, 0, 0],
            // A label running past the end; an unknown label type.
            header + [9, 97, 98],
            header + [0x40, 97, 0, 0, 1, 0, 1],
            // A record whose data length runs past the end, and an A record of 5 octets.
            [0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 40, 1, 2],
            [0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 5, 1, 2, 3, 4, 5],
            // MX data longer than its fields.
            [0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 15, 0, 1, 0, 0, 0, 1, 0, 5, 0, 10, 0, 9, 9],
            // Two OPT records.
            [0, 1, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0],
        ]
        for c in cases {
            #expect(throws: DNSWireError.self, "\(c)") { try DNSMessage.decode(c) }
        }
        // A name of 128 one-octet labels is over 255 octets.
        let longName: [UInt8] = Array(repeating: [UInt8(1), 97], count: 128).flatMap { $0 } + [0, 0, 1, 0, 1]
        #expect(throws: DNSWireError.self) { try DNSMessage.decode(header + longName) }
        // Random bytes: refused or decoded, never a trap.
        var rng = SeededGenerator(seed: 0xD45)
        for _ in 0..<3000 {
            let junk = header + (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? DNSMessage.decode(junk)
        }
    }

    @Test func cnameChainsAreFollowed() {
        let q = DNSQuestion(name: name("www.example.test"), type: .a)
        let answer = DNSAnswer(question: q, rcode: .noError, answers: [
            DNSRecord(name: name("www.example.test"), type: .cname, ttl: 60, data: .cname(name("web.example.test"))),
            DNSRecord(name: name("WEB.example.test"), type: .cname, ttl: 60, data: .cname(name("host.example.test"))),
            DNSRecord(name: name("host.example.test"), type: .a, ttl: 60, data: .a([192, 0, 2, 7])),
            DNSRecord(name: name("other.example.test"), type: .a, ttl: 60, data: .a([192, 0, 2, 8])),
        ], authority: [], authenticated: false, overTCP: false)
        #expect(answer.records().map(\.data) == [.a([192, 0, 2, 7])])
        #expect(answer.records(.cname).count == 1)
        #expect(!answer.isNegative)
    }

    @Test func cacheHonoursTTLsAndNegativeAnswers() {
        var cache = DNSCache(capacity: 4)
        let q = DNSQuestion(name: name("example.test"), type: .mx)
        let soa = DNSRData.SOA(mname: name("ns.example.test"), rname: name("h.example.test"), serial: 1, refresh: 1, retry: 1,
                               expire: 1, minimum: 30)
        let positive = DNSAnswer(question: q, rcode: .noError,
                                 answers: [DNSRecord(name: q.name, type: .mx, ttl: 100, data: .mx(preference: 1, exchange: q.name))],
                                 authority: [], authenticated: false, overTCP: false)
        let second: UInt64 = 1_000_000_000
        cache.store(positive, now: 0, maxTTL: 86400)
        #expect(cache.lookup(q, now: 40 * second)?.answers.first?.ttl == 60)
        #expect(cache.lookup(q, now: 40 * second)?.fromCache == true)
        #expect(cache.lookup(q, now: 100 * second) == nil)
        // NXDOMAIN kept for min(SOA TTL, MINIMUM); without an SOA, not at all.
        let nx = DNSQuestion(name: name("nope.example.test"), type: .a)
        cache.store(DNSAnswer(question: nx, rcode: .nxDomain, answers: [],
                              authority: [DNSRecord(name: name("example.test"), type: .soa, ttl: 300, data: .soa(soa))],
                              authenticated: false, overTCP: false), now: 0, maxTTL: 86400)
        #expect(cache.lookup(nx, now: 29 * second) != nil)
        #expect(cache.lookup(nx, now: 31 * second) == nil)
        let bare = DNSQuestion(name: name("bare.example.test"), type: .a)
        cache.store(DNSAnswer(question: bare, rcode: .nxDomain, answers: [], authority: [], authenticated: false, overTCP: false),
                    now: 0, maxTTL: 86400)
        #expect(cache.lookup(bare, now: 0) == nil)
        // SERVFAIL and TTL 0 are not kept; the capacity holds.
        let sf = DNSQuestion(name: name("sf.example.test"), type: .a)
        cache.store(DNSAnswer(question: sf, rcode: .servFail, answers: [], authority: [], authenticated: false, overTCP: false),
                    now: 0, maxTTL: 86400)
        #expect(cache.lookup(sf, now: 0) == nil)
        for i in 0..<10 {
            let qi = DNSQuestion(name: name("h\(i).example.test"), type: .a)
            cache.store(DNSAnswer(question: qi, rcode: .noError, answers: [DNSRecord(name: qi.name, type: .a, ttl: UInt32(10 + i), data: .a([1, 2, 3, 4]))],
                                  authority: [], authenticated: false, overTCP: false), now: 0, maxTTL: 86400)
        }
        #expect(cache.entries.count <= 4)
        #expect(cache.lookup(DNSQuestion(name: name("h9.example.test"), type: .a), now: 0) != nil)
    }
}

/// Server addresses as configurations and resolv.conf give them.
struct DNSServerAddressTests {
    @Test func addressesParse() {
        #expect(DNSResolverConfiguration.server("127.0.0.1:5353")?.port == 5353)
        #expect(DNSResolverConfiguration.server("127.0.0.1")?.port == 53)
        #expect(DNSResolverConfiguration.server("[::1]:5300")?.port == 5300)
        #expect(DNSResolverConfiguration.server("::1")?.port == 53)
        #expect(DNSResolverConfiguration.server("[::1]")?.port == 53)
        for bad in ["", "localhost", "127.0.0.1:", "127.0.0.1:99999", "[::1]x", "1.2.3.4:53:1", "[::1]:abc"] {
            #expect(DNSResolverConfiguration.server(bad) == nil, "\(bad)")
        }
    }

    @Test func resolvConfNameservers() {
        let text = "# comment\nsearch example.test\nnameserver 192.0.2.53\nnameserver\t2001:db8::53\nnameserver bogus\noptions ndots:1\n"
        let servers = DNSResolverConfiguration.servers(resolvConf: text)
        #expect(servers.count == 2)
        #expect(servers.first?.ipAddress == "192.0.2.53" && servers.first?.port == 53)
    }
}
