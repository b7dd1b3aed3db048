/// RFC 5322 §3.3 `date-time`, with the §4.3 obsolete forms that stored mail
/// still carries, to and from Unix seconds (UTC). Pure arithmetic on the
/// proleptic Gregorian calendar; no locale, no Foundation.
///
/// Parsing accepts:
/// - an optional day-of-week (its comma may be missing; a weekday that does
///   not match the date is ignored, the date wins);
/// - 1- or 2-digit days, case-insensitive month names (full names too);
/// - 4-digit years, and §4.3 2- and 3-digit years (00–49 → 20xx,
///   50–99 and 3 digits → + 1900);
/// - optional seconds (60 is allowed for a leap second);
/// - numeric zones `+hhmm` / `-hhmm`; the §4.3 zones UT, GMT, EST/EDT,
///   CST/CDT, MST/MDT, PST/PDT; military letters and unknown alphabetic
///   zones as `-0000` (§4.3); a missing zone as `-0000` too; a zone name
///   written after a numeric zone without parentheses ("-0800 PST");
/// - CFWS anywhere between tokens (§4.3 obs-* productions): folding, extra
///   whitespace, nested comments such as "(PDT)".
///
/// Anything else — a bad month, an impossible day, a year before 1900 or
/// after 9999, trailing text — gives nil.
public enum RFC5322Date {
    /// A day-of-week or month word longer than this is rejected before lookup.
    static let maximumWordLength = 9
    /// Digit runs longer than this cannot be a valid field (and cannot overflow).
    static let maximumDigits = 9

    /// Parses an unfolded or folded `date-time` field value.
    public static func parse(_ s: String) -> Int64? { parseZoned(Array(s.utf8))?.utc }

    /// Parses the raw bytes of a Date field value (folding allowed).
    public static func parse(_ bytes: [UInt8]) -> Int64? { parseZoned(bytes)?.utc }

    /// Parses and also returns the zone as written, in minutes east of UTC
    /// (0 for `-0000` and the zones §4.3 maps to it), so that
    /// `utc + offsetMinutes * 60` is the sender's wall-clock time — what
    /// IMAP SENTBEFORE / SENTON / SENTSINCE compare (RFC 9051 §6.4.4).
    public static func parseZoned(_ s: String) -> (utc: Int64, offsetMinutes: Int)? { parseZoned(Array(s.utf8)) }

    public static func parseZoned(_ bytes: [UInt8]) -> (utc: Int64, offsetMinutes: Int)? {
        guard let tokens = tokenize(bytes) else { return nil }
        var i = 0
        func peek() -> Token? { i < tokens.count ? tokens[i] : nil }

        // §3.3 [ day-of-week "," ]; §4.3 obs-day-of-week allows CFWS around it.
        if case .word(let w)? = peek() {
            guard dayNames.contains(w) || fullDayNames.contains(w) else { return nil }
            i += 1
            if case .punct(0x2C)? = peek() { i += 1 }
        }
        // §3.3 day = 1*2DIGIT
        guard case .number(let day, let dayDigits)? = peek(), dayDigits <= 2 else { return nil }
        i += 1
        // §3.3 month
        guard case .word(let monthWord)? = peek(), let month = monthNumber(monthWord) else { return nil }
        i += 1
        // §3.3 year = 4*DIGIT; §4.3 obs-year = 2*DIGIT
        guard case .number(let rawYear, let yearDigits)? = peek(), yearDigits >= 2 else { return nil }
        i += 1
        let year: Int64
        switch yearDigits {
        case 2: year = rawYear < 50 ? rawYear + 2000 : rawYear + 1900
        case 3: year = rawYear + 1900
        default: year = rawYear
        }
        guard (1900...9999).contains(year), day >= 1, day <= daysIn(month: month, year: year) else { return nil }

        // §3.3 time-of-day = hour ":" minute [ ":" second ]
        guard case .number(let hour, let hd)? = peek(), hd <= 2 else { return nil }
        i += 1
        guard case .punct(0x3A)? = peek() else { return nil }
        i += 1
        guard case .number(let minute, let md)? = peek(), md <= 2 else { return nil }
        i += 1
        var second: Int64 = 0
        if case .punct(0x3A)? = peek() {
            i += 1
            guard case .number(let s, let sd)? = peek(), sd <= 2 else { return nil }
            second = s
            i += 1
        }
        guard hour <= 23, minute <= 59, second <= 60 else { return nil }

        // §3.3 zone = ( "+" / "-" ) 4DIGIT; §4.3 obs-zone.
        var offsetMinutes: Int64 = 0
        switch peek() {
        case .punct(let sign)? where sign == 0x2B || sign == 0x2D:
            i += 1
            guard case .number(let hhmm, digits: 4)? = peek(), hhmm % 100 <= 59 else { return nil }
            i += 1
            offsetMinutes = (hhmm / 100) * 60 + hhmm % 100
            if sign == 0x2D { offsetMinutes = -offsetMinutes }
            // Seen in the wild: the zone's name after the number without
            // the parentheses of a comment ("-0800 PST"). The number wins.
            if case .word? = peek() { i += 1 }
        case .word(let w)?:
            i += 1
            offsetMinutes = obsoleteZoneMinutes(w)
        case nil:
            break
        default:
            return nil
        }
        // §3.3 date-time ends with [CFWS]: nothing else may follow.
        guard i == tokens.count else { return nil }

        let days = days(fromCivil: year, month, day)
        return (days * 86_400 + hour * 3_600 + minute * 60 + second - offsetMinutes * 60, Int(offsetMinutes))
    }

