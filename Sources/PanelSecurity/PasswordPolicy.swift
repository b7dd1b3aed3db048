import CPWQuality
import Foundation
import Synchronization

/// The verdict on a proposed password: whether it may be used, a score and
/// level for the strength meter, and the reasons in plain English (safe to
/// show: they never quote the password or the user's name).
public struct PasswordVerdict: Hashable, Sendable {
    /// The five levels of the panel's strength meter.
    public enum Strength: Int, Hashable, Sendable, Comparable, CaseIterable {
        case veryWeak, weak, fair, good, strong

        /// 0..<20 very weak, 20..<40 weak, 40..<60 fair, 60..<80 good, 80... strong.
        public init(score: Int) {
            self = Strength(rawValue: min(max(score, 0), 100) / 20) ?? .strong
        }

        public static func < (a: Strength, b: Strength) -> Bool { a.rawValue < b.rawValue }
    }

    /// Why a password was refused; one value per failed check.
    public enum Reason: Hashable, Sendable {
        case tooShort(minimum: Int)
        case tooLong(maximum: Int)
        case controlCharacter
        case containsUserName
        case commonPassword
        case keyboardWalk
        case repeatedPattern
        case sameAsOld
        case tooSimilarToOld
        case palindrome
        case dictionaryWord
        case tooSimple
        /// Another libpwquality refusal (a `PWQ_ERROR_*` code).
        case library(code: Int32)
    }

    public var accepted: Bool
    /// 0-100 for the meter: 20-100 for accepted passwords (libpwquality's
    /// score scaled), at most 10 for refused ones.
    public var score: Int
    public var strength: Strength
    public var reasons: [Reason]
    public var messages: [String]
}

/// Rules for new passwords: libpwquality (with cracklib's dictionary) must
/// accept the password, and so must our own checks for what it misses: the
/// user's local part and domain labels, keyboard walks, repeated patterns and
/// a list of very common passwords.
///
/// The password is handed to libpwquality and nowhere else; nothing here
/// logs or keeps it. libpwquality's settings are built fresh for each call
/// (a settings object is not safe to share), and calls are serialised
/// because cracklib's dictionary code keeps static state.
public struct PasswordPolicy: Hashable, Sendable {
    /// The fewest characters (Unicode characters, not bytes).
    public var minimumLength: Int
    /// The most characters: a bound on the work per check. NIST SP 800-63B
    /// §5.1.1.2 asks verifiers to allow at least 64.
    public var maximumLength: Int
    /// Refuse passwords that are mostly a keyboard walk, repeat a pattern,
    /// or that contain the user's own names (on by default).
    public var checksPatterns: Bool
    /// How many characters of a new password must not appear in the old one
    /// (libpwquality's difok).
    public var minimumChangedCharacters: Int
    /// cracklib's dictionary (without the .pwd/.pwi suffix); nil for the
    /// system default (Debian: /var/cache/cracklib/cracklib_dict).
    public var dictionaryPath: String?

    public init(minimumLength: Int = 10, maximumLength: Int = 256, checksPatterns: Bool = true,
                minimumChangedCharacters: Int = 5, dictionaryPath: String? = nil) {
        self.minimumLength = minimumLength
        self.minimumChangedCharacters = minimumChangedCharacters
        self.maximumLength = maximumLength
        self.checksPatterns = checksPatterns
        self.dictionaryPath = dictionaryPath
    }

    /// Judges `password` for the account `user` ("alice@example.com" or a
    /// bare name), optionally against the password it replaces.
    public func evaluate(_ password: String, user: String?, oldPassword: String?) -> PasswordVerdict {
        var reasons: [PasswordVerdict.Reason] = []
        var messages: [String] = []
        func refuse(_ reason: PasswordVerdict.Reason, _ message: String) {
            reasons.append(reason)
            messages.append(message)
        }

        let length = password.count
        if length < minimumLength {
            refuse(.tooShort(minimum: minimumLength), "Use at least \(minimumLength) characters.")
        }
        if length > maximumLength {
            refuse(.tooLong(maximum: maximumLength), "Use at most \(maximumLength) characters.")
        }
        // A NUL would cut the C string libpwquality sees; other control
        // characters cannot be typed reliably.
        if password.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            refuse(.controlCharacter, "Remove the control characters (such as tabs or line breaks).")
        }
        // Too short, too long or unrepresentable: no further checks, and
        // libpwquality never sees it.
        guard reasons.isEmpty else {
            let score = 10 * min(length, minimumLength) / max(minimumLength, 1)
            return PasswordVerdict(accepted: false, score: score, strength: .init(score: score), reasons: reasons, messages: messages)
        }

        let lower = password.lowercased()
        if checksPatterns {
            if let user, PasswordPatterns.containsUserWord(lower, words: PasswordPatterns.userWords(user)) {
                refuse(.containsUserName, "Do not use your user name or domain in the password.")
            }
            if PasswordPatterns.isCommon(lower) {
                refuse(.commonPassword, "This is one of the most common passwords.")
            }
            if PasswordPatterns.keyboardWalkLength(lower) * 2 >= length {
                refuse(.keyboardWalk, "Avoid runs of neighbouring keys such as qwerty.")
            }
            if PasswordPatterns.longestRepetition(lower) * 4 >= length * 3 {
                refuse(.repeatedPattern, "Avoid repeating the same characters or pattern.")
            }
        }

