import Foundation
import PanelSecurity

extension PasswordVerdict.Strength {
    /// The API's name of a level.
    public var name: String {
        switch self {
        case .veryWeak: return "veryWeak"
        case .weak: return "weak"
        case .fair: return "fair"
        case .good: return "good"
        case .strong: return "strong"
        }
    }
    /// The meter's label.
    public var label: String {
        switch self {
        case .veryWeak: return "very weak"
        case .weak: return "weak"
        case .fair: return "fair"
        case .good: return "good"
        case .strong: return "strong"
        }
    }
}
