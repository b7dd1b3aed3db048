import Foundation
import Testing
@testable import PanelSecurity

/// An attempt counted up front and then successful is taken back, so
/// successful logins never fill an address's window.
@Suite struct LoginThrottleCancelTests {
    @Test func successfulAttemptsDoNotFillTheAddressWindow() {
        var th = LoginThrottle()
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for i in 0..<50 {
            let t = start.addingTimeInterval(Double(i))
            #expect(th.check(account: "u\(i)@x.example", address: "192.0.2.1", now: t) == .allow)
            th.recordFailure(account: "u\(i)@x.example", address: "192.0.2.1", now: t)
            th.cancelFailure(account: nil, address: "192.0.2.1", at: t)
            th.recordSuccess(account: "u\(i)@x.example", address: "192.0.2.1", now: t)
        }
        #expect(th.count == 0)
        // Real failures still count: the 21st address failure is refused.
        for i in 0..<20 { th.recordFailure(account: "v\(i)@x.example", address: "192.0.2.1", now: start.addingTimeInterval(100)) }
        #expect(th.check(account: "w@x.example", address: "192.0.2.1", now: start.addingTimeInterval(101)) != .allow)
    }
}
