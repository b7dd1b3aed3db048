/// An SPF record (RFC 7208 §4.5, §12): the terms after "v=spf1", parsed
/// whole before anything is evaluated, since §4.6 makes a syntax error
/// anywhere a "permerror".
///
///     v=spf1 ip4:192.0.2.0/24 a:mail.%{d} include:_spf.example.net ~all
public struct SPFRecord: Hashable, Sendable, CustomStringConvertible {
    public var directives: [SPFDirective]
    /// `redirect=` (RFC 7208 §6.1), at most one.
    public var redirect: SPFMacroString?
    /// `exp=` (RFC 7208 §6.2), at most one.
    public var explanation: SPFMacroString?
    /// Other modifiers, kept and ignored (RFC 7208 §6).
    public var unknownModifiers: [Modifier] = []

    /// A modifier other than redirect and exp: name "=" macro-string.
    public struct Modifier: Hashable, Sendable {
        public var name: String
        public var value: SPFMacroString
    }

    public init(directives: [SPFDirective], redirect: SPFMacroString? = nil, explanation: SPFMacroString? = nil) {
        self.directives = directives
        self.redirect = redirect
        self.explanation = explanation
    }

    /// RFC 7208 §4.5: a record is one that begins with "v=spf1" (any case)
    /// followed by a space or its end.
    public static func isSPF(_ text: [UInt8]) -> Bool {
        let version = Array("v=spf1".utf8)
        guard text.count >= version.count else { return false }
        for (a, b) in zip(text, version) where a | 0x20 != b | 0x20 { return false }
        return text.count == version.count || text[version.count] == 0x20
    }

    /// Parses a whole record (the TXT strings already joined, RFC 7208 §3.3).
    public static func parse(_ text: [UInt8]) throws(SPFSyntaxError) -> SPFRecord {
        guard isSPF(text) else { throw .init("not an SPF record") }
        // RFC 7208 §3.1: records are 7-bit ASCII; §4.6.1: terms are separated by spaces only.
        guard let ascii = String(validating: text, as: UTF8.self), text.allSatisfy({ $0 < 0x80 }) else {
            throw .init("non-ASCII octets in the record")
        }
        var record = SPFRecord(directives: [])
        for term in ascii.dropFirst(6).split(separator: " ") {
            if let directive = try SPFDirective.parse(term) {
                record.directives.append(directive)
                continue
            }
            // modifier = name "=" macro-string (RFC 7208 §6, §12)
            guard let eq = term.firstIndex(of: "=") else { throw .init("unknown term \"\(term)\"") }
            let name = term[..<eq], value = term[term.index(after: eq)...]
            guard SPFRecord.isModifierName(name) else { throw .init("bad modifier name \"\(name)\"") }
            switch name.lowercased() {
            case "redirect":
                // RFC 7208 §6: redirect and exp MUST NOT appear more than once.
                guard record.redirect == nil else { throw .init("two redirect= modifiers") }
                record.redirect = try SPFRecord.domainSpec(value)
            case "exp":
                guard record.explanation == nil else { throw .init("two exp= modifiers") }
                record.explanation = try SPFRecord.domainSpec(value)
            default:
                record.unknownModifiers.append(Modifier(name: String(name), value: try SPFMacroString.parse(value)))
            }
        }
        return record
    }

    /// name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
    static func isModifierName(_ s: Substring) -> Bool {
        guard let f = s.first, f.isASCII, f.isLetter else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// domain-spec = macro-string domain-end (RFC 7208 §7.1).
    static func domainSpec(_ s: Substring) throws(SPFSyntaxError) -> SPFMacroString {
        let spec = try SPFMacroString.parse(s)
        guard spec.hasDomainEnd else { throw .init("bad domain-spec \"\(s)\"") }
        return spec
    }

    public var description: String {
        var terms = ["v=spf1"] + directives.map(\.description)
        if let redirect { terms.append("redirect=\(redirect)") }
        if let explanation { terms.append("exp=\(explanation)") }
        terms += unknownModifiers.map { "\($0.name)=\($0.value)" }
        return terms.joined(separator: " ")
    }
}

/// What a directive yields when its mechanism matches (RFC 7208 §4.6.2).
public enum SPFQualifier: Character, Hashable, Sendable {
    case pass = "+", fail = "-", softfail = "~", neutral = "?"

    public var result: SPFResult {
        switch self {
        case .pass: return .pass
        case .fail: return .fail
        case .softfail: return .softfail
        case .neutral: return .neutral
        }
    }
}

/// directive = [ qualifier ] mechanism (RFC 7208 §4.6.1).
public struct SPFDirective: Hashable, Sendable, CustomStringConvertible {
    public var qualifier: SPFQualifier
    public var mechanism: SPFMechanism

    public init(_ qualifier: SPFQualifier = .pass, _ mechanism: SPFMechanism) {
        self.qualifier = qualifier
        self.mechanism = mechanism
    }

    /// A directive, nil when the term is a modifier, or a syntax error.
    static func parse(_ term: Substring) throws(SPFSyntaxError) -> SPFDirective? {
        var rest = term
        var qualifier = SPFQualifier.pass
        if let f = rest.first, let q = SPFQualifier(rawValue: f) {
            qualifier = q
            rest = rest.dropFirst()
        }
        // The mechanism name runs to ":", "/" or "=" (RFC 7208 §12).
        let nameEnd = rest.firstIndex { $0 == ":" || $0 == "/" || $0 == "=" } ?? rest.endIndex
        if nameEnd < rest.endIndex, rest[nameEnd] == "=" {
            guard qualifier == .pass, rest.startIndex == term.startIndex else {
                throw .init("a qualifier before modifier \"\(term)\"")
            }
            return nil
        }
        let name = rest[..<nameEnd].lowercased()
        let argument = rest[nameEnd...]
        guard let mechanism = try SPFMechanism.parse(name: name, argument: argument) else {
            throw .init("unknown mechanism \"\(term)\"")
        }
        return SPFDirective(qualifier, mechanism)
    }

    public var description: String {
        (qualifier == .pass ? "" : String(qualifier.rawValue)) + mechanism.description
    }
}

/// An RFC 7208 syntax error (the record, a macro or a domain-spec): the
/// check's result is "permerror".
public struct SPFSyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
