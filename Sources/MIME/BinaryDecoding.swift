/// Why a part's body cannot be returned decoded for IMAP BINARY.
public struct BinaryDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// RFC 3516 §4.3 / RFC 9051 §7.1: answer NO [UNKNOWN-CTE].
        case unknownTransferEncoding
        /// The section names no leaf part (multipart or missing).
        case notALeaf
    }
    public var code: Code
    /// The encoding as written, for logs; never includes message content.
    public var encoding: String?

    public var description: String {
        switch code {
        case .unknownTransferEncoding: return "unknown Content-Transfer-Encoding \(encoding ?? "")"
        case .notALeaf: return "section is not a single-part body"
        }
    }
}

extension MIMEPart {
    /// The body with its Content-Transfer-Encoding removed (RFC 3516 BINARY,
    /// RFC 9051 §6.4.5 BINARY[section]). 7bit, 8bit, binary and an absent
    /// field return the bytes as stored; base64 and quoted-printable are
    /// decoded leniently (RFC 2045 §6.7, §6.8); anything else fails with
    /// `.unknownTransferEncoding`. Multiparts fail with `.notALeaf`.
    public func decodedBody(_ bytes: [UInt8]) -> Result<[UInt8], BinaryDecodingError> {
        guard !isMultipart else { return .failure(BinaryDecodingError(code: .notALeaf, encoding: nil)) }
        let raw = Array(bytes[bodyRange.clamped(to: 0..<bytes.count)])
        switch encoding ?? "7bit" {
        case "7bit", "8bit", "binary", "":
            return .success(raw)
        case "base64":
            return .success(TransferDecoding.base64(raw))
        case "quoted-printable":
            return .success(TransferDecoding.quotedPrintable(raw))
        default:
            return .failure(BinaryDecodingError(code: .unknownTransferEncoding, encoding: encoding))
        }
    }
}
