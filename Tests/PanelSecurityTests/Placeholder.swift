import Testing
@testable import PanelSecurity
