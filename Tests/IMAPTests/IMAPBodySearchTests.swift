import Foundation
@testable import IMAP
import Testing
import TestSupport

/// SEARCH BODY's shortcut (`SearchContext.bodyRuledOut`) against the full
/// search: when the raw bytes rule a needle out, the decoded text never
/// holds it. Over the MIME corpus and over messages made to trip it.
struct IMAPBodySearchTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors/MIME")

    static func corpusMessages() -> [[UInt8]] {
        guard let e = FileManager.default.enumerator(at: corpus, includingPropertiesForKeys: nil) else { return [] }
        var out: [[UInt8]] = []
        for case let url as URL in e where ["msg", "eml", "txt"].contains(url.pathExtension) {
            guard !url.lastPathComponent.uppercased().contains("LICENSE"), !url.lastPathComponent.uppercased().contains("README"),
                  let d = try? Data(contentsOf: url) else { continue }
            out.append([UInt8](d))
        }
        return out
    }

    /// Words of the decoded text (found) and variations of them (mostly not).
    static func needles(for text: String, rng: inout SeededGenerator) -> [String] {
        let words = text.split { !$0.isLetter && !$0.isNumber }.map(String.init).filter { $0.count >= 3 }
        var out = ["zzqqxx", "marzipan", "base64", "MESSAGE", "Content"]
        for _ in 0..<12 where !words.isEmpty {
            let w = words.randomElement(using: &rng)!
            out += [w, w.uppercased(), w + "zq", String(w.dropFirst()) + "x"]
        }
        return out
    }

    func check(_ message: [UInt8], _ needles: [String], ruledOut: inout Int) {
        var scratch: [UInt8] = []
        let text = SearchContext.bodyText(of: message)
        for n in needles {
            if SearchContext.bodyRuledOut(message, n, scratch: &scratch) {
                ruledOut += 1
                #expect(!SearchContext.textContains(text, n), "ruled out \(n) but the text holds it")
            }
        }
    }

    @Test func neverRulesOutWhatTheSearchFindsInTheCorpus() {
        var rng = SeededGenerator(seed: 0x5EA2C4)
        let messages = IMAPBodySearchTests.corpusMessages()
        #expect(messages.count > 100)
        var ruledOut = 0
        for m in messages {
            check(m, IMAPBodySearchTests.needles(for: SearchContext.bodyText(of: m), rng: &rng), ruledOut: &ruledOut)
        }
        // Not vacuous: plain messages are ruled out for absent words.
        #expect(ruledOut > 100)
    }

    @Test func decodingIsNeverSkipped() {
        func msg(_ s: String) -> [UInt8] { Array(s.replacingOccurrences(of: "\n", with: "\r\n").utf8) }
        let cases: [([UInt8], String)] = [
            // Quoted-printable soft line break and hex escapes.
            (msg("Content-Transfer-Encoding: quoted-printable\n\nmar=\nzipan and =6Darzipan\n"), "marzipan"),
            // Base64 text.
            (msg("Content-Type: text/plain\nContent-Transfer-Encoding: BASE64\n\nbWFyemlwYW4=\n"), "marzipan"),
            // An encapsulated message: its header values are unfolded and decoded.
            (msg("Content-Type: message/rfc822\n\nSubject: =?utf-8?q?marzi=70an?=\n\nbody\n"), "marzipan"),
            // A digest's parts are messages even without a Content-Type.
            (msg("Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: =?utf-8?b?bWFyemlwYW4=?=\n\nx\n--b--\n"), "marzipan"),
            // Latin-1 around an upper-case needle, in an 8-bit part.
            (msg("Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nMarZipan \u{e9}\n"), "marzipan"),
            // Values the parser reads otherwise than written: a stray CR, a
            // comment, spaces around the slash, a folded value.
            (msg("Content-Transfer-Encoding: base\r64\n\nbWFyemlwYW4=\n"), "marzipan"),
            (msg("Content-Transfer-Encoding: quoted-\rprintable\n\nmar=\nzipan\n"), "marzipan"),
            (msg("Content-Type: multipart/dig(x)est; boundary=b\n\n--b\n\nSubject: =?utf-8?B?bWFyemlwYW4=?=\n\nx\n--b--\n"), "marzipan"),
            (msg("Content-Type: message /rfc822\n\nSubject: =?utf-8?q?marzi=70an?=\n\nbody\n"), "marzipan"),
            (msg("Content-Type:\n message/rfc822\n\nSubject: =?utf-8?q?marzi=70an?=\n\nbody\n"), "marzipan"),
            (msg("Content-Type: message (x)/rfc822\n\nSubject: =?utf-8?q?marzi=70an?=\n\nbody\n"), "marzipan"),
            (msg("Content-Type : message/rfc822\n\nSubject: =?utf-8?q?marzi=70an?=\n\nbody\n"), "marzipan"),
            (msg("content-transfer-encoding:BASE64\n\nbWFyemlwYW4=\n"), "marzipan"),
        ]
        var scratch: [UInt8] = []
        for (m, n) in cases {
            #expect(SearchContext.textContains(SearchContext.bodyText(of: m), n), "\(String(decoding: m, as: UTF8.self))")
            #expect(!SearchContext.bodyRuledOut(m, n, scratch: &scratch), "\(String(decoding: m, as: UTF8.self))")
        }
        // What the shortcut is for: plain text without the word, and parts
        // that are not transformed.
        #expect(SearchContext.bodyRuledOut(msg("Subject: hi\n\nno such word here\n"), "marzipan", scratch: &scratch))
        #expect(SearchContext.bodyRuledOut(msg("Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\n"
                                               + "Content-Transfer-Encoding: 7bit\n\nhello\n--b\nContent-Type: text/html\n\n<p>hi</p>\n--b--\n"),
                                           "marzipan", scratch: &scratch))
        // A field name inside a longer one, or text that only mentions one, is no field.
        #expect(SearchContext.bodyRuledOut(msg("X-Content-Type: message/rfc822\n\nthe content-type is set\n"), "marzipan", scratch: &scratch))
        // Needles with spaces or non-ASCII letters are left to the full search.
        #expect(!SearchContext.bodyRuledOut(msg("Subject: hi\n\nnothing\n"), "two words", scratch: &scratch))
        #expect(!SearchContext.bodyRuledOut(msg("Subject: hi\n\nnothing\n"), "\u{e9}t\u{e9}", scratch: &scratch))
    }

    @Test func rareByteSearchFindsTheFirstPlacement() {
        var rng = SeededGenerator(seed: 0xB0D1)
        let alphabet = Array("abzq6/- \r\n".utf8)
        for _ in 0..<3000 {
            let hay = (0..<Int.random(in: 0...60, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let needle = (0..<Int.random(in: 1...5, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let from = Int.random(in: 0...max(hay.count, 0), using: &rng)
            let expected = hay.count >= needle.count
                ? (from...max(from, hay.count - needle.count)).first { $0 + needle.count <= hay.count && Array(hay[$0..<$0 + needle.count]) == needle }
                : nil
            let got = hay.withUnsafeBufferPointer { ASCIIFold.firstIndex(of: needle, in: $0, from: from) }
            #expect(got == expected, "\(hay) \(needle) from \(from)")
        }
    }
}
