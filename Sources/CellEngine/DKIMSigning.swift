import MailAuth
import MailCore
import MIME

/// The mail-authentication part of a loaded configuration: the inbound
/// checks' settings, the Public Suffix List, and the DKIM signing keys.
/// Built at start and on reload (a bad key file fails the load); part of
/// the engine's `Snapshot`.
struct MailAuthSetup: Sendable {
    /// Inbound checks on `mx` listeners.
    var checks: Bool
    var authservID: String
    var enforcement: DMARCEnforcement
    /// Loaded when checks are on; kept across reloads that keep the path.
    var suffixes: PublicSuffixList?
    var suffixPath: String
    /// Signers by lowercased domain, in configuration order.
    var signers: [String: [DKIMSigner]]

    init(checks: Bool = false, authservID: String = "localhost", enforcement: DMARCEnforcement = .enforce,
         suffixes: PublicSuffixList? = nil, suffixPath: String = PublicSuffixList.debianPath,
         signers: [String: [DKIMSigner]] = [:]) {
        self.checks = checks
        self.authservID = authservID
        self.enforcement = enforcement
        self.suffixes = suffixes
        self.suffixPath = suffixPath
        self.signers = signers
    }

    /// Reads what the configuration names: the suffix list (when checks are
    /// on) and every key file, relative to `dataDirectory` unless absolute.
    init(_ config: CellConfiguration, dataDirectory: String, previous: MailAuthSetup?) throws {
        let a = config.authentication
        self.init(checks: config.checksEnabled, authservID: a?.authservID ?? config.hostname,
                  enforcement: a?.dmarcEnforcement.flatMap(DMARCEnforcement.init(rawValue:)) ?? .enforce,
                  suffixPath: a?.publicSuffixList.map { TLSSetup.resolve($0, dataDirectory) } ?? PublicSuffixList.debianPath)
        if checks {
            if let p = previous, p.suffixPath == suffixPath, let list = p.suffixes {
                suffixes = list
            } else {
                do {
                    suffixes = try PublicSuffixList(contentsOfFile: suffixPath)
                } catch {
                    throw CellConfiguration.Invalid("authentication.publicSuffixList: cannot read \(suffixPath) (Debian package publicsuffix; or set authentication.checks to false): \(error.localizedDescription)")
                }
            }
        }
        for (i, k) in (config.dkim ?? []).enumerated() {
            let path = TLSSetup.resolve(k.keyFile, dataDirectory)
            let name = "dkim[\(i)] (\(k.domain), selector \(k.selector))"
            let text: [UInt8]
            do {
                text = try DurableFile.readAll(path)
            } catch {
                throw CellConfiguration.Invalid("\(name): cannot read key file \(path): \(error)")
            }
            let signer: DKIMSigner
            do {
                let key = try DKIMPrivateKey(text: String(decoding: text, as: UTF8.self))
                if let alg = k.algorithm, alg != key.algorithm.rawValue {
                    throw CellConfiguration.Invalid("\(name): \(path) holds an \(key.algorithm.rawValue) key, not \(alg)")
                }
                signer = try DKIMSigner(key: key, domain: k.domain, selector: k.selector)
            } catch let e as DKIMError {
                throw CellConfiguration.Invalid("\(name): \(path): \(e.message)")
            }
            signers[k.domain.lowercased(), default: []].append(signer)
        }
    }

    /// The signers for a message whose From field names these domains.
    func signers(for fromDomains: [String]) -> [DKIMSigner] {
        var out: [DKIMSigner] = []
        for d in fromDomains { out += signers[d] ?? [] }
        return out
    }
}

/// DKIM signing of submitted mail (RFC 6376 §5; RFC 8463 for Ed25519).
enum DKIMSigning {
    /// The DKIM-Signature fields for `message` (one per signer, in order),
    /// CRLF-terminated, to go on top of it. A signer that fails (no From
    /// field) is left out and named in `failures`.
    static func fields(_ message: [UInt8], signers: [DKIMSigner], now: Int64) -> (fields: [UInt8], failures: [String]) {
        var out: [UInt8] = []
        var failures: [String] = []
        for s in signers {
            do {
                out += Array(try s.sign(message, now: now).utf8)
            } catch {
                failures.append("\(s.domain)/\(s.selector): \(error.message)")
            }
        }
        return (out, failures)
    }
}

/// The RFC5322.From domains of a message (RFC 7489 §6.6.1): every mailbox
/// of every From field, lowercased, without a final dot, each once, in order.
enum FromDomains {
    static func of(_ bytes: [UInt8], _ section: HeaderSection) -> [String] {
        var out: [String] = []
        for f in section.named("from") {
            for a in MIME.AddressParser.parseMailboxes(Array(bytes[f.value])) {
                guard let host = a.host, !host.isEmpty, host.first != UInt8(ascii: "[") else { continue }
                var d = String(decoding: host, as: UTF8.self).lowercased()
                if d.hasSuffix(".") { d.removeLast() }
                if !d.isEmpty, !out.contains(d) { out.append(d) }
            }
        }
        return out
    }
}
