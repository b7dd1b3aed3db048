import MIME

extension IMAPSession {
    // MARK: FETCH (RFC 9051 §6.4.5, §7.5.2)

    func fetch(_ w: inout IMAPWriter, set: IMAPSequenceSet, items requested: [IMAPFetchItem], byUID: Bool, changedSince: Int64?) throws {
        guard let s = selected else { return }
        var items = requested
        if byUID && !items.contains(.uid) { items.insert(.uid, at: 0) }
        if changedSince != nil && !items.contains(.modseq) { items.append(.modseq) }
        let uids = resolve(set, byUID: byUID)
        let current = try backend.messages(user: user!, mailbox: s.name)
        var info: [UInt32: IMAPMessageInfo] = [:]
        for m in current { info[m.uid] = m }
        let marksSeen = !s.readOnly && items.contains { item in
            switch item {
            case .bodySection(_, _, let peek): return !peek
            case .rfc822, .rfc822Text: return true
            default: return false
            }
        }
        if marksSeen {
            let unseen = uids.filter { !(info[$0]?.flags.contains("\\Seen") ?? true) }
            if !unseen.isEmpty {
                _ = try backend.setFlags(user: user!, mailbox: s.name, uids: unseen, mode: .add, flags: ["\\Seen"], unchangedSince: nil)
                for m in try backend.messages(user: user!, mailbox: s.name) where unseen.contains(m.uid) { info[m.uid] = m }
            }
        }
        for uid in uids {
            guard let m = info[uid], let seq = selected!.uids.firstIndex(of: uid) else { continue } // expunged meanwhile
            if let since = changedSince, m.modseq <= since { continue }
            var body: [UInt8]?
            func bytes() throws -> [UInt8] {
                if body == nil { body = try backend.messageBytes(user: user!, mailbox: s.name, uid: uid) }
                return body!
            }
            var parsed: MIMEPart?
            func mime() throws -> MIMEPart {
                if parsed == nil { parsed = MIMEMessage.parse(try bytes()) }
                return parsed!
            }
            var parts = IMAPWriter()
            var first = true
            func item(_ name: String) { if !first { parts.space() }; first = false; parts.raw(name) }
            var flagsSent = false
            for it in items {
                switch it {
                case .uid: item("UID \(uid)")
                case .flags: item("FLAGS "); parts.flags(m.flags); flagsSent = true
                case .internalDate: item("INTERNALDATE \"\(IMAPDate.formatDateTime(m.internalDate))\"")
                case .rfc822Size: item("RFC822.SIZE \(m.size)")
                case .modseq: item("MODSEQ (\(m.modseq))")
                case .rfc822: item("RFC822 "); parts.literal(try bytes())
                case .rfc822Header: item("RFC822.HEADER "); parts.literal(try sectionBytes(try bytes(), try mime(), IMAPSection(text: .header)))
                case .rfc822Text: item("RFC822.TEXT "); parts.literal(try sectionBytes(try bytes(), try mime(), IMAPSection(text: .text)))
                case .envelope:
                    let root = try mime()
                    item("ENVELOPE ")
                    IMAPStructure.envelope(root.envelope ?? Envelope(header: root.header), into: &parts)
                case .bodyStructure:
                    item("BODYSTRUCTURE ")
                    IMAPStructure.body(try mime(), extended: true, into: &parts)
                case .body:
                    item("BODY ")
                    IMAPStructure.body(try mime(), extended: false, into: &parts)
                case .binary(let path, let partial, _):
                    let decoded = try binary(try bytes(), try mime(), path)
                    var name = "BINARY[" + path.map(String.init).joined(separator: ".") + "]"
                    var data = decoded
                    if let p = partial {
                        name += "<\(p.lowerBound)>"
                        let lo = min(p.lowerBound, decoded.count), hi = min(p.upperBound + 1, decoded.count)
                        data = Array(decoded[lo..<hi])
                    }
                    item(name + " ")
                    parts.literal(data, binary: true)
                case .binarySize(let path):
                    item("BINARY.SIZE[" + path.map(String.init).joined(separator: ".") + "] \(try binary(try bytes(), try mime(), path).count)")
                case .bodySection(let section, let partial, _):
                    let full = try sectionBytes(try bytes(), try mime(), section)
                    var name = "BODY[" + sectionName(section) + "]"
                    var data = full
                    if let p = partial {
                        name += "<\(p.lowerBound)>"
                        let lo = min(p.lowerBound, full.count), hi = min(p.upperBound + 1, full.count)
                        data = Array(full[lo..<hi])
                    }
                    item(name + " ")
                    parts.literal(data)
                default: break
                }
            }
            if marksSeen && !flagsSent { item("FLAGS "); parts.flags(m.flags) }
            selected!.known[uid] = (m.flags, m.modseq)
            w.raw("* \(seq + 1) FETCH (")
            w.raw(parts.bytes)
            w.raw(")")
            w.crlf()
        }
    }

