import Testing
@testable import MIME

/// RFC 5322 §3.3 date-time and the §4.3 obsolete forms.
@Suite struct RFC5322DateTests {
    /// The dates of RFC 5322 Appendix A, with the UTC instants they name.
    @Test(arguments: [
        ("Fri, 21 Nov 1997 09:55:06 -0600", Int64(880_127_706)),                  // A.1.1
        ("Tue, 1 Jul 2003 10:52:37 +0200", Int64(1_057_049_557)),                 // A.1.2
        ("Thu, 13 Feb 1969 23:32:54 -0330", Int64(-27_723_426)),                  // A.1.3
        ("Fri, 21 Nov 1997 10:01:10 -0600", Int64(880_128_070)),                  // A.2
        ("Thu,\r\n      13\r\n        Feb\r\n          1969\r\n      23:32\r\n"
            + "               -0330 (Newfoundland Time)", Int64(-27_723_480)),   // A.5
        ("21 Nov 97 09:55:06 GMT", Int64(880_106_106)),                           // A.6.2
        ("Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", Int64(880_127_706)),  // A.6.3
    ])
    func appendixA(_ text: String, _ expected: Int64) {
        #expect(RFC5322Date.parse(text) == expected)
    }

    /// 2005-01-03 10:11:12 UTC is 1 104 747 072; each form shifts it by its zone.
    static let lenientForms: [(String, Int64)] = [
        ("Mon, 3 Jan 2005 10:11:12 +0000", 0),
        ("Mon, 03 Jan 2005 10:11:12 -0000", 0),
        ("3 Jan 2005 10:11:12 UT", 0),
        ("3 Jan 2005 10:11:12 GMT", 0),
        ("3 Jan 2005 10:11:12 EST", 5 * 3600),
        ("3 Jan 2005 10:11:12 EDT", 4 * 3600),
        ("3 Jan 2005 10:11:12 CST", 6 * 3600),
        ("3 Jan 2005 10:11:12 CDT", 5 * 3600),
        ("3 Jan 2005 10:11:12 MST", 7 * 3600),
        ("3 Jan 2005 10:11:12 MDT", 6 * 3600),
        ("3 Jan 2005 10:11:12 PST", 8 * 3600),
        ("3 Jan 2005 10:11:12 pdt", 7 * 3600),
        ("3 Jan 2005 10:11:12 A", 0),              // military: -0000 (§4.3)
        ("3 Jan 2005 10:11:12 z", 0),
        ("3 Jan 2005 10:11:12 CET", 0),            // unknown alphabetic zone: -0000
        ("3 Jan 2005 10:11:12", 0),                // no zone at all: taken as -0000
        ("Mon, 3 Jan 2005 10:11:12 -0700 (PDT)", 7 * 3600),
        ("Mon, 3 Jan 2005 10:11:12 -0800 PST", 8 * 3600),
        ("Mon, 3 Jan 2005 10:11:12 +0530", -(5 * 3600 + 30 * 60)),
        ("Mon 3 Jan 2005 10:11:12 +0000", 0),      // comma missing
        ("monday, 3 JAN 2005 10:11:12 +0000", 0),  // case, full day name
        ("Mon, 3 January 2005 10:11:12 +0000", 0),
        ("  Mon ,  3   jan  2005  10 : 11 : 12   +0000  ", 0),
        ("Mon, 3 Jan 2005\r\n 10:11:12\r\n\t+0000", 0),
        ("(Sent) Mon, 3 Jan 2005 (really) 10:11:12 ((nested) comment) +0000 (UTC)", 0),
        ("Mon, 3 Jan 105 10:11:12 +0000", 0),      // 3-digit year: + 1900
        ("Mon, 3 Jan 05 10:11:12 +0000", 0),       // 2-digit year 00–49: + 2000
        ("Tue, 3 Jan 2005 10:11:12 +0000", 0),     // wrong weekday: the date wins
        ("Mon, 3 Jan 2005 10:11 +0000", -12),      // no seconds
    ]

