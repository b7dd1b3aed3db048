/// IMAP dates (RFC 9051 §9): `date-time` for INTERNALDATE and APPEND,
/// `date` for SEARCH BEFORE/ON/SINCE. Pure arithmetic on the proleptic
/// Gregorian calendar, in Unix seconds; no locale, no Foundation.
public enum IMAPDate {
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`,
    /// written here without the quotes: ` 1-Jan-2026 00:00:00 +0000`.
    public static func formatDateTime(_ unix: Int64, zoneMinutes: Int = 0) -> String {
        let local = unix + Int64(zoneMinutes) * 60
        let (y, m, d) = civil(fromDays: floorDiv(local, 86400))
        let secs = local - floorDiv(local, 86400) * 86400
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let sign = zoneMinutes < 0 ? "-" : "+"
        let z = abs(zoneMinutes)
        return (d < 10 ? " " : "") + "\(d)-\(months[Int(m) - 1])-\(y) \(two(secs / 3600)):\(two(secs % 3600 / 60)):\(two(secs % 60)) \(sign)\(two(Int64(z / 60)))\(two(Int64(z % 60)))"
    }

    /// Parses a `date-time` (quotes already removed); nil when malformed.
    public static func parseDateTime(_ text: String) -> Int64? {
        let t = text.hasPrefix(" ") ? String(text.dropFirst()) : text
        let parts = t.split(separator: " ")
        guard parts.count == 3, let day = parseDate(String(parts[0])) else { return nil }
        let hms = parts[1].split(separator: ":")
        guard hms.count == 3, hms.allSatisfy({ $0.count == 2 }), let h = Int64(hms[0]), let mi = Int64(hms[1]), let s = Int64(hms[2]),
              h < 24, mi < 60, s < 61 else { return nil }
        let zone = parts[2]
        guard zone.count == 5, let sign = zone.first, sign == "+" || sign == "-", let hh = Int64(zone.dropFirst().prefix(2)),
              let mm = Int64(zone.suffix(2)), mm < 60 else { return nil }
        let offset = (hh * 60 + mm) * 60 * (sign == "-" ? -1 : 1)
        return day + h * 3600 + mi * 60 + s - offset
    }

    /// `date = date-text / DQUOTE date-text DQUOTE`, `date-text = date-day "-" date-month "-" date-year`;
    /// returns the start of that day, UTC.
    public static func parseDate(_ text: String) -> Int64? {
        var t = Substring(text)
        if t.hasPrefix("\"") && t.hasSuffix("\"") && t.count >= 2 { t = t.dropFirst().dropLast() }
        let p = t.split(separator: "-", omittingEmptySubsequences: false)
        guard p.count == 3, (1...2).contains(p[0].count), p[2].count == 4,
              let d = Int64(p[0]), let y = Int64(p[2]),
              let m = months.firstIndex(where: { $0.lowercased() == p[1].lowercased() }) else { return nil }
        let month = Int64(m + 1)
        guard d >= 1, d <= daysIn(month: month, year: y) else { return nil }
        return days(fromCivil: y, month, d) * 86400
    }

    static func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }
    static func daysIn(month: Int64, year: Int64) -> Int64 {
        [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][Int(month) - 1]
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// Days since 1970-01-01 for a civil date (the well-known era algorithm).
    static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719468
        let era = floorDiv(z, 146097)
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