    func sectionName(_ s: IMAPSection) -> String {
        let prefix = s.part.map(String.init).joined(separator: ".")
        let text: String
        switch s.text {
        case .whole: text = ""
        case .header: text = "HEADER"
        case .text: text = "TEXT"
        case .mime: text = "MIME"
        case .headerFields(let f): text = "HEADER.FIELDS (\(f.joined(separator: " ")))"
        case .headerFieldsNot(let f): text = "HEADER.FIELDS.NOT (\(f.joined(separator: " ")))"
        }
        return [prefix, text].filter { !$0.isEmpty }.joined(separator: ".")
    }

    /// BODY[section] (RFC 9051 §6.4.5) through the MIME tree. A section
    /// that does not exist in this message is empty.
    func sectionBytes(_ message: [UInt8], _ root: MIMEPart, _ s: IMAPSection) throws -> [UInt8] {
        func slice(_ r: Range<Int>?) -> [UInt8] {
            guard let r else { return [] }
            return Array(message[r.clamped(to: 0..<message.count)])
        }
        switch s.text {
        case .whole: return s.part.isEmpty ? message : slice(root.bodyBytes(at: s.part))
        case .header: return slice(root.headerBytes(at: s.part))
        case .text: return slice(root.textBytes(at: s.part))
        case .mime: return slice(root.mimeHeaderBytes(at: s.part))
        case .headerFields(let names): return root.headerFieldsBytes(message, at: s.part, names: names, excluding: false) ?? []
        case .headerFieldsNot(let names): return root.headerFieldsBytes(message, at: s.part, names: names, excluding: true) ?? []
        }
    }

    /// BINARY[part] (RFC 3516): the part's content with its transfer
    /// encoding removed; an unknown encoding is NO [UNKNOWN-CTE].
    func binary(_ message: [UInt8], _ root: MIMEPart, _ path: [Int]) throws -> [UInt8] {
        if path.isEmpty { return message }
        guard let part = root.part(at: path) else { return [] }
        switch part.decodedBody(message) {
        case .success(let bytes): return bytes
        case .failure(let e) where e.code == .notALeaf:
            throw SessionError(kind: "NO", code: nil, text: "BINARY needs a leaf part")
        case .failure:
            throw SessionError(kind: "NO", code: "UNKNOWN-CTE", text: "Unknown Content-Transfer-Encoding")
        }
    }

    // MARK: STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3)

    func store(_ w: inout IMAPWriter, set: IMAPSequenceSet, mode: IMAPStoreMode, silent: Bool, flags: [String], byUID: Bool,
               unchangedSince: Int64?) throws -> [UInt32] {
        let s = selected!
        let uids = resolve(set, byUID: byUID)
        let failed = try backend.setFlags(user: user!, mailbox: s.name, uids: uids, mode: mode, flags: flags, unchangedSince: unchangedSince)
        let current = try backend.messages(user: user!, mailbox: s.name)
        for m in current where uids.contains(m.uid) && !failed.contains(m.uid) {
            guard let seq = selected!.uids.firstIndex(of: m.uid) else { continue }
            let changedByUs = selected!.known[m.uid]?.modseq != m.modseq
            selected!.known[m.uid] = (m.flags, m.modseq)
            // RFC 7162 §3.1.3: with CONDSTORE, a silent STORE still reports MODSEQ.
            if silent && !(condstore && changedByUs) { continue }
            w.raw("* \(seq + 1) FETCH (")
            if byUID { w.raw("UID \(m.uid) ") }
            w.raw("FLAGS ")
            w.flags(m.flags)
            if condstore { w.raw(" MODSEQ (\(m.modseq))") }
            w.raw(")")
            w.crlf()
        }
        return byUID ? failed : failed.compactMap { u in selected!.uids.firstIndex(of: u).map { UInt32($0 + 1) } }
    }

    // MARK: SEARCH (RFC 9051 §6.4.4)

