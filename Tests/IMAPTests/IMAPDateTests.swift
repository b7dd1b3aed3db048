import IMAP
import Testing

@Suite struct IMAPDateTests {
    @Test func formatting() {
        #expect(IMAPDate.formatDateTime(0) == " 1-Jan-1970 00:00:00 +0000")
        #expect(IMAPDate.formatDateTime(1_795_479_660) == "24-Nov-2026 00:21:00 +0000")
        #expect(IMAPDate.formatDateTime(951_782_400) == "29-Feb-2000 00:00:00 +0000")
        #expect(IMAPDate.formatDateTime(0, zoneMinutes: -420) == "31-Dec-1969 17:00:00 -0700")
    }

    /// RFC 9051 §6.3.12's APPEND example date, and SEARCH dates.
    @Test func parsing() {
        #expect(IMAPDate.parseDateTime("17-Jul-1996 02:44:25 -0700") == 837_596_665)
        #expect(IMAPDate.parseDateTime(" 1-Jan-1970 00:00:00 +0000") == 0)
        #expect(IMAPDate.parseDate("1-Feb-1994") == 760_060_800)
        #expect(IMAPDate.parseDate("\"29-Feb-2024\"") == 1_709_164_800)
        for bad in ["29-Feb-2023", "1-Foo-1994", "32-Jan-1994", "1-Jan-94", "", "1-Jan-1994-"] {
            #expect(IMAPDate.parseDate(bad) == nil)
        }
        #expect(IMAPDate.parseDateTime("17-Jul-1996 25:44:25 -0700") == nil)
        #expect(IMAPDate.parseDateTime("17-Jul-1996 02:44:25 0700") == nil)
    }

    @Test func roundTrip() {
        for t: Int64 in [0, 86399, 86400, 1_000_000_000, 4_102_444_800, -86401] {
            #expect(IMAPDate.parseDateTime(IMAPDate.formatDateTime(t)) == t)
        }
    }
}