    @Test(arguments: lenientForms)
    func obsoleteAndLenientForms(_ text: String, _ shift: Int64) {
        #expect(RFC5322Date.parse(text) == 1_104_747_072 + shift)
    }

    /// The zone as written, for SENTBEFORE-style comparisons of the sender's date.
    @Test func zoneAsWritten() {
        let zoned = RFC5322Date.parseZoned("Fri, 21 Nov 1997 23:55:06 -0600")
        #expect(zoned?.utc == 880_178_106 && zoned?.offsetMinutes == -360)
        #expect(RFC5322Date.parseZoned("3 Jan 2005 10:11:12 EDT")?.offsetMinutes == -240)
        #expect(RFC5322Date.parseZoned("3 Jan 2005 10:11:12 +0530")?.offsetMinutes == 330)
        #expect(RFC5322Date.parseZoned("3 Jan 2005 10:11:12 Q")?.offsetMinutes == 0)
        #expect(RFC5322Date.parseZoned("3 Jan 2005 10:11:12 +0560") == nil)
        // Local wall-clock day: the 21st, although it is the 22nd in UTC.
        if let z = zoned { #expect(RFC5322Date.format(z.utc, offsetMinutes: z.offsetMinutes).hasPrefix("Fri, 21 Nov 1997 23:55:06")) }
    }

    @Test func twoDigitYears() {
        #expect(RFC5322Date.parse("3 Jan 49 10:11:12 +0000") == 2_493_281_472)   // 2049
        #expect(RFC5322Date.parse("3 Jan 50 10:11:12 +0000") == -630_942_528)    // 1950
        #expect(RFC5322Date.parse("3 Jan 99 00:00:00 +0000") == RFC5322Date.parse("3 Jan 1999 00:00:00 +0000"))
    }

    @Test func calendarEdges() {
        #expect(RFC5322Date.parse("29 Feb 2000 12:00:00 +0000") == 951_825_600)
        #expect(RFC5322Date.parse("31 Dec 2016 23:59:60 +0000") == 1_483_228_800)   // leap second
        #expect(RFC5322Date.parse("1 Jan 1900 00:00:00 +0000") == -2_208_988_800)
        #expect(RFC5322Date.parse("31 Dec 9999 23:59:59 +0000") == 253_402_300_799)
        #expect(RFC5322Date.parse("1 Jan 1970 00:00:00 +0000") == 0)
        #expect(RFC5322Date.parse("1 Jan 1970 00:00:00 +9959") == -(99 * 3600 + 59 * 60))
    }

    @Test(arguments: [
        "", "   ", "(only a comment)", "garbage", "Mon,",
        "32 Jan 2005 10:00:00 +0000",
        "29 Feb 2023 10:00:00 +0000",
        "31 Apr 2005 10:00:00 +0000",
        "0 Jan 2005 10:00:00 +0000",
        "3 Foo 2005 10:00:00 +0000",
        "Funday, 3 Jan 2005 10:00:00 +0000",
        "3 Jan 2005 24:00:00 +0000",
        "3 Jan 2005 10:60:00 +0000",
        "3 Jan 2005 10:00:61 +0000",
        "3 Jan 2005 10:00:00 +0160",
        "3 Jan 2005 10:00:00 +100",
        "3 Jan 2005 10:00:00 +01:00",
        "3 Jan 2005 10:00:00 +0000 extra junk",
        "3 Jan 2005 10:00:00 +0000 1",
        "3 Jan 1899 10:00:00 +0000",
        "3 Jan 12005 10:00:00 +0000",
        "3 Jan 5 10:00:00 +0000",
        "123 Jan 2005 10:00:00 +0000",
        "3 Jan 2005",
        "3 Jan 2005 10 +0000",
        "3 Jan 2005 10: +0000",
        "3 Jan 2005 100:00 +0000",
        "Mon Jan  3 10:11:12 2005",          // asctime() is not RFC 5322
        "2005-01-03T10:11:12Z",
        "3 Jan 99999999999999999999 10:00 +0000",
    ])
    func rejects(_ text: String) {
        #expect(RFC5322Date.parse(text) == nil)
    }

    @Test func formatting() {
        #expect(RFC5322Date.format(0) == "Thu, 01 Jan 1970 00:00:00 +0000")
        #expect(RFC5322Date.format(-1) == "Wed, 31 Dec 1969 23:59:59 +0000")
        #expect(RFC5322Date.format(1_795_479_660) == "Tue, 24 Nov 2026 00:21:00 +0000")
        #expect(RFC5322Date.format(1_795_479_660, offsetMinutes: 330) == "Tue, 24 Nov 2026 05:51:00 +0530")
        #expect(RFC5322Date.format(880_127_706, offsetMinutes: -360) == "Fri, 21 Nov 1997 09:55:06 -0600")
        #expect(RFC5322Date.format(-27_723_426, offsetMinutes: -210) == "Thu, 13 Feb 1969 23:32:54 -0330")
    }

    @Test func roundTrip() {
        let instants: [Int64] = [0, -1, 86_399, 86_400, 951_825_600, 1_000_000_000, 1_795_479_660,
                                 4_102_444_800, -27_723_426, -2_000_000_000]
        for t in instants {
            for offset in [0, 60, -60, 330, -210, 5_999, -5_999] {
                let text = RFC5322Date.format(t, offsetMinutes: offset)
                #expect(RFC5322Date.parse(text) == t, "\(text)")
            }
        }
        // The ends of the accepted range, in UTC.
        for t: Int64 in [-2_208_988_800, 253_402_300_799] {
            #expect(RFC5322Date.parse(RFC5322Date.format(t)) == t)
        }
    }

    /// The civil-date arithmetic agrees with a day-by-day walk over 1900–2100.
    @Test func civilArithmetic() {
        var days = RFC5322Date.days(fromCivil: 1900, 1, 1)
        var mismatches: [String] = []
        for year: Int64 in 1900...2100 {
            for month: Int64 in 1...12 {
                for day in 1...RFC5322Date.daysIn(month: month, year: year) {
                    let civil = RFC5322Date.civil(fromDays: days)
                    if civil != (year, month, day) || RFC5322Date.days(fromCivil: year, month, day) != days {
                        mismatches.append("\(year)-\(month)-\(day)")
                    }
                    days += 1
                }
            }
        }
        #expect(mismatches.isEmpty)
        #expect(days == RFC5322Date.days(fromCivil: 2101, 1, 1))
        #expect(RFC5322Date.days(fromCivil: 1970, 1, 1) == 0)
    }

    /// Deterministic fuzzing: random and mutated inputs never trap, and
    /// whatever parses lies in the representable range.
    @Test func fuzz() {
        var seed: UInt64 = 0x2545_F491_4F6C_DD1D
        func next(_ n: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(n))
        }
        let alphabet = Array("0123456789 :+-(),\\\tJanFebMonGMTESTpdtZ\r\n".utf8)
        let seeds = ["Fri, 21 Nov 1997 09:55:06 -0600", "21 Nov 97 09:55:06 GMT", "Thu, 13 Feb 1969 23:32 -0330 (x)"]
        let lowest: Int64 = -2_208_988_800 - 100 * 3_600, highest: Int64 = 253_402_300_799 + 100 * 3_600
        var parsed = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<next(40)).map { _ in alphabet[next(alphabet.count)] }
            } else {
                bytes = Array(seeds[next(seeds.count)].utf8)
                for _ in 0..<1 + next(3) {
                    let at = next(bytes.count + 1)
                    switch next(3) {
                    case 0: if at < bytes.count { bytes.remove(at: at) }
                    case 1: bytes.insert(alphabet[next(alphabet.count)], at: at)
                    default: if at < bytes.count { bytes[at] = alphabet[next(alphabet.count)] }
                    }
                }
            }
            if let t = RFC5322Date.parse(bytes) {
                parsed += 1
                #expect(t >= lowest && t <= highest)
            }
        }
        #expect(parsed > 0)
    }
}