        let library = PWQuality.check(password, oldPassword: oldPassword, user: user,
                                      minimumLength: minimumLength, minimumChangedCharacters: minimumChangedCharacters,
                                      dictionaryPath: dictionaryPath)
        switch library {
        case .accepted(let score):
            if reasons.isEmpty {
                let scaled = 20 + min(max(score, 0), 100) * 80 / 100
                return PasswordVerdict(accepted: true, score: scaled, strength: .init(score: scaled), reasons: [], messages: [])
            }
        case .refused(let code, let message):
            let reason = PasswordPolicy.reason(forLibraryCode: code, minimumLength: minimumLength)
            if !reasons.contains(reason) { refuse(reason, message) }
        }
        // Refused: a token score, below "weak".
        return PasswordVerdict(accepted: false, score: 5, strength: .veryWeak, reasons: reasons, messages: messages)
    }

    static func reason(forLibraryCode code: Int32, minimumLength: Int) -> PasswordVerdict.Reason {
        switch code {
        case PWQ_ERROR_SAME_PASSWORD: .sameAsOld
        case PWQ_ERROR_TOO_SIMILAR, PWQ_ERROR_CASE_CHANGES_ONLY, PWQ_ERROR_ROTATED: .tooSimilarToOld
        case PWQ_ERROR_USER_CHECK, PWQ_ERROR_GECOS_CHECK: .containsUserName
        case PWQ_ERROR_PALINDROME: .palindrome
        case PWQ_ERROR_CRACKLIB_CHECK: .dictionaryWord
        case PWQ_ERROR_MIN_LENGTH: .tooShort(minimum: minimumLength)
        case PWQ_ERROR_MAX_CONSECUTIVE, PWQ_ERROR_MAX_SEQUENCE, PWQ_ERROR_MAX_CLASS_REPEAT, PWQ_ERROR_MIN_CLASSES: .tooSimple
        default: .library(code: code)
        }
    }
}

/// The libpwquality calls (pwquality.h), one settings object per check.
enum PWQuality {
    enum Outcome: Hashable {
        case accepted(score: Int)
        case refused(code: Int32, message: String)
    }

    /// Serialises checks: cracklib's FascistCheck is not re-entrant.
    static let lock = Mutex(())

    /// Checks with settings made here, not read from /etc/security/pwquality.conf,
    /// so that the policy does not change with the host.
    static func check(_ password: String, oldPassword: String?, user: String?, minimumLength: Int,
                      minimumChangedCharacters: Int, dictionaryPath: String?) -> Outcome {
        lock.withLock { _ in
            guard let settings = pwquality_default_settings() else {
                return .refused(code: PWQ_ERROR_MEM_ALLOC, message: "The password could not be checked.")
            }
            defer { pwquality_free_settings(settings) }
            // libpwquality counts bytes and has its own floor of 6; our
            // character count was checked already.
            _ = pwquality_set_int_value(settings, PWQ_SETTING_MIN_LENGTH, Int32(clamping: max(6, minimumLength)))
            _ = pwquality_set_int_value(settings, PWQ_SETTING_DIFF_OK, Int32(clamping: minimumChangedCharacters))
            _ = pwquality_set_int_value(settings, PWQ_SETTING_DICT_CHECK, 1)
            _ = pwquality_set_int_value(settings, PWQ_SETTING_USER_CHECK, 1)
            _ = pwquality_set_int_value(settings, PWQ_SETTING_GECOS_CHECK, 0)  // panel users are not system users
            if let dictionaryPath {
                _ = pwquality_set_str_value(settings, PWQ_SETTING_DICT_PATH, dictionaryPath)
            }
            var aux: UnsafeMutableRawPointer?
            let result = password.withCString { pw in
                withOptionalCString(oldPassword) { old in
                    withOptionalCString(user) { user in
                        pwquality_check(settings, pw, old, user, &aux)
                    }
                }
            }
            if result >= 0 { return .accepted(score: Int(result)) }
            // pwquality_strerror also frees `aux` where the library allocated it.
            var buffer = [CChar](repeating: 0, count: Int(PWQ_MAX_ERROR_MESSAGE_LEN))
            let text = buffer.withUnsafeMutableBufferPointer { b -> String in
                guard let p = pwquality_strerror(b.baseAddress, b.count, result, aux) else { return "" }
                return String(cString: p)
            }
            return .refused(code: result, message: sentence(text))
        }
    }

    /// libpwquality's message as a sentence ("The password is a palindrome.").
    static func sentence(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return "The password is too weak." }
        return trimmed.hasSuffix(".") ? trimmed : trimmed + "."
    }

    static func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
        guard let s else { return body(nil) }
        return s.withCString { body($0) }
    }
}
