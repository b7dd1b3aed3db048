/// A DMARC policy record (RFC 7489 §6.3, ABNF §6.4), published as TXT at
/// `_dmarc.<domain>`:
///
///     v=DMARC1; p=quarantine; sp=reject; adkim=s; pct=50; rua=mailto:agg@example.org!10m
public struct DMARCRecord: Hashable, Sendable, CustomStringConvertible {
    /// p= (required): what to do with mail that fails.
    public var policy: DMARCPolicy
    /// sp=: the policy for subdomains of the Organizational Domain (default: p).
    public var subdomainPolicy: DMARCPolicy?
    /// np= (RFC 9091): the policy for non-existent subdomains; parsed, not applied.
    public var nonexistentPolicy: DMARCPolicy?
    /// adkim= (default relaxed).
    public var dkimAlignment: DMARCAlignment = .relaxed
    /// aspf= (default relaxed).
    public var spfAlignment: DMARCAlignment = .relaxed
    /// pct= 0–100 (default 100): the share of failing mail the policy applies to.
    public var percent: Int = 100
    /// rua=: where aggregate reports go.
    public var aggregateReports: [DMARCReportURI] = []
    /// ruf=: where failure reports go.
    public var failureReports: [DMARCReportURI] = []
    /// fo= (default "0"): when to send failure reports.
    public var failureOptions: [String] = ["0"]
    /// rf= (default "afrf").
    public var reportFormats: [String] = ["afrf"]
    /// ri= seconds (default 86400).
    public var reportInterval: UInt32 = 86400
    /// Set when p= (or sp=) was missing or invalid and the record is read as
    /// p=none because rua= holds a valid URI (RFC 7489 §6.6.3).
    public var policyDefaulted = false

    public init(policy: DMARCPolicy) { self.policy = policy }

    /// RFC 7489 §6.6.3: a record is a TXT record whose first tag is v=DMARC1.
    public static func isDMARC(_ text: [UInt8]) -> Bool {
        guard let s = String(validating: text, as: UTF8.self) else { return false }
        let first = s.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let parts = first.split(separator: "=", maxSplits: 1)
        return parts.count == 2 && trim(parts[0]) == "v" && trim(parts[1]) == "DMARC1"
    }

    /// Parses a record. Unknown tags are ignored (§6.3); an optional tag
    /// with a bad value keeps its default. A missing or invalid p= (or an
    /// invalid sp=) is read as p=none when rua= has a valid URI, else the
    /// record is invalid (§6.6.3).
    public static func parse(_ text: String) throws(DMARCSyntaxError) -> DMARCRecord {
        var tags: [(String, Substring)] = []
        var sawVersion = false
        for (n, spec) in text.split(separator: ";", omittingEmptySubsequences: false).enumerated() {
            let t = trim(spec)
            if t.isEmpty && n > 0 { continue }     // a final ";" and empty specs
            let kv = t.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2 else {
                if n == 0 { throw .init("does not begin with v=DMARC1") }
                continue    // a spec that is no tag at all: ignored like an unknown tag
            }
            let name = String(trim(kv[0])).lowercased(), value = trim(kv[1])
            if n == 0 {
                // §6.3: v= MUST be the first tag, with the value "DMARC1".
                guard name == "v", value == "DMARC1" else { throw .init("does not begin with v=DMARC1") }
                sawVersion = true
                continue
            }
            guard !tags.contains(where: { $0.0 == name }) else { throw .init("duplicate tag \(name)") }
            tags.append((name, value))
        }
        guard sawVersion else { throw .init("does not begin with v=DMARC1") }
        func value(_ name: String) -> Substring? { tags.first { $0.0 == name }?.1 }

        var record = DMARCRecord(policy: .none)
        record.aggregateReports = value("rua").map(DMARCReportURI.list) ?? []
        record.failureReports = value("ruf").map(DMARCReportURI.list) ?? []
        let p = value("p").flatMap { DMARCPolicy(rawValue: $0.lowercased()) }
        let spText = value("sp")
        let sp = spText.flatMap { DMARCPolicy(rawValue: $0.lowercased()) }
        if let p, spText == nil || sp != nil {
            record.policy = p
            record.subdomainPolicy = sp
        } else if !record.aggregateReports.isEmpty {
            record.policyDefaulted = true
        } else {
            throw .init(p == nil ? "missing or invalid p=" : "invalid sp=")
        }
        record.nonexistentPolicy = value("np").flatMap { DMARCPolicy(rawValue: $0.lowercased()) }
        if let a = value("adkim").flatMap({ DMARCAlignment(rawValue: $0.lowercased()) }) { record.dkimAlignment = a }
        if let a = value("aspf").flatMap({ DMARCAlignment(rawValue: $0.lowercased()) }) { record.spfAlignment = a }
        if let s = value("pct"), s.allSatisfy(\.isNumber), let n = Int(s.prefix(4)), (0...100).contains(n) { record.percent = n }
        if let s = value("fo") {
            let options = s.split(separator: ":").map { String(trim($0)) }
            if !options.isEmpty, options.allSatisfy({ ["0", "1", "d", "s"].contains($0) }) { record.failureOptions = options }
        }
        if let s = value("rf") {
            let formats = s.split(separator: ":").map { String(trim($0)).lowercased() }
            if !formats.isEmpty { record.reportFormats = formats }
        }
        if let s = value("ri"), let n = UInt32(s) { record.reportInterval = n }
        return record
    }

