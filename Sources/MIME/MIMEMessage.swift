/// Entry point: parses stored message bytes (RFC 5322 with MIME, RFC 2045–
/// 2049) into a `MIMEPart` tree. Untrusted input: any bytes at all. Never
/// throws and never traps; limits in `MIMELimits`.
///
///     let root = MIMEMessage.parse(bytes)
///     root.envelope?.subject          // ENVELOPE
///     root.part(at: [1, 2])?.bodyRange // BODY[1.2]
public enum MIMEMessage {
    public static func parse(_ bytes: [UInt8], limits: MIMELimits = .default) -> MIMEPart {
        var parser = EntityParser(bytes: bytes, limits: limits)
        return parser.entity(in: 0..<bytes.count, defaultType: .default, depth: 0, isMessageRoot: true)
    }
}

struct EntityParser {
    let bytes: [UInt8]
    let limits: MIMELimits
    var partCount = 0

    init(bytes: [UInt8], limits: MIMELimits) {
        self.bytes = bytes
        self.limits = limits
    }

    mutating func entity(in range: Range<Int>, defaultType: ContentType, depth: Int, isMessageRoot: Bool) -> MIMEPart {
        partCount += 1
        let header = RFC5322Header.parse(bytes, in: range)
        let body = header.bodyStart..<range.upperBound
        let declared = header["Content-Type"].flatMap(ContentType.parse)
        // RFC 2045 §5.2: an absent or invalid Content-Type means text/plain.
        let contentTypeFieldPresent = header.field("Content-Type") != nil
        var type = declared ?? (contentTypeFieldPresent ? .default : defaultType)
        let encoding = header["Content-Transfer-Encoding"].map {
            String(decoding: $0.asciiLowercased(), as: UTF8.self)
        }
        var part = MIMEPart(
            header: header, bodyRange: body, contentType: type, declaredContentType: declared,
            demotion: nil,
            id: header["Content-ID"], description: header["Content-Description"], encoding: encoding,
            disposition: header["Content-Disposition"].flatMap(ContentDisposition.parse),
            languages: header["Content-Language"].map(EntityParser.languageTags) ?? [],
            location: header["Content-Location"], md5: header["Content-MD5"],
            bodyLines: EntityParser.countLines(bytes, body),
            children: [], preambleRange: nil, epilogueRange: nil,
            isMessageRoot: isMessageRoot,
            encapsulated: [])

        func demote(_ reason: MIMEPart.Demotion, to replacement: ContentType = .default) {
            part.demotion = reason
            type = replacement
            part.contentType = replacement
        }

        if type.isMultipart {
            guard let boundary = type.boundary else { demote(.missingBoundary); return part }
            guard depth < limits.maximumDepth else { demote(.depthLimit); return part }
            guard partCount < limits.maximumParts else { demote(.partLimit); return part }
            let split = MultipartSplit.split(bytes, body: body, boundary: boundary,
                                             maximumParts: limits.maximumParts)
            part.preambleRange = split.preamble
            part.epilogueRange = split.epilogue
            // RFC 2046 §5.1.5: in a digest, parts default to message/rfc822.
            let childDefault: ContentType = type.subtype == "digest" ? .digestDefault : .default
            for range in split.parts {
                guard partCount < limits.maximumParts else { break }
                part.children.append(entity(in: range, defaultType: childDefault, depth: depth + 1, isMessageRoot: false))
            }
        } else if type.isMessage {
            // RFC 2046 §5.2.1: only 7bit, 8bit or binary are allowed here.
            if let encoding, !["7bit", "8bit", "binary"].contains(encoding) {
                demote(.encodedMessage, to: ContentType(type: "application", subtype: "octet-stream"))
                return part
            }
            guard depth < limits.maximumDepth else { demote(.depthLimit); return part }
            guard partCount < limits.maximumParts else { demote(.partLimit); return part }
            part.encapsulated = [entity(in: body, defaultType: .default, depth: depth + 1, isMessageRoot: true)]
        }
        return part
    }

    /// RFC 3501 §7.4.2 body-fld-lines: the number of lines. Counts LF (so
    /// CR LF and bare LF both count once) and a final unterminated line.
    static func countLines(_ bytes: [UInt8], _ range: Range<Int>) -> Int {
        var n = bytes.countLF(in: range)
        if let last = range.last, bytes[last] != ASCII.lf { n += 1 }
        return n
    }

    /// RFC 3282 §2: Content-Language is a comma-separated list of tags.
    static func languageTags(_ value: [UInt8]) -> [String] {
        ParameterList.stripComments(value).split(separator: 0x2C).map {
            String(decoding: Array($0).trimmingWhitespace(), as: UTF8.self)
        }.filter { !$0.isEmpty }
    }
}
