import Testing
import MIME

/// Runs every copied message through the parser: no crash, every range
/// inside the buffer and inside its parent, sane part counts, and every
/// IMAP section of every part resolvable.
@Suite struct MIMEVectorSweepTests {
    @Test func vectorsArePresent() {
        #expect(VectorFiles.allMessages().count > 150)
    }

    @Test(arguments: VectorFiles.allMessages())
    func parsesWithinBounds(_ path: String) {
        let bytes = VectorFiles.bytes(path)
        #expect(!bytes.isEmpty)
        let root = MIMEMessage.parse(bytes)
        #expect(root.envelope != nil)
        #expect(root.partCount >= 1 && root.partCount <= MIMELimits.defaultMaximumParts)
        check(root, in: 0..<bytes.count, bytes: bytes)

        // Every path found by walking resolves back to a part with the same body.
        for (path, part) in paths(root, prefix: []) {
            let found = root.part(at: path)
            #expect(found?.bodyRange == part.bodyRange, "path \(path)")
            #expect(root.bodyBytes(at: path) != nil)
            #expect(root.mimeHeaderBytes(at: path) != nil)
            if part.message != nil {
                #expect(root.headerBytes(at: path) != nil)
                #expect(root.textBytes(at: path) != nil)
            }
            if !part.isMultipart { _ = part.decodedBody(bytes) }
        }
    }

    private func check(_ part: MIMEPart, in outer: Range<Int>, bytes: [UInt8]) {
        #expect(part.headerRange.lowerBound >= outer.lowerBound)
        #expect(part.headerRange.upperBound <= part.bodyRange.lowerBound)
        #expect(part.bodyRange.upperBound <= outer.upperBound)
        #expect(part.bodyOctets == part.bodyRange.count)
        #expect(part.bodyLines >= 0 && part.bodyLines <= part.bodyOctets + 1)
        for field in part.header.fields {
            #expect(field.range.lowerBound >= part.headerRange.lowerBound)
            #expect(field.range.upperBound <= part.headerRange.upperBound)
        }
        for child in part.children { check(child, in: part.bodyRange, bytes: bytes) }
        if let m = part.message {
            #expect(m.range == part.bodyRange)
            check(m, in: part.bodyRange, bytes: bytes)
        }
    }

    /// IMAP part numbers of every entity below `part`.
    private func paths(_ part: MIMEPart, prefix: [Int]) -> [([Int], MIMEPart)] {
        let container = prefix.isEmpty ? part : (part.message ?? part)
        guard prefix.isEmpty || part.message != nil || part.isMultipart else { return [] }
        if container.isMultipart {
            var out: [([Int], MIMEPart)] = []
            for (i, child) in container.children.enumerated() {
                let p = prefix + [i + 1]
                out.append((p, child))
                out += paths(child, prefix: p)
            }
            return out
        }
        let p = prefix + [1]
        return prefix.isEmpty ? [(p, container)] + paths(container, prefix: p) : [(p, container)]
    }
}