    func search(_ key: IMAPSearchKey) throws -> [(UInt32, UInt32)] {
        let s = selected!
        let current = try backend.messages(user: user!, mailbox: s.name)
        var info: [UInt32: IMAPMessageInfo] = [:]
        for m in current { info[m.uid] = m }
        var out: [(UInt32, UInt32)] = []
        let count = UInt32(s.uids.count), star = s.uids.last ?? 0
        for (i, uid) in s.uids.enumerated() {
            guard let m = info[uid] else { continue }
            var cache: [UInt8]?
            let ctx = SearchContext(seq: UInt32(i + 1), count: count, star: star, info: m) {
                if cache == nil { cache = try self.backend.messageBytes(user: self.user!, mailbox: s.name, uid: uid) }
                return cache!
            }
            if try ctx.matches(key) { out.append((UInt32(i + 1), uid)) }
        }
        return out
    }
}

/// A message split at its header/body boundary (RFC 5322 §2.1).
struct MessageSplit {
    let header: [UInt8]
    let text: [UInt8]

    init(_ m: [UInt8]) {
        var end = m.count
        var i = 0
        while i < m.count {
            if m[i] == 10 {
                if i + 1 < m.count && m[i + 1] == 10 { end = i + 2; break }
                if i + 2 < m.count && m[i + 1] == 13 && m[i + 2] == 10 { end = i + 3; break }
            }
            i += 1
        }
        if m.starts(with: [13, 10]) { end = 2 }
        header = Array(m[0..<end])
        text = Array(m[end...])
    }

    /// Unfolded header values for a field name.
    func values(_ name: String) -> [String] {
        let lower = name.lowercased()
        var out: [String] = []
        var current: String?
        var lineStart = 0
        for i in header.indices where header[i] == 10 {
            var line = Array(header[lineStart..<i])
            lineStart = i + 1
            if line.last == 13 { line.removeLast() }
            if line.first == 32 || line.first == 9 {
                if current != nil { current! += String(decoding: line, as: UTF8.self) }
                continue
            }
            if let c = current { out.append(c); current = nil }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            if String(decoding: line[..<colon], as: UTF8.self).lowercased().trimmingSpaces() == lower {
                current = String(decoding: line[(colon + 1)...], as: UTF8.self)
            }
        }
        if let c = current { out.append(c) }
        return out
    }
}

struct SearchContext {
    let seq: UInt32, count: UInt32, star: UInt32
    let info: IMAPMessageInfo
    let bytes: () throws -> [UInt8]

    init(seq: UInt32, count: UInt32, star: UInt32, info: IMAPMessageInfo, bytes: @escaping () throws -> [UInt8]) {
        self.seq = seq; self.count = count; self.star = star; self.info = info; self.bytes = bytes
    }

    func contains(_ haystack: String, _ needle: String) -> Bool {
        needle.isEmpty || haystack.lowercased().contains(needle.lowercased())
    }

    func matches(_ key: IMAPSearchKey) throws -> Bool {
        switch key {
        case .all: return true
        case .and(let keys): return try keys.allSatisfy { try matches($0) }
        case .or(let a, let b): return try matches(a) || matches(b)
        case .not(let k): return try !matches(k)
        case .sequence(let set): return set.contains(seq, star: count)
        case .uid(let set): return set.contains(info.uid, star: star)
        case .flag(let f, let on):
            if f == "\\Recent" { return !on }
            return info.flags.contains { $0.lowercased() == f.lowercased() } == on
        case .keyword(let k, let on): return info.flags.contains { $0.lowercased() == k.lowercased() } == on
        case .larger(let n): return info.size > Int64(n)
        case .smaller(let n): return info.size < Int64(n)
        case .modseq(let n): return info.modseq >= n
        case .before(let d), .on(let d), .since(let d):
            guard let day = IMAPDate.parseDate(d) else { throw IMAPSession.SessionError(text: "Bad date") }
            let t = info.internalDate
            if case .before = key { return t < day }
            if case .on = key { return t >= day && t < day + 86400 }
            return t >= day
        case .sentBefore, .sentOn, .sentSince:
            // The Date: header needs the RFC 5322 date parser of the MIME work; internal date stands in.
            let d: String
            switch key { case .sentBefore(let x), .sentOn(let x), .sentSince(let x): d = x; default: d = "" }
            guard let day = IMAPDate.parseDate(d) else { throw IMAPSession.SessionError(text: "Bad date") }
            let t = info.internalDate
            if case .sentBefore = key { return t < day }
            if case .sentOn = key { return t >= day && t < day + 86400 }
            return t >= day
        case .header(let name, let value):
            let values = MessageSplit(try bytes()).values(name)
            return value.isEmpty ? !values.isEmpty : values.contains { contains($0, value) }
        case .body(let text):
            return contains(String(decoding: MessageSplit(try bytes()).text, as: UTF8.self), text)
        case .text(let text):
            return contains(String(decoding: try bytes(), as: UTF8.self), text)
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
