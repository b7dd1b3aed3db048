/// The mechanisms of RFC 7208 §5, with their domain-specs and CIDR lengths.
public enum SPFMechanism: Hashable, Sendable, CustomStringConvertible {
    /// §5.1: always matches.
    case all
    /// §5.2: matches when the target's record passes.
    case include(SPFMacroString)
    /// §5.3: <ip> is one of the target's addresses (within the prefix).
    case a(SPFMacroString?, ip4Prefix: Int = 32, ip6Prefix: Int = 128)
    /// §5.4: <ip> is an address of one of the target's MX hosts.
    case mx(SPFMacroString?, ip4Prefix: Int = 32, ip6Prefix: Int = 128)
    /// §5.5 (do not use): <ip>'s validated name is the target or below it.
    case ptr(SPFMacroString?)
    /// §5.6.
    case ip4(IPAddress, prefix: Int = 32)
    /// §5.6.
    case ip6(IPAddress, prefix: Int = 128)
    /// §5.7: the target has an A record.
    case exists(SPFMacroString)

    /// The mechanism's name, as Authentication-Results comments and logs show it.
    public var name: String {
        switch self {
        case .all: return "all"
        case .include: return "include"
        case .a: return "a"
        case .mx: return "mx"
        case .ptr: return "ptr"
        case .ip4: return "ip4"
        case .ip6: return "ip6"
        case .exists: return "exists"
        }
    }

    /// Whether evaluating it asks DNS, and so counts towards the limit of 10
    /// (RFC 7208 §4.6.4).
    public var queriesDNS: Bool {
        switch self {
        case .all, .ip4, .ip6: return false
        default: return true
        }
    }

    /// Parses the part after the qualifier; nil for an unknown name.
    static func parse(name: String, argument: Substring) throws(SPFSyntaxError) -> SPFMechanism? {
        func target(_ required: Bool) throws(SPFSyntaxError) -> SPFMacroString? {
            if argument.isEmpty && !required { return nil }
            guard argument.first == ":" else { throw .init("\(name) needs \":domain\"") }
            return try SPFRecord.domainSpec(argument.dropFirst())
        }
        switch name {
        case "all":
            guard argument.isEmpty else { throw .init("all takes no argument") }
            return .all
        case "include": return .include(try target(true)!)
        case "exists": return .exists(try target(true)!)
        case "ptr": return .ptr(try target(false))
        case "a", "mx":
            let (rest, v4, v6) = try dualCIDR(argument)
            var spec: SPFMacroString?
            if !rest.isEmpty {
                guard rest.first == ":" else { throw .init("bad \(name) mechanism") }
                spec = try SPFRecord.domainSpec(rest.dropFirst())
            }
            return name == "a" ? .a(spec, ip4Prefix: v4, ip6Prefix: v6) : .mx(spec, ip4Prefix: v4, ip6Prefix: v6)
        case "ip4", "ip6":
            guard argument.first == ":" else { throw .init("\(name) needs \":network\"") }
            var network = argument.dropFirst()
            let maximum = name == "ip4" ? 32 : 128
            var prefix = maximum
            if let slash = network.lastIndex(of: "/") {
                prefix = try cidr(network[network.index(after: slash)...], maximum: maximum)
                network = network[..<slash]
            }
            if name == "ip4" {
                guard let b = IPAddress.parseIPv4(network) else { throw .init("bad ip4 network \"\(network)\"") }
                return .ip4(IPAddress(octets: b)!, prefix: prefix)
            }
            guard let b = IPAddress.parseIPv6(network) else { throw .init("bad ip6 network \"\(network)\"") }
            return .ip6(IPAddress(octets: b)!, prefix: prefix)
        default:
            return nil
        }
    }

    /// dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] at the
    /// end of an a or mx argument; returns what precedes it.
    static func dualCIDR(_ s: Substring) throws(SPFSyntaxError) -> (Substring, Int, Int) {
        var rest = s
        var v4 = 32, v6 = 128
        func digitsAfterLastSlash() -> String.Index? {
            guard let slash = rest.lastIndex(of: "/") else { return nil }
            let tail = rest[rest.index(after: slash)...]
            return !tail.isEmpty && tail.allSatisfy({ $0.isASCII && $0.isNumber }) ? slash : nil
        }
        if let slash = digitsAfterLastSlash(), slash > rest.startIndex, rest[rest.index(before: slash)] == "/" {
            v6 = try cidr(rest[rest.index(after: slash)...], maximum: 128)
            rest = rest[..<rest.index(before: slash)]
        }
        if let slash = digitsAfterLastSlash() {
            v4 = try cidr(rest[rest.index(after: slash)...], maximum: 32)
            rest = rest[..<slash]
        }
        return (rest, v4, v6)
    }

    /// A CIDR length: decimal without leading zeros, at most `maximum` (RFC 7208 §5.6).
    static func cidr(_ s: Substring, maximum: Int) throws(SPFSyntaxError) -> Int {
        guard !s.isEmpty, s.count <= 3, s.allSatisfy({ $0.isASCII && $0.isNumber }),
              s.count == 1 || s.first != "0", let n = Int(s), n <= maximum else {
            throw .init("bad CIDR length \"/\(s)\"")
        }
        return n
    }

    public var description: String {
        func cidrs(_ v4: Int, _ v6: Int) -> String { (v4 == 32 ? "" : "/\(v4)") + (v6 == 128 ? "" : "//\(v6)") }
        switch self {
        case .all: return "all"
        case .include(let d): return "include:\(d)"
        case .exists(let d): return "exists:\(d)"
        case .ptr(let d): return "ptr" + (d.map { ":\($0)" } ?? "")
        case .a(let d, let v4, let v6): return "a" + (d.map { ":\($0)" } ?? "") + cidrs(v4, v6)
        case .mx(let d, let v4, let v6): return "mx" + (d.map { ":\($0)" } ?? "") + cidrs(v4, v6)
        case .ip4(let n, let p): return "ip4:\(n)" + (p == 32 ? "" : "/\(p)")
        case .ip6(let n, let p): return "ip6:\(n)" + (p == 128 ? "" : "/\(p)")
        }
    }
}
