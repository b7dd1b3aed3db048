import Testing
import MIME

/// IMAP section addressing (RFC 3501 §6.4.5) and BINARY decoding (RFC 3516).
@Suite struct SectionTests {
    static let message = crlf("""
        From: a@example.com
        Subject: nested
        Content-Type: multipart/mixed; boundary=outer

        preamble
        --outer
        Content-Type: text/plain

        hello
        --outer
        Content-Type: message/rfc822

        Subject: inner
        Content-Type: multipart/alternative; boundary="in;ner"

        --in;ner
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: quoted-printable

        caf=C3=A9
        --in;ner
        Content-Type: application/octet-stream
        Content-Transfer-Encoding: base64

        AAEC
        --in;ner--
        --outer
        Content-Type: text/plain
        Content-Transfer-Encoding: x-uuencode

        begin
        --outer--
        epilogue
        """)

    func text(_ r: Range<Int>?) -> String? {
        r.map { String(decoding: Self.message[$0], as: UTF8.self) }
    }

    @Test func structure() {
        let root = MIMEMessage.parse(Self.message)
        #expect(root.children.count == 3)
        #expect(text(root.preambleRange) == "preamble")
        #expect(text(root.epilogueRange) == "epilogue")
        #expect(root.partCount == 7)  // root, 3 parts, inner message, 2 inner parts
        #expect(root.part(at: [1])?.bodyLines == 1)
        #expect(root.part(at: [2])?.message?.envelope?.subject == Array("inner".utf8))
    }

    @Test func sectionRanges() {
        let root = MIMEMessage.parse(Self.message)
        #expect(text(root.bodyBytes(at: [1])) == "hello")
        #expect(text(root.mimeHeaderBytes(at: [1])) == "Content-Type: text/plain\r\n\r\n")
        #expect(text(root.headerBytes(at: [2]))?.hasPrefix("Subject: inner\r\n") == true)
        #expect(text(root.headerBytes(at: [2]))?.hasSuffix("\"in;ner\"\r\n\r\n") == true)
        #expect(text(root.textBytes(at: [2]))?.hasPrefix("--in;ner\r\n") == true)
        #expect(text(root.bodyBytes(at: [2, 1])) == "caf=C3=A9")
        #expect(text(root.bodyBytes(at: [2, 2])) == "AAEC")
        #expect(root.part(at: [2, 3]) == nil)
        #expect(root.part(at: [4]) == nil)
        #expect(root.part(at: [0]) == nil)
        #expect(root.headerBytes(at: [1]) == nil)  // not a message/rfc822 part
        #expect(root.bodyBytes(at: []) == 0..<Self.message.count)
        #expect(root.headerBytes(at: []) == root.headerRange)
    }

    @Test func singlePartMessageHasPartOne() {
        let bytes = crlf("Subject: x\n\nline1\nline2")
        let root = MIMEMessage.parse(bytes)
        #expect(root.part(at: [1])?.bodyRange == root.bodyRange)
        #expect(root.part(at: [2]) == nil)
        #expect(root.bodyLines == 2 && root.bodyOctets == 12)
    }

    @Test func binaryDecoding() {
        let root = MIMEMessage.parse(Self.message)
        let qp = root.part(at: [2, 1])?.decodedBody(Self.message)
        #expect((try? qp?.get()) == Array("café".utf8))
        let b64 = root.part(at: [2, 2])?.decodedBody(Self.message)
        #expect((try? b64?.get()) == [0, 1, 2])
        guard case .failure(let error)? = root.part(at: [3])?.decodedBody(Self.message) else {
            Issue.record("expected failure"); return
        }
        #expect(error.code == .unknownTransferEncoding)
        guard case .failure(let e2) = root.decodedBody(Self.message) else { Issue.record("multipart"); return }
        #expect(e2.code == .notALeaf)
    }

    @Test func brokenMultiparts() {
        // No boundary parameter: a text/plain leaf.
        let noBoundary = MIMEMessage.parse(crlf("Content-Type: multipart/mixed\n\n--x\nbody\n"))
        #expect(noBoundary.demotion == .missingBoundary && noBoundary.children.isEmpty)
        #expect(noBoundary.contentType == .default)
        // Missing close delimiter: the last part runs to the end.
        let open = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n")
        let root = MIMEMessage.parse(open)
        #expect(root.children.count == 2)
        #expect(String(decoding: open[root.children[1].bodyRange], as: UTF8.self) == "two\r\n")
        // base64 message/rfc822 is not parsed as a message.
        let encoded = MIMEMessage.parse(crlf("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA0KDQo=\n"))
        #expect(encoded.demotion == .encodedMessage && encoded.message == nil)
    }

    @Test func limits() {
        var nested = ""
        for i in 0..<200 { nested += "Content-Type: multipart/mixed; boundary=b\(i)\n\n--b\(i)\n" }
        let bytes = crlf(nested + "\nleaf\n")
        let root = MIMEMessage.parse(bytes)
        var depth = 0
        var p = root
        while let c = p.children.first { p = c; depth += 1 }
        #expect(depth == MIMELimits.defaultMaximumDepth)
        #expect(p.demotion == .depthLimit)

        var many = "Content-Type: multipart/mixed; boundary=b\n\n"
        for _ in 0..<50 { many += "--b\n\nx\n" }
        let small = MIMEMessage.parse(crlf(many), limits: MIMELimits(maximumDepth: 5, maximumParts: 10))
        #expect(small.partCount <= 10)
    }
}
