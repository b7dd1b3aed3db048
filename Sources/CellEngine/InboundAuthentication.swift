import MailAuth
import SMTP

/// What happens to an inbound message once SPF, DKIM and DMARC are known.
enum InboundDisposition: Hashable, Sendable {
    /// Into the recipients' INBOX.
    case inbox
    /// Into the recipients' Junk mailbox (DMARC p=quarantine, RFC 7489 §6.6.4).
    case junk
    /// Refused at the end of DATA; nothing is stored (p=reject).
    case reject(SMTPReply)
}

/// Everything the checks found for one message, as values; the decision
/// and the Authentication-Results field follow from it without I/O.
struct InboundVerdict: Sendable {
    /// The SPF results: MAIL FROM (or HELO for the null sender), then the
    /// separate HELO check when one ran (RFC 7208 §2.3), as A-R results.
    var spf: [AuthenticationResult] = []
    /// One per DKIM-Signature field, top to bottom; empty when unsigned.
    var dkim: [DKIMResult] = []
    /// One per distinct RFC5322.From domain (RFC 7489 §6.6.1).
    var dmarc: [DMARCVerdict] = []
    /// Set when DMARC could not be applied to the From field.
    var fromProblem: FromProblem?
    /// Whether DKIM ran (false: checks off for this message, no dkim result).
    var dkimChecked = true

    enum FromProblem: Hashable, Sendable {
        /// No From field, or none with a domain: out of DMARC's scope (§6.6.1).
        case noDomain
        /// More From domains than `InboundPolicy.maxFromDomains`: not
        /// evaluated, and not trusted either.
        case tooManyDomains(Int)
    }

    /// The results in the order of the field: spf, dkim (one per
    /// signature, or none), dmarc (RFC 8601 §2.7).
    var results: [AuthenticationResult] {
        var out = spf
        if dkimChecked {
            out += dkim.isEmpty ? [AuthenticationResult(method: "dkim", result: "none")] : dkim.map(InboundPolicy.result)
        }
        switch fromProblem {
        case .noDomain:
            out.append(AuthenticationResult(method: "dmarc", result: "none", comment: "no RFC5322.From domain"))
        case .tooManyDomains(let n):
            out.append(AuthenticationResult(method: "dmarc", result: "permerror", comment: "\(n) RFC5322.From domains"))
        case nil:
            for v in dmarc {
                var r = AuthenticationResult.dmarc(v)
                // A fail turned temperror (InboundPolicy.settle) says why.
                if v.result == .temperror, v.record != nil, let problem = v.problem {
                    r.comment = (r.comment.map { $0 + "; " } ?? "") + problem
                }
                out.append(r)
            }
        }
        return out
    }
}

/// The pure decisions of inbound authentication: from verdicts to a
/// disposition and a reply, and the Authentication-Results field (RFC 8601).
enum InboundPolicy {
    /// Distinct From domains evaluated per message; a message with more is
    /// put in Junk (each one would cost DNS lookups).
    static let maxFromDomains = 8

    /// The disposition the owner's setting leaves of the one a domain asks for.
    static func applied(_ policy: DMARCPolicy, _ enforcement: DMARCEnforcement) -> DMARCPolicy {
        switch enforcement {
        case .enforce: return policy
        case .quarantineOnly: return min(policy, .quarantine)
        case .monitor: return .none
        }
    }

    /// Sets each verdict's disposition to the one applied (what `dis=`
    /// reports) and decides for the message: the strictest of them (RFC 7489
    /// §6.6.1, several From domains); a From field DMARC cannot read goes to
    /// Junk when there are too many domains.
    static func decide(_ verdict: inout InboundVerdict, enforcement: DMARCEnforcement) -> InboundDisposition {
        if case .tooManyDomains = verdict.fromProblem {
            return applied(.quarantine, enforcement) == .none ? .inbox : .junk
        }
        var strictest = DMARCPolicy.none
        var rejecting: String?
        for i in verdict.dmarc.indices {
            guard verdict.dmarc[i].result == .fail else { continue }
            let d = applied(verdict.dmarc[i].disposition, enforcement)
            verdict.dmarc[i].disposition = d
            if d == .reject, rejecting == nil { rejecting = verdict.dmarc[i].fromDomain }
            strictest = max(strictest, d)
        }
        switch strictest {
        case .none: return .inbox
        case .quarantine: return .junk
        case .reject: return .reject(rejection(rejecting ?? ""))
        }
    }

