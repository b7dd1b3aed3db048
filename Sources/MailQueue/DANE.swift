import Crypto
import Foundation
import NIOCore
import NIOSSL
import X509

/// One TLSA record (RFC 6698 §2.1) as DANE for SMTP reads it (RFC 7672).
public struct TLSARecord: Sendable, Hashable {
    public var usage: UInt8
    public var selector: UInt8
    public var matchingType: UInt8
    public var data: [UInt8]

    public init(usage: UInt8, selector: UInt8, matchingType: UInt8, data: [UInt8]) {
        self.usage = usage
        self.selector = selector
        self.matchingType = matchingType
        self.data = data
    }

    /// RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) are not used for SMTP;
    /// only DANE-TA(2) and DANE-EE(3) with known selectors and matching types.
    public var isUsable: Bool { (usage == 2 || usage == 3) && selector <= 1 && matchingType <= 2 }

    /// Whether a certificate (DER) matches this record.
    public func matches(certificate der: [UInt8], spki: [UInt8]) -> Bool {
        let content = selector == 0 ? der : spki
        switch matchingType {
        case 0: return content == data
        case 1: return Array(SHA256.hash(data: content)) == data
        case 2: return Array(SHA512.hash(data: content)) == data
        default: return false
        }
    }
}

/// Checks a server's chain against its TLSA records (RFC 7672 §3):
/// DANE-EE matches the server's own certificate, with no name or date
/// check (§3.1.1); DANE-TA matches a certificate of the chain, and the chain
/// up to it must be signed link by link, in date, and name the MX host
/// (§3.1.2, §3.2.2).
public enum DANEVerifier {
    public enum Outcome: Equatable, Sendable {
        case verified
        case failed(String)
    }

    public static func verify(chain: [NIOSSLCertificate], records: [TLSARecord], hostname: String, now: Date = Date()) -> Outcome {
        let usable = records.filter(\.isUsable)
        guard !usable.isEmpty else { return .failed("no usable TLSA records") }
        guard let leafDER = try? chain.first?.toDERBytes() else { return .failed("no certificate from the server") }
        var ders: [[UInt8]] = [leafDER]
        var spkis: [[UInt8]] = [(try? chain[0].extractPublicKey().toSPKIBytes()) ?? []]
        for c in chain.dropFirst() {
            ders.append((try? c.toDERBytes()) ?? [])
            spkis.append((try? c.extractPublicKey().toSPKIBytes()) ?? [])
        }
        for r in usable where r.usage == 3 {
            if r.matches(certificate: ders[0], spki: spkis[0]) { return .verified }
        }
        let parsed = ders.map { try? Certificate(derEncoded: $0) }
        for r in usable where r.usage == 2 {
            for i in ders.indices where r.matches(certificate: ders[i], spki: spkis[i]) {
                guard let leaf = parsed[0] else { continue }
                var ok = names(of: leaf).contains { nameMatches($0, hostname) }
                // Each certificate below the anchor is signed by the next and in date.
                var k = 0
                while ok && k < i {
                    guard let child = parsed[k], let parent = parsed[k + 1] else { ok = false; break }
                    ok = parent.publicKey.isValidSignature(child.signature, for: child)
                        && child.notValidBefore <= now && now <= child.notValidAfter
                    k += 1
                }
                if ok, i == 0, let leaf = parsed[0] { ok = leaf.notValidBefore <= now && now <= leaf.notValidAfter }
                if ok { return .verified }
            }
        }
        return .failed("the certificate matches no TLSA record of \(hostname)")
    }

    static func names(of cert: Certificate) -> [String] {
        var out: [String] = []
        if let san = try? cert.extensions.subjectAlternativeNames {
            for n in san { if case .dnsName(let d) = n { out.append(d.lowercased()) } }
        }
        return out
    }

    /// A name or a wildcard for one leftmost label (RFC 6125 §6.4.3, as RFC 7672 §3.2.3 allows).
    static func nameMatches(_ pattern: String, _ host: String) -> Bool {
        let h = host.lowercased().hasSuffix(".") ? String(host.lowercased().dropLast()) : host.lowercased()
        if pattern.hasPrefix("*.") {
            let suffix = pattern.dropFirst(1)
            guard h.hasSuffix(suffix) else { return false }
            let label = h.dropLast(suffix.count)
            return !label.isEmpty && !label.contains(".")
        }
        return pattern == h
    }
}
