import MailAuth
import Testing

@Suite struct ReverseNameTests {
    @Test func ipv4() {
        #expect(ReverseName.of([192, 0, 2, 1]) == "1.2.0.192.in-addr.arpa")
    }

    // RFC 3596 §2.5's example form: nibbles reversed, low nibble first.
    @Test func ipv6() {
        var addr = [UInt8](repeating: 0, count: 16)
        addr[0] = 0x20; addr[1] = 0x01; addr[2] = 0x0d; addr[3] = 0xb8; addr[15] = 0x01
        #expect(ReverseName.of(addr) == "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa")
    }
}