    /// 550 5.7.1 (RFC 7489 §6.6.4 suggests a 5xy reply; RFC 3463 5.7.1:
    /// delivery not authorized, message refused).
    static func rejection(_ domain: String) -> SMTPReply {
        let safe = domain.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-_".unicodeScalars.contains($0)) }
        return SMTPReply(550, "5.7.1", safe && !domain.isEmpty ? "Rejected by the DMARC policy of \(domain)" : "Rejected by DMARC policy")
    }

    /// A DNS failure never rejects: a DMARC fail where SPF or DKIM for an
    /// aligned domain could not be looked up is a temperror (RFC 7489 §6.6.2
    /// says mail is not to be judged on a temporary failure). Only aligned
    /// identities count, or a sender could dodge p=reject with an envelope
    /// domain whose DNS never answers. `aligned(domain, mode)` tells whether
    /// a domain is aligned with the From domain of `verdict`.
    static func settle(_ verdict: DMARCVerdict, spf: SPFVerdict?, dkim: [DKIMResult],
                       aligned: (String, DMARCAlignment) -> Bool) -> DMARCVerdict {
        guard verdict.result == .fail, let record = verdict.record else { return verdict }
        var why: [String] = []
        if let spf, spf.result == .temperror, aligned(spf.domain, record.spfAlignment) { why.append("spf temperror") }
        if dkim.contains(where: { $0.status == .temperror && $0.domain.map { aligned($0, record.dkimAlignment) } == true }) {
            why.append("dkim temperror")
        }
        guard !why.isEmpty else { return verdict }
        var v = verdict
        v.result = .temperror
        v.disposition = .none
        v.problem = why.joined(separator: ", ")
        return v
    }

    /// A DKIM result as an RFC 8601 §2.7.1 resinfo, with RFC 6008 header.b.
    static func result(_ r: DKIMResult) -> AuthenticationResult {
        var comment: [String] = []
        if r.status == .pass, let bits = r.keyBits, let a = r.algorithm { comment.append("\(bits)-bit \(a) key") }
        if r.status != .pass, !r.reason.isEmpty { comment.append(r.reason) }
        if r.testing { comment.append("testing") }
        var properties: [AuthenticationProperty] = []
        for (name, value) in [("d", r.domain), ("i", r.identity), ("s", r.selector), ("b", r.headerB)] {
            if let value, !value.isEmpty { properties.append(AuthenticationProperty("header", name, value)) }
        }
        return AuthenticationResult(method: "dkim", result: r.status.rawValue,
                                    comment: comment.isEmpty ? nil : comment.joined(separator: "; "), properties: properties)
    }

    /// The field to put on top of the message, CRLF included.
    static func field(authservID: String, _ results: [AuthenticationResult]) -> [UInt8] {
        let value = AuthenticationResults(authservID: authservID, results: results).encoded(folded: true)
        return Array("Authentication-Results: \(value)\r\n".utf8)
    }

    /// RFC 8601 §5: the Authentication-Results fields that claim our
    /// authserv-id did not come from us; their ranges, to be left out.
    static func forged(_ bytes: [UInt8], _ section: HeaderSection, authservID: String) -> [Range<Int>] {
        section.named("authentication-results").compactMap { f in
            AuthenticationResults.claims(String(decoding: bytes[f.value], as: UTF8.self), authservID: authservID) ? f.range : nil
        }
    }

    /// The ranges of 0..<count that remain when `removed` (sorted, disjoint) are cut out.
    static func kept(_ count: Int, removing removed: [Range<Int>]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var at = 0
        for r in removed.sorted(by: { $0.lowerBound < $1.lowerBound }) where r.lowerBound >= at {
            if r.lowerBound > at { out.append(at..<r.lowerBound) }
            at = r.upperBound
        }
        if at < count { out.append(at..<count) }
        return out
    }
}
