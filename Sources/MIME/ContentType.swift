/// A Content-Type field value (RFC 2045 §5.1): `type "/" subtype *(";" parameter)`.
/// Type and subtype are lowercased (they are case-insensitive, §5.1).
public struct ContentType: Hashable, Sendable {
    public var type: String
    public var subtype: String
    public var parameters: [MIMEParameter]

    public init(type: String, subtype: String, parameters: [MIMEParameter] = []) {
        self.type = type.lowercased()
        self.subtype = subtype.lowercased()
        self.parameters = parameters
    }

    /// RFC 2045 §5.2: absent (or unusable) Content-Type means
    /// `text/plain; charset=us-ascii`.
    public static let `default` = ContentType(
        type: "text", subtype: "plain", parameters: [MIMEParameter(name: "charset", value: "us-ascii".asciiBytes)])

    /// RFC 2046 §5.1.5: inside multipart/digest the default is message/rfc822.
    public static let digestDefault = ContentType(type: "message", subtype: "rfc822")

    /// Parses a field value; nil when it has no `type/subtype` made of RFC
    /// 2045 tokens (the caller then applies the §5.2 default).
    public static func parse(_ value: [UInt8]) -> ContentType? {
        let (main, params) = ParameterList.parse(value)
        guard let slash = main.firstIndex(of: ASCII.slash) else { return nil }
        let type = Array(main[..<slash]).trimmingWhitespace()
        let subtype = Array(main[(slash + 1)...]).trimmingWhitespace()
        guard isToken(type), isToken(subtype) else { return nil }
        return ContentType(type: String(decoding: type, as: UTF8.self),
                           subtype: String(decoding: subtype, as: UTF8.self),
                           parameters: params)
    }

    /// RFC 2045 §5.1 token: 1*<any CHAR except SPACE, CTLs, or tspecials>.
    static func isToken(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return false }
        let tspecials: [UInt8] = Array("()<>@,;:\\\"/[]?=".utf8)
        return bytes.allSatisfy { $0 > 0x20 && $0 < 0x7F && !tspecials.contains($0) }
    }

    public var isMultipart: Bool { type == "multipart" }
    /// RFC 3501 §7.4.2 and RFC 9051 §7.5.2 give message/rfc822 (and, in
    /// 9051, message/global) an envelope, a body structure and a line count.
    public var isMessage: Bool { type == "message" && (subtype == "rfc822" || subtype == "global") }
    public var isText: Bool { type == "text" }

    /// The raw value of the first parameter named `name` (case-insensitive),
    /// without RFC 2231 processing.
    public func rawParameter(_ name: String) -> [UInt8]? {
        parameters.first { $0.name.asciiBytes.equalsIgnoringASCIICase(name.asciiBytes) }?.value
    }

    /// Parameters after RFC 2231 merging and decoding.
    public var decodedParameters: [DecodedParameter] { RFC2231.decode(parameters) }

    /// One decoded parameter by (case-insensitive) name.
    public func parameter(_ name: String) -> String? {
        let n = name.lowercased()
        return RFC2231.decode(RFC2231.pieces(of: n, in: parameters)).first { $0.name == n }?.value
    }

    /// One parameter's octets by (case-insensitive) name after RFC 2231
    /// merging and percent-decoding, but not converted from its charset
    /// and without RFC 2047 decoding: for values compared byte by byte.
    public func parameterBytes(_ name: String) -> [UInt8]? {
        let n = name.lowercased()
        return RFC2231.merge(RFC2231.pieces(of: n, in: parameters)).first { $0.name == n }?.bytes
    }

    /// The parameters IMAP BODYSTRUCTURE reports (RFC 9051 §7.5.2
    /// body-fld-param): RFC 2231 continuations joined
    /// (`RFC2231.joinContinuations`), and for text/plain without a charset
    /// the default `charset=us-ascii` (RFC 2045 §5.2, RFC 2046 §4.1.2,
    /// RFC 6657 §4) written out, as it is for an absent Content-Type
    /// (`ContentType.default`). Other text subtypes get no default: RFC
    /// 6657 §3 lets them carry their charset in the content (HTML's meta
    /// element), which a stated us-ascii would contradict.
    public var structureParameters: [MIMEParameter] {
        var list = RFC2231.joinContinuations(parameters)
        if type == "text", subtype == "plain", parameter("charset") == nil {
            list.append(MIMEParameter(name: "charset", value: "us-ascii".asciiBytes))
        }
        return list
    }

    /// RFC 2046 §5.1.1: the boundary, 1 to 70 characters. Longer ones are
    /// accepted (up to `maximumBoundaryLength`) as widespread parsers do;
    /// matching a line costs at most the boundary length. RFC 2231 forms
    /// (`boundary*=us-ascii''abc`, continuations) count: the boundary is
    /// the decoded octets.
    public var boundary: [UInt8]? {
        guard let b = parameterBytes("boundary"), !b.isEmpty, b.count <= ContentType.maximumBoundaryLength
        else { return nil }
        return b
    }

    public static let maximumBoundaryLength = 16_384
}

/// A Content-Disposition field value (RFC 2183 §2): `inline` / `attachment`
/// / other token, lowercased, with parameters such as `filename`.
public struct ContentDisposition: Hashable, Sendable {
    public var value: String
    public var parameters: [MIMEParameter]

    public init(value: String, parameters: [MIMEParameter] = []) {
        self.value = value.lowercased()
        self.parameters = parameters
    }

    /// Nil when the field has no disposition type token.
    public static func parse(_ bytes: [UInt8]) -> ContentDisposition? {
        let (main, params) = ParameterList.parse(bytes)
        guard !main.isEmpty else { return nil }
        return ContentDisposition(value: String(decoding: main, as: UTF8.self), parameters: params)
    }

    public var decodedParameters: [DecodedParameter] { RFC2231.decode(parameters) }

    public func parameter(_ name: String) -> String? {
        let n = name.lowercased()
        return RFC2231.decode(RFC2231.pieces(of: n, in: parameters)).first { $0.name == n }?.value
    }

    /// The parameters IMAP BODYSTRUCTURE reports: RFC 2231 continuations
    /// joined (`RFC2231.joinContinuations`).
    public var structureParameters: [MIMEParameter] { RFC2231.joinContinuations(parameters) }
}
