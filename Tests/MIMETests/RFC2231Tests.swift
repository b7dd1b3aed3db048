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

    func structure(_ value: String) -> [String] {
        (ContentType.parse(Array(value.utf8))?.structureParameters ?? []).map { $0.name + "=" + $0.valueString }
    }

    @Test func continuationsJoinedForBodyStructure() {
        // RFC 9051 §7.5.2: servers SHOULD decode continuations. §4.1's
        // example becomes one extended parameter, still percent-encoded,
        // the charset and language kept for the client.
        #expect(structure("""
            application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn't it!"
            """) == ["title*=us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn't it!"])
        // §3: plain sections give a plain parameter, in the first section's place.
        #expect(structure(#"message/external-body; URL*1="cs.utk.edu/pub"; access-type=URL; URL*0="ftp://""#)
                == ["URL=ftp://cs.utk.edu/pub", "access-type=URL"])
        #expect(structure(#"application/x; Name*0="a"; NAME*1="b""#) == ["Name=ab"])
    }

    @Test func joinedValuesDecodeAsTheSections() {
        // A plain section after an extended one has its "%" escaped; a
        // plain section 0 before extended ones gets an empty charset and language.
        let cases = [
            #"application/x; a*0*=utf-8''caf%C3%A9; a*1="%20 100%""#,
            #"application/x; a*0="x y"; a*1*=%41"#,
        ]
        #expect(structure(cases[0]) == ["a*=utf-8''caf%C3%A9%2520 100%25"])
        #expect(structure(cases[1]) == ["a*=''x y%41"])
        for c in cases {
            let ct = ContentType.parse(Array(c.utf8))!
            let joined = ContentType(type: ct.type, subtype: ct.subtype, parameters: ct.structureParameters)
            #expect(joined.parameter("a") == ct.parameter("a"))
        }
    }

    @Test func incompleteSectionsStayAsWritten() {
        #expect(structure(#"application/x; a*0="x"; a*2="z""#) == ["a*0=x", "a*2=z"])
        #expect(structure(#"application/x; a*1="x""#) == ["a*1=x"])
        #expect(structure("application/x; name*=utf-8''caf%C3%A9; a*b=1") == ["name*=utf-8''caf%C3%A9", "a*b=1"])
        let d = ContentDisposition.parse(Array(#"attachment; filename*0="a"; filename*1="b.txt"; size=3"#.utf8))
        #expect(d?.structureParameters == [MIMEParameter(name: "filename", value: Array("ab.txt".utf8)),
                                           MIMEParameter(name: "size", value: Array("3".utf8))])
    }

    @Test func encodedBoundary() {
        // RFC 2231 §4 and §3 apply to boundary as to any parameter.
        let ct = ContentType.parse(Array(#"multipart/signed; micalg*=us-ascii''pgp-md5; boundary*="ansi-x3.4-1968''Ee%20Qf""#.utf8))
        #expect(ct?.boundary == Array("Ee Qf".utf8))
        #expect(ContentType.parse(Array("multipart/mixed; boundary*0=ab; boundary*1=cd".utf8))?.boundary == Array("abcd".utf8))
        // A plain boundary is taken byte for byte: no RFC 2047 decoding.
        #expect(ContentType.parse(Array(#"multipart/mixed; boundary="=?utf-8?q?x?=""#.utf8))?.boundary
                == Array("=?utf-8?q?x?=".utf8))
        let root = MIMEMessage.parse(VectorFiles.bytes("cpython-test_email-data/msg_33.txt"))
        #expect(root.demotion == nil && root.contentType.subtype == "signed")
        #expect(root.children.count == 2)
        #expect(root.children.first?.contentType.parameter("charset") == "us-ascii")
    }

    @Test func textPlainCharsetDefault() {
        // RFC 2045 §5.2, RFC 2046 §4.1.2, RFC 6657 §4: text/plain without a
        // charset is us-ascii, written out as for an absent Content-Type.
        #expect(structure("text/plain; format=flowed") == ["format=flowed", "charset=us-ascii"])
        #expect(structure("TEXT/PLAIN") == ["charset=us-ascii"])
        #expect(ContentType.default.structureParameters == ContentType.default.parameters)
        #expect(structure("text/plain; charset=utf-8") == ["charset=utf-8"])
        #expect(structure("text/plain; charset*=us-ascii''iso-8859-1") == ["charset*=us-ascii''iso-8859-1"])
        // RFC 6657 §3: other text subtypes may name their charset in the content.
        #expect(structure("text/html").isEmpty)
        #expect(structure("application/octet-stream").isEmpty)
        let root = MIMEMessage.parse(crlf("Content-Type: text/plain\n\nbody\n"))
        #expect(root.contentType.structureParameters == ContentType.default.parameters)
    }

    @Test func missingContentTypeDefaultsToTextPlain() {
        let root = MIMEMessage.parse(crlf("Subject: x\n\nbody\n"))
        #expect(root.contentType == .default)
        let bad = MIMEMessage.parse(VectorFiles.bytes("mimekit-messages/missing-subtype.txt"))
        #expect(bad.contentType == .default)
        #expect(bad.declaredContentType == nil)
    }
}
