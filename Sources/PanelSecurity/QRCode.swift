import CQRencode
import Foundation

/// A QR code symbol (ISO/IEC 18004) made by libqrencode, kept as its module
/// matrix, and drawn as SVG for pages that must work without JavaScript
/// (the TOTP set-up shows the otpauth link this way).
public struct QRCode: Hashable, Sendable {
    public enum Level: Sendable {
        /// Recovers about 7 % / 15 % / 25 % / 30 % of the symbol.
        case low, medium, quartile, high

        var c: QRecLevel {
            switch self {
            case .low: QR_ECLEVEL_L
            case .medium: QR_ECLEVEL_M
            case .quartile: QR_ECLEVEL_Q
            case .high: QR_ECLEVEL_H
            }
        }
    }

    public enum Failure: Error, Hashable {
        /// More bytes than the largest symbol (version 40) holds at this level.
        case tooLong(bytes: Int)
        case library(errno: Int32)
    }

    /// The symbol's version, 1...40.
    public let version: Int
    /// Modules per side (17 + 4 × version).
    public let size: Int
    /// Row-major; true is a dark module.
    public let modules: [Bool]

    /// Encodes the UTF-8 bytes of `text` in byte mode, in the smallest version
    /// that holds them at `level`.
    public init(encoding text: String, level: Level = .medium) throws(Failure) {
        let bytes = Array(text.utf8)
        var failure: Int32 = 0
        let symbol: UnsafeMutablePointer<QRcode>? = bytes.withUnsafeBufferPointer { b in
            errno = 0
            let s = QRcode_encodeData(Int32(b.count), b.baseAddress, 0, level.c)
            if s == nil { failure = errno }
            return s
        }
        guard let symbol else {
            throw failure == ERANGE ? .tooLong(bytes: bytes.count) : .library(errno: failure)
        }
        defer { QRcode_free(symbol) }
        let width = Int(symbol.pointee.width)
        version = Int(symbol.pointee.version)
        size = width
        // Bit 0 of each byte is the module's colour; the other bits say which
        // part of the symbol it belongs to.
        modules = (0..<(width * width)).map { symbol.pointee.data[$0] & 1 == 1 }
    }

    public subscript(x: Int, y: Int) -> Bool {
        guard x >= 0, y >= 0, x < size, y < size else { return false }
        return modules[y * size + x]
    }

    /// The symbol as a standalone SVG element: one path of dark runs per row
    /// on a light square, with the quiet zone the standard asks for (4
    /// modules). `pixelsPerModule` sets the drawn size; `label` becomes the
    /// accessible name and is escaped here.
    public func svg(pixelsPerModule: Int = 5, quietZone: Int = 4, label: String, id: String? = nil) -> String {
        let side = size + 2 * quietZone
        var path = ""
        path.reserveCapacity(size * size)
        for y in 0..<size {
            var x = 0
            while x < size {
                guard self[x, y] else { x += 1; continue }
                var run = 1
                while self[x + run, y] { run += 1 }
                path += "M\(x + quietZone) \(y + quietZone)h\(run)v1h-\(run)z"
                x += run
            }
        }
        let idAttribute = id.map { " id=\"\(Self.escape($0))\"" } ?? ""
        let pixels = side * pixelsPerModule
        return "<svg xmlns=\"http://www.w3.org/2000/svg\"\(idAttribute) role=\"img\" aria-label=\"\(Self.escape(label))\" "
            + "width=\"\(pixels)\" height=\"\(pixels)\" viewBox=\"0 0 \(side) \(side)\" shape-rendering=\"crispEdges\">"
            + "<rect width=\"\(side)\" height=\"\(side)\" fill=\"#fff\"/><path fill=\"#000\" d=\"\(path)\"/></svg>"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
