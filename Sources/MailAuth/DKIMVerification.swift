/// DKIM verification without I/O (RFC 6376 §6): the message and the clock
/// go in, then one key lookup answer per signature, and one `DKIMResult`
/// per DKIM-Signature field comes out. `DKIMVerifier` is the thin async
/// driver that asks DNS.
///
///     var v = DKIMVerification(message: DKIMMessage(bytes), now: 1_700_000_000)
///     for step in v.steps {
///         switch step {
///         case .done(let r): results.append(r)
///         case .needsKey(let name, let pending): results.append(v.finish(pending, key: await dns.txt(name)))
///         }
///     }
public struct DKIMVerification: Sendable {
    /// A signature whose tags checked out and that waits for its key.
    public struct Pending: Sendable {
        public var signature: DKIMSignature
        var field: DKIMMessage.Field
        var tags: DKIMTagList
        var result: DKIMResult
    }

    public enum Step: Sendable {
        /// Decided without DNS (syntax, expiry, policy, over the limit).
        case done(DKIMResult)
        /// Look up the TXT records of `name` and call `finish`.
        case needsKey(name: String, Pending)
    }

    public let message: DKIMMessage
    public let limits: DKIMLimits
    public let now: Int64
    /// One step per DKIM-Signature field, top to bottom.
    public private(set) var steps: [Step] = []
    struct BodyKey: Hashable { var c: DKIMSignature.Canonicalization; var limit: Int64? }
    var bodyHashes: [BodyKey: (hash: [UInt8], length: Int64)?] = [:]

    /// `now`: seconds since 1970-01-01T00:00:00Z, for x= (§3.5).
    public init(message: DKIMMessage, now: Int64, limits: DKIMLimits = .default) {
        self.message = message
        self.limits = limits
        self.now = now
        var seen = 0
        for field in message.fields where field.name == "dkim-signature" {
            seen += 1
            steps.append(seen > limits.maxSignatures ? .done(Self.overLimit(field, message, limits)) : check(field))
        }
    }

    static func overLimit(_ field: DKIMMessage.Field, _ message: DKIMMessage, _ limits: DKIMLimits) -> DKIMResult {
        var r = DKIMResult(status: .neutral, reason: "not evaluated: more than \(limits.maxSignatures) signatures")
        if let tags = try? DKIMTagList.parse(message.bytes, field.valueRange) { describe(&r, tags) }
        return r
    }

