import Testing
import Foundation
import MIME

/// Compares the parsed tree with Mime4j's expected `.xml` for a selection of
/// messages. The tree is rendered in Mime4j's XML shape (fields verbatim,
/// bodies and preambles as raw bytes) and compared with CR removed; empty
/// preamble/epilogue elements are ignored (Mime4j counts the CR LF after a
/// close delimiter as epilogue, RFC 2046 §5.1.1 does not).
@Suite struct Mime4jStructureTests {
    static let messages = [
        "mime4j/testmsgs/basic-plain",
        "mime4j/testmsgs/basic-plain-with-bad-header-separator",
        "mime4j/testmsgs/boundary-name-clash",
        "mime4j/testmsgs/ending-boundaries",
        "mime4j/testmsgs/intermediate-boundaries",
        "mime4j/testmsgs/malformedHeader-nocrlfcrlf",
        "mime4j/testmsgs/missing-boundary",
        "mime4j/testmsgs/missing-inner-boundary",
        "mime4j/testmsgs/missing-inner-start-boundary",
        "mime4j/testmsgs/multipartdigestnestedemptyparts",
        "mime4j/testmsgs/multipartemptypart",
        "mime4j/testmsgs/multipartnopart",
        "mime4j/testmsgs/very-very-long-boundary",
        "mime4j/testmsgs/weird-boundary",
        "mime4j/mimetools-testmsgs/multi-nested",
        "mime4j/mimetools-testmsgs/frag",
        "mime4j/mimetools-testmsgs/double-bound",
        "mime4j/mimetools-testmsgs/empty-preamble",
    ]

    @Test(arguments: messages)
    func matchesMime4jExpectation(_ name: String) {
        let bytes = VectorFiles.bytes(name + ".msg")
        let expected = VectorFiles.text(name + ".xml")
        #expect(!bytes.isEmpty && !expected.isEmpty)
        let root = MIMEMessage.parse(bytes)
        let rendered = "<message>\n" + Self.render(root, bytes) + "</message>\n"
        #expect(Self.normalize(rendered) == Self.normalize(expected))
    }

    static func render(_ part: MIMEPart, _ bytes: [UInt8]) -> String {
        var s = "<header>\n"
        for field in part.header.fields {
            var end = field.range.upperBound
            if end > field.range.lowerBound, bytes[end - 1] == 0x0A { end -= 1 }
            if end > field.range.lowerBound, bytes[end - 1] == 0x0D { end -= 1 }
            s += "<field>\n" + escape(bytes[field.range.lowerBound..<end]) + "</field>\n"
        }
        s += "</header>\n"
        if let message = part.message {
            s += "<message>\n" + render(message, bytes) + "</message>\n"
        } else if part.isMultipart {
            s += "<multipart>\n"
            if let r = part.preambleRange { s += "<preamble>\n" + escape(bytes[r]) + "</preamble>\n" }
            for child in part.children { s += "<body-part>\n" + render(child, bytes) + "</body-part>\n" }
            if let r = part.epilogueRange { s += "<epilogue>\n" + escape(bytes[r]) + "</epilogue>\n" }
            s += "</multipart>\n"
        } else {
            s += "<body>\n" + escape(bytes[part.bodyRange]) + "</body>\n"
        }
        return s
    }

    static func escape(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
            .replacingOccurrences(of: "&", with: "&amp;")
            .replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    static func normalize(_ s: String) -> String {
        var t = s.replacingOccurrences(of: "\r", with: "")
        for empty in ["<preamble>\n</preamble>\n", "<epilogue>\n</epilogue>\n", "<epilogue>\n\n</epilogue>\n"] {
            t = t.replacingOccurrences(of: empty, with: "")
        }
        return t
    }

    /// Hand-checked: a digest's parts default to message/rfc822 (RFC 2046 §5.1.5).
    @Test func digestPartsDefaultToMessage() {
        let root = MIMEMessage.parse(VectorFiles.bytes("mimekit-messages/multipart-digest.txt"))
        // The file is a message/rfc822 wrapping a multipart/digest.
        func find(_ p: MIMEPart) -> MIMEPart? {
            if p.isMultipart && p.contentType.subtype == "digest" { return p }
            for c in p.children + (p.message.map { [$0] } ?? []) { if let d = find(c) { return d } }
            return nil
        }
        let digest = find(root)
        #expect(digest != nil && digest!.children.count >= 2)
        for child in digest?.children ?? [] where child.declaredContentType == nil {
            #expect(child.contentType == ContentType.digestDefault)
            #expect(child.message != nil)
        }
    }

    /// Hand-checked structure of a MimeKit message with an embedded message.
    @Test func embeddedMessage() {
        let bytes = VectorFiles.bytes("mimekit-messages/simple-embedded-message.eml")
        let root = MIMEMessage.parse(bytes)
        #expect(root.contentType.type == "multipart" && root.contentType.subtype == "mixed")
        #expect(root.children.count == 2)
        let embedded = root.part(at: [2])
        #expect(embedded?.contentType.isMessage == true)
        #expect(embedded?.message?.envelope != nil)
        #expect(root.part(at: [2, 1])?.contentType.subtype == "plain")
    }
}
