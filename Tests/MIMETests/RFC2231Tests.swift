import Testing
import MIME

/// RFC 2231 §3, §4, §4.1 examples, and Content-Type defaults (RFC 2045 §5.2).
@Suite struct RFC2231Tests {
    @Test func continuations() {
        // §3
        let ct = ContentType.parse(Array(#"message/external-body; access-type=URL; URL*0="ftp://"; URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar""#.utf8))
        #expect(ct?.type == "message" && ct?.subtype == "external-body")
        #expect(ct?.parameter("url") == "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar")
        #expect(ct?.parameter("access-type") == "URL")
        #expect(ct?.parameters.count == 3)  // raw list keeps the sections
    }

    @Test func charsetAndLanguage() {
        // §4
        let ct = ContentType.parse(Array("application/x-stuff;\r\n title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A".utf8))
        let title = ct?.decodedParameters.first { $0.name == "title" }
        #expect(title?.value == "This is ***fun***")
        #expect(title?.charset == "us-ascii")
        #expect(title?.language == "en-us")
    }

    @Test func mixedContinuations() {
        // §4.1
        let ct = ContentType.parse(Array("""
            application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn't it!"
            """.utf8))
        #expect(ct?.parameter("title") == "This is even more ***fun*** isn't it!")
    }

    @Test func latin1FilenameInDisposition() {
        let d = ContentDisposition.parse(Array("attachment; filename*=iso-8859-1''caf%E9.txt".utf8))
        #expect(d?.value == "attachment")
        #expect(d?.parameter("filename") == "café.txt")
    }

    @Test func contentTypeParsing() {
        let ct = ContentType.parse(Array(#"Multipart/Mixed; boundary="a;b=c" ; charset=utf-8 (comment)"#.utf8))
        #expect(ct?.type == "multipart" && ct?.subtype == "mixed")
        #expect(ct?.boundary == Array("a;b=c".utf8))
        #expect(ct?.parameter("charset") == "utf-8")
        #expect(ContentType.parse(Array("application-x-gzip; name=x".utf8)) == nil)
        #expect(ContentType.parse(Array("text/".utf8)) == nil)
        #expect(ContentType.default.parameter("charset") == "us-ascii")
    }

    @Test func missingContentTypeDefaultsToTextPlain() {
        let root = MIMEMessage.parse(crlf("Subject: x\n\nbody\n"))
        #expect(root.contentType == .default)
        let bad = MIMEMessage.parse(VectorFiles.bytes("mimekit-messages/missing-subtype.txt"))
        #expect(bad.contentType == .default)
        #expect(bad.declaredContentType == nil)
    }
}