    /// Formats `t` as `day-of-week, DD Mon YYYY hh:mm:ss +hhmm` (RFC 5322
    /// §3.3) in the zone `offsetMinutes` east of UTC, e.g.
    /// "Tue, 24 Nov 2026 10:00:00 +0000". The offset is clamped to ±99:59.
    public static func format(_ t: Int64, offsetMinutes: Int = 0) -> String {
        let offset = Int64(max(-5_999, min(5_999, offsetMinutes)))
        let local = t + offset * 60
        let days = floorDiv(local, 86_400)
        let seconds = local - days * 86_400
        let (y, m, d) = civil(fromDays: days)
        let weekday = Int(floorMod(days + 4, 7))   // 1970-01-01 was a Thursday
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let z = abs(offset)
        let year = (0..<1000).contains(y) ? String("000\(y)".suffix(4)) : "\(y)"
        return "\(weekdayTitles[weekday]), \(two(d)) \(monthTitles[Int(m) - 1]) \(year) "
            + "\(two(seconds / 3_600)):\(two(seconds % 3_600 / 60)):\(two(seconds % 60)) "
            + "\(offset < 0 ? "-" : "+")\(two(z / 60))\(two(z % 60))"
    }

    // MARK: - Tokens

    enum Token: Equatable {
        case number(Int64, digits: Int)
        case word(String)          // ASCII letters, lowercased
        case punct(UInt8)
    }

    /// Splits on CFWS (RFC 5322 §3.2.2): whitespace, CR, LF and comments
    /// (nested, with quoted-pairs) separate tokens and are dropped.
    static func tokenize(_ bytes: [UInt8]) -> [Token]? {
        var tokens: [Token] = []
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if ASCII.isWhitespace(b) { i += 1; continue }
            if b == 0x28 {   // "(" comment; an unclosed one runs to the end
                var depth = 0
                while i < bytes.count {
                    let c = bytes[i]
                    if c == ASCII.backslash { i += 2; continue }
                    if c == 0x28 { depth += 1 }
                    if c == 0x29 { depth -= 1; if depth == 0 { i += 1; break } }
                    i += 1
                }
                continue
            }
            if isDigit(b) {
                let start = i
                var value: Int64 = 0
                while i < bytes.count, isDigit(bytes[i]) {
                    guard i - start < maximumDigits else { return nil }
                    value = value * 10 + Int64(bytes[i] - 0x30)
                    i += 1
                }
                tokens.append(.number(value, digits: i - start))
                continue
            }
            if isLetter(b) {
                let start = i
                while i < bytes.count, isLetter(bytes[i]) { i += 1 }
                guard i - start <= maximumWordLength else { return nil }
                tokens.append(.word(String(decoding: bytes[start..<i].map(ASCII.lower), as: UTF8.self)))
                continue
            }
            tokens.append(.punct(b))
            i += 1
        }
        return tokens
    }

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    @inline(__always) static func isLetter(_ b: UInt8) -> Bool { (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }

    // MARK: - Names and zones

    static let dayNames: Set<String> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    static let fullDayNames: Set<String> = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    static let weekdayTitles = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let monthTitles = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    static let fullMonthNames = ["january", "february", "march", "april", "may", "june", "july",
                                 "august", "september", "october", "november", "december"]

    static func monthNumber(_ word: String) -> Int64? {
        if let i = monthTitles.firstIndex(where: { $0.lowercased() == word }) { return Int64(i + 1) }
        if let i = fullMonthNames.firstIndex(of: word) { return Int64(i + 1) }
        return nil
    }

    /// RFC 5322 §4.3 obs-zone. The US zones have their offsets; "UT" and
    /// "GMT" are +0000; military letters (§4.3: RFC 822 defined their signs
    /// backwards) and any other alphabetic zone count as -0000, i.e. UTC.
    static func obsoleteZoneMinutes(_ word: String) -> Int64 {
        switch word {
        case "edt": return -4 * 60
        case "est", "cdt": return -5 * 60
        case "cst", "mdt": return -6 * 60
        case "mst", "pdt": return -7 * 60
        case "pst": return -8 * 60
        default: return 0
        }
    }

    // MARK: - Calendar

    static func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    static func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }

    /// Days since 1970-01-01 of a proleptic Gregorian date, by 400-year eras
    /// (146 097 days each) with years starting in March so that the leap
    /// day falls at the end.
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yearOfEra = y - era * 400                                       // 0...399
        let shiftedMonth = month > 2 ? month - 3 : month + 9                // March = 0
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1              // 0...365
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468                           // 0000-03-01 → 1970-01-01
    }

    /// The inverse of `days(fromCivil:)`.
    /// Year, month and day of a day count from 1970-01-01 (proleptic Gregorian).
    public static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let dayOfEra = z - era * 146_097                                    // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