    static func trim(_ s: Substring) -> Substring {
        var t = s
        while let f = t.first, f == " " || f == "\t" || f == "\r" || f == "\n" { t = t.dropFirst() }
        while let l = t.last, l == " " || l == "\t" || l == "\r" || l == "\n" { t = t.dropLast() }
        return t
    }

    public var description: String {
        // A record read as p=none for want of a valid p= is written without one (§6.6.3).
        var tags = ["v=DMARC1"] + (policyDefaulted ? [] : ["p=\(policy.rawValue)"])
        if let subdomainPolicy { tags.append("sp=\(subdomainPolicy.rawValue)") }
        if let nonexistentPolicy { tags.append("np=\(nonexistentPolicy.rawValue)") }
        if dkimAlignment != .relaxed { tags.append("adkim=\(dkimAlignment.rawValue)") }
        if spfAlignment != .relaxed { tags.append("aspf=\(spfAlignment.rawValue)") }
        if percent != 100 { tags.append("pct=\(percent)") }
        if !aggregateReports.isEmpty { tags.append("rua=" + aggregateReports.map(\.description).joined(separator: ",")) }
        if !failureReports.isEmpty { tags.append("ruf=" + failureReports.map(\.description).joined(separator: ",")) }
        if failureOptions != ["0"] { tags.append("fo=" + failureOptions.joined(separator: ":")) }
        if reportFormats != ["afrf"] { tags.append("rf=" + reportFormats.joined(separator: ":")) }
        if reportInterval != 86400 { tags.append("ri=\(reportInterval)") }
        return tags.joined(separator: "; ")
    }
}

/// p=, sp=, np= values (RFC 7489 §6.3); also the disposition applied (§7.2.1.1).
public enum DMARCPolicy: String, Hashable, Sendable, Comparable {
    case none, quarantine, reject

    /// What applies to mail that pct= leaves out (RFC 7489 §6.3 pct).
    public var weaker: DMARCPolicy {
        switch self {
        case .none, .quarantine: return .none
        case .reject: return .quarantine
        }
    }

    public static func < (a: DMARCPolicy, b: DMARCPolicy) -> Bool {
        let order: [DMARCPolicy] = [.none, .quarantine, .reject]
        return order.firstIndex(of: a)! < order.firstIndex(of: b)!
    }
}

/// adkim= and aspf= (RFC 7489 §3.1): "r" (Organizational Domains equal) or "s" (names equal).
public enum DMARCAlignment: String, Hashable, Sendable {
    case relaxed = "r", strict = "s"
}

/// A reporting URI with its optional size limit (RFC 7489 §6.2:
/// URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]).
public struct DMARCReportURI: Hashable, Sendable, CustomStringConvertible {
    public var uri: String
    /// The size limit in octets, if any.
    public var maximumSize: UInt64?

    public init(uri: String, maximumSize: UInt64? = nil) {
        self.uri = uri
        self.maximumSize = maximumSize
    }

    /// The valid URIs of a comma-separated list; invalid ones are left out.
    static func list(_ text: Substring) -> [DMARCReportURI] {
        text.split(separator: ",").compactMap { parse(DMARCRecord.trim($0)) }
    }

    static func parse(_ text: Substring) -> DMARCReportURI? {
        var uri = text, size: UInt64?
        if let bang = text.lastIndex(of: "!") {
            var limit = text[text.index(after: bang)...]
            var unit: UInt64 = 1
            if let u = limit.last?.lowercased(), let m = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40][u] {
                unit = UInt64(m)
                limit = limit.dropLast()
            }
            guard let n = UInt64(limit) else { return nil }
            size = n.multipliedReportingOverflow(by: unit).partialValue
            uri = text[..<bang]
        }
        // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":" and more.
        guard let colon = uri.firstIndex(of: ":"), colon > uri.startIndex, uri.index(after: colon) < uri.endIndex,
              let first = uri.first, first.isASCII, first.isLetter,
              uri[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }),
              !uri.contains(where: { $0 == " " || !$0.isASCII }) else { return nil }
        return DMARCReportURI(uri: String(uri), maximumSize: size)
    }

    public var description: String {
        guard let maximumSize else { return uri }
        for (unit, shift) in [("t", 40), ("g", 30), ("m", 20), ("k", 10)] where maximumSize % (1 << shift) == 0 && maximumSize > 0 {
            return "\(uri)!\(maximumSize >> shift)\(unit)"
        }
        return "\(uri)!\(maximumSize)"
    }
}

/// A DMARC record that cannot be used (RFC 7489 §6.6.3); the check reports permerror.
public struct DMARCSyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
