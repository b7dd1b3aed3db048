import MailAuth
import Testing

/// Every golden vector in Tests/Vectors/DKIM/verify (README there).
@Suite struct DKIMVectorTests {
    @Test func vectorsExist() {
        #expect(DKIMVectors.verifyCases().count >= 9)
    }

    @Test(arguments: DKIMVectors.verifyCases())
    func vector(_ name: String) async {
        let message = DKIMVectors.bytes("verify/\(name).eml")
        let dns = DKIMVectors.zone(DKIMVectors.text("verify/\(name).dns"))
        let expected = DKIMVectors.text("verify/\(name).result").split(separator: "\n").map(String.init)
        let results = await DKIMVerifier(dns: dns).verify(message, now: dkimTestNow)
        #expect(results.count == expected.count, "\(name): \(results)")
        for (r, line) in zip(results, expected) {
            let words = line.split(separator: " ", maxSplits: 1).map(String.init)
            #expect(r.status.rawValue == words[0], "\(name): \(r)")
            if words.count == 2 { #expect(r.reason.contains(words[1]), "\(name): \(r.reason)") }
        }
    }

    // RFC 8463 Appendix A: both signatures, with what Authentication-Results reports.
    @Test func rfc8463Details() async {
        let dns = DKIMVectors.zone(DKIMVectors.text("verify/01-rfc8463.dns"))
        let results = await DKIMVerifier(dns: dns).verify(DKIMVectors.bytes("rfc8463/signed.eml"), now: dkimTestNow)
        #expect(results.map(\.status) == [.pass, .pass])
        #expect(results[0].algorithm == "ed25519-sha256" && results[0].selector == "brisbane" && results[0].keyBits == 256)
        #expect(results[1].algorithm == "rsa-sha256" && results[1].selector == "test" && results[1].keyBits == 1024)
        #expect(results[0].headerB == "/gCrinpcQOoI")
        #expect(results[1].resinfo == "dkim=pass (1024-bit rsa-sha256 key) header.d=football.example.com header.i=@football.example.com header.s=test header.b=F45dVWDfMbQD")
    }
}