    /// What can be read of a signature even when it is broken.
    static func describe(_ r: inout DKIMResult, _ tags: DKIMTagList) {
        func printable(_ name: String) -> String? {
            guard let v = tags[name], v.count <= 255 else { return nil }
            let s = String(decoding: DKIMBytes.withoutFWS(v), as: UTF8.self)
            return s.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) ? s : nil
        }
        r.domain = printable("d")
        r.selector = printable("s")
        r.identity = printable("i") ?? r.domain.map { "@" + $0 }
        r.algorithm = printable("a")
        if let b = tags["b"] {
            let s = String(decoding: DKIMBytes.withoutFWS(b).prefix(DKIMResult.headerBLength), as: UTF8.self)
            r.headerB = s.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) ? s : nil
        }
    }

    /// Checks made before the key is needed (§6.1.1).
    func check(_ field: DKIMMessage.Field) -> Step {
        var r = DKIMResult(status: .permerror)
        let tags: DKIMTagList
        do {
            tags = try DKIMTagList.parse(message.bytes, field.valueRange)
        } catch {
            r.reason = "signature: \(error.message)"
            return .done(r)
        }
        Self.describe(&r, tags)
        let sig: DKIMSignature
        do {
            sig = try DKIMSignature(tags, maxSignedHeaders: limits.maxSignedHeaders)
        } catch {
            r.reason = "signature: \(error.message)"
            return .done(r)
        }
        r.identity = sig.identity
        // §6.1.1: the AUID's domain must be the SDID or a subdomain of it.
        guard Self.isSameOrSubdomain(sig.identityDomain, of: sig.domain) else {
            r.reason = "i= is not within d="
            return .done(r)
        }
        // §6.1.1 (and §5.4): a signature that does not sign From is ignored.
        guard sig.signedHeaders.contains("from") else {
            r.reason = "From field not signed"
            return .done(r)
        }
        // §6.1.1: verifiers MAY ignore expired signatures (PERMFAIL).
        if let x = sig.expiration, x < now {
            r.reason = "signature expired"
            return .done(r)
        }
        // RFC 8301 §3.1: rsa-sha1 signatures MUST NOT be considered valid or invalid.
        if sig.algorithm == .rsaSHA1 {
            r.status = .policy
            r.reason = "rsa-sha1 is not accepted (RFC 8301)"
            return .done(r)
        }
        if message.body.count > limits.maxBodyBytes, (sig.bodyLength ?? Int64.max) > Int64(limits.maxBodyBytes) {
            r.status = .neutral
            r.reason = "not evaluated: body larger than \(limits.maxBodyBytes) octets"
            return .done(r)
        }
        return .needsKey(name: sig.keyName, Pending(signature: sig, field: field, tags: tags, result: r))
    }

    static func isSameOrSubdomain(_ a: String, of d: String) -> Bool {
        let a = a.lowercased(), d = d.lowercased()
        return a == d || a.hasSuffix("." + d)
    }

    /// Finishes one signature with the answer to its key lookup (§6.1.2, §6.1.3).
    public mutating func finish(_ pending: Pending, key lookup: DNSLookup<[[UInt8]]>) -> DKIMResult {
        var r = pending.result
        let sig = pending.signature
        let records: [[UInt8]]
        switch lookup {
        case .temporary(let why):
            r.status = .temperror
            r.reason = "key lookup failed: \(why.prefix(200))"
            return r
        case .nxDomain, .noData:
            r.reason = "no key for signature"
            return r
        case .found(let txts):
            records = txts
        }
        // §3.6.2.2: with several records, use the first that parses.
        var keyRecord: DKIMKeyRecord?
        var firstError = DKIMError(.key, "no key record")
        for txt in records {
            guard txt.count <= limits.maxKeyRecordBytes else {
                firstError = DKIMError(.key, "key record larger than \(limits.maxKeyRecordBytes) octets")
                continue
            }
            do {
                keyRecord = try DKIMKeyRecord(txt)
                break
            } catch {
                if firstError.message == "no key record" { firstError = error }
            }
        }
        guard let record = keyRecord else {
            r.reason = "key: \(firstError.message)"
            return r
        }
        r.testing = record.testing
        if let reason = Self.refusal(record, for: sig) {
            r.reason = reason
            return r
        }
        let key: DKIMPublicKey
        do {
            key = try DKIMPublicKey(record: record)
        } catch {
            r.reason = error.message
            return r
        }
        r.keyBits = key.bits

        // §6.1.3 step 4 ff.: the body hash.
        let bodyKey = BodyKey(c: sig.bodyCanonicalization, limit: sig.bodyLength)
        if bodyHashes[bodyKey] == nil {
            bodyHashes[bodyKey] = .some(DKIMCanonicalization.bodyHash(message.body, sig.bodyCanonicalization, limit: sig.bodyLength))
        }
        guard let body = bodyHashes[bodyKey]! else {
            // §3.5 l=: a count larger than the body makes the signature unusable.
            r.reason = "l= is larger than the body"
            return r
        }
        guard body.hash == sig.bodyHash else {
            r.status = .fail
            r.reason = "body hash did not verify"
            return r
        }
        // §3.7: the signed header fields, then this field with b= emptied.
        let data = Self.headerData(message, sig, pending.field, pending.tags)
        guard key.isValid(sig.signature, for: data) else {
            r.status = .fail
            r.reason = "signature did not verify"
            return r
        }
        r.status = .pass
        r.reason = ""
        return r
    }

    /// Why a key record cannot check this signature (§3.6.1, §6.1.2), or nil.
    static func refusal(_ record: DKIMKeyRecord, for sig: DKIMSignature) -> String? {
        if record.isRevoked { return "key revoked" }
        if record.keyType != sig.algorithm.keyType {
            return "key type k=\(record.keyType.prefix(16)) does not match a=\(sig.algorithm.rawValue)"
        }
        if let h = record.hashAlgorithms, !h.contains(sig.algorithm.hashName) {
            return "key h= does not allow \(sig.algorithm.hashName)"
        }
        if !record.serviceTypes.contains("*") && !record.serviceTypes.contains("email") {
            return "key is not for email (s=)"
        }
        // t=s: i= must not be a subdomain of d= (§3.6.1).
        if record.strict && sig.identityDomain.lowercased() != sig.domain.lowercased() {
            return "key t=s forbids a subdomain in i="
        }
        return nil
    }

    /// The data the signature covers (§3.7): each field h= selects,
    /// canonicalized, then the DKIM-Signature field itself, canonicalized,
    /// with the b= value (and its surrounding whitespace) deleted and
    /// without its final CRLF.
    static func headerData(_ message: DKIMMessage, _ sig: DKIMSignature, _ field: DKIMMessage.Field,
                           _ tags: DKIMTagList) -> [UInt8] {
        var data: [UInt8] = []
        for f in message.select(sig.signedHeaders) {
            data += DKIMCanonicalization.header(message.bytes[f.range], sig.headerCanonicalization)
        }
        var own = Array(message.bytes[field.range.lowerBound..<field.valueRange.upperBound])
        if let b = tags.tag("b") {
            let base = field.range.lowerBound
            own.removeSubrange((b.valueRange.lowerBound - base)..<(b.valueRange.upperBound - base))
        }
        data += DKIMCanonicalization.header(own[...], sig.headerCanonicalization)
        return data
    }
}

/// Verifies every DKIM-Signature of a message, asking `dns` for keys.
public struct DKIMVerifier: Sendable {
    public var dns: any MailAuthDNS
    public var limits: DKIMLimits

    public init(dns: any MailAuthDNS, limits: DKIMLimits = .default) {
        self.dns = dns
        self.limits = limits
    }

    /// One result per DKIM-Signature field, top to bottom; empty when the
    /// message is unsigned. `now`: seconds since the Unix epoch.
    public func verify(_ message: [UInt8], now: Int64) async -> [DKIMResult] {
        var v = DKIMVerification(message: DKIMMessage(message), now: now, limits: limits)
        var results: [DKIMResult] = []
        for step in v.steps {
            switch step {
            case .done(let r): results.append(r)
            case .needsKey(let name, let pending): results.append(v.finish(pending, key: await dns.txt(name)))
            }
        }
        return results
    }
}
