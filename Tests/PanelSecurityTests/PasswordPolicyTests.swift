import Foundation
import Testing
@testable import PanelSecurity

@Suite struct PasswordPolicyTests {
    static let policy = PasswordPolicy()
    static let user = "alice@example.com"

    // Passwords the policy must accept for alice@example.com.
    static let accepted: [String] = [
        "correct horse battery staple",
        "zebra-kettle-violin-77",
        "kL9#mQ2$vX7&pR4!",
        "Tr0ub4dor&3xyz",
        "x7Kp2mQ9vL4t",
        "blue sky jumping fox",
        "Granite!Otter!Lamp42",
        "mississippi-steamboat",
        "Überfluß-Käsekuchen-7",
        "sunflower-meadow",
        "Qwerty!Tr0ub4dor&3-horse",  // a short walk inside a long password is fine
    ]

    @Test(arguments: accepted)
    func acceptsGoodPasswords(_ password: String) {
        let verdict = Self.policy.evaluate(password, user: Self.user, oldPassword: nil)
        #expect(verdict.accepted, "\(verdict.reasons)")
        #expect(verdict.reasons.isEmpty && verdict.messages.isEmpty)
        #expect(verdict.score >= 20 && verdict.score <= 100)
        #expect(verdict.strength >= .weak)
    }

    // Passwords the policy must refuse for alice@example.com, with the reason
    // expected among the verdict's reasons.
    static let refused: [(String, PasswordVerdict.Reason)] = [
        ("short1!", .tooShort(minimum: 10)),
        ("", .tooShort(minimum: 10)),
        (String(repeating: "Zq8!", count: 70), .tooLong(maximum: 256)),
        ("abc\u{0}defghijkl", .controlCharacter),
        ("tab\tseparated-words", .controlCharacter),
        // The user's own names, plain or dressed up.
        ("alice-rocks-2024", .containsUserName),
        ("Al1ce-in-wonderland", .containsUserName),
        ("Example-Garden-88", .containsUserName),
        ("ALICE@EXAMPLE.COM!", .containsUserName),
        // Very common passwords and their usual decorations.
        ("password1234", .commonPassword),
        ("Password123!", .commonPassword),
        ("p@ssw0rd2024", .commonPassword),
        ("iloveyou2024", .commonPassword),
        ("2024Summer!!", .commonPassword),
        ("monkeybanana", .commonPassword),
        ("letmeinletmein", .commonPassword),
        ("1234567890", .commonPassword),
        // Keyboard walks.
        ("qwertyuiop12", .keyboardWalk),
        ("1qaz2wsx3edc", .keyboardWalk),
        ("!QAZ2wsx#EDC", .keyboardWalk),
        ("zse4xdr5cft6", .keyboardWalk),
        ("poiuytrewq", .keyboardWalk),
        ("asdfghjkl;'", .keyboardWalk),
        // Repetition.
        ("abcabcabcabc", .repeatedPattern),
        ("Xy7!Xy7!Xy7!", .repeatedPattern),
        ("Kj3#Kj3#Kj3#a", .repeatedPattern),
        ("zzzzzzzzzzzz", .repeatedPattern),
        // libpwquality's own refusals.
        ("understanding", .dictionaryWord),
        ("Understanding1", .dictionaryWord),
        ("racecarracecar", .palindrome),
        ("tacocat-4-tacocat", .palindrome),
    ]

    @Test(arguments: refused)
    func refusesWeakPasswords(_ password: String, reason: PasswordVerdict.Reason) {
        let verdict = Self.policy.evaluate(password, user: Self.user, oldPassword: nil)
        #expect(!verdict.accepted)
        #expect(verdict.reasons.contains(reason), "got \(verdict.reasons)")
        #expect(verdict.messages.count == verdict.reasons.count)
        #expect(verdict.score <= 10)
        #expect(verdict.strength == .veryWeak)
        // Messages are safe to show: they never quote the password or the user.
        for message in verdict.messages {
            #expect(!message.isEmpty && message.hasSuffix("."))
            if password.count >= 4 { #expect(!message.lowercased().contains(password.lowercased())) }
            #expect(!message.lowercased().contains("alice"))
        }
    }

    @Test func oldPasswordComparisons() {
        let old = "Granite!Otter!Lamp42"
        func reasons(_ new: String) -> [PasswordVerdict.Reason] {
            Self.policy.evaluate(new, user: Self.user, oldPassword: old).reasons
        }
        #expect(reasons(old) == [.sameAsOld])
        #expect(reasons("granite!otter!lamp42") == [.tooSimilarToOld])   // case changes only
        #expect(reasons("Otter!Lamp42Granite!") == [.tooSimilarToOld])   // rotated
        #expect(reasons("Granite!Otter!Lamp43") == [.tooSimilarToOld])   // one character changed
        #expect(reasons("Granite!Otter!Lamp42-xyz") == [.tooSimilarToOld])
        #expect(reasons("Basalt?Heron?Kettle97") == [])
        #expect(reasons("Granite!Otter!Lamp42-plus") == [])             // five new characters
    }

    @Test func userNamesWithoutDomainOrWithShortParts() {
        #expect(Self.policy.evaluate("bob-the-builder-42", user: "bob", oldPassword: nil).reasons.contains(.containsUserName))
        #expect(Self.policy.evaluate("Smith-Harbour-1975", user: "john.smith@mail.example.co.uk", oldPassword: nil).reasons.contains(.containsUserName))
        #expect(Self.policy.evaluate("Smith-Harbour-1975", user: "jane.doe@mail.example.co.uk", oldPassword: nil).accepted)
        // Short words and generic labels are not held against the password:
        // "jo" (too short), "co"/"uk" (too short, top-level), "mail" (generic).
        #expect(Self.policy.evaluate("mail-jo-co-uk-Harbour7", user: "jo@mail.x.co.uk", oldPassword: nil).accepted)
        // Without a user, only the password itself is judged.
        #expect(Self.policy.evaluate("alice-rocks-2024", user: nil, oldPassword: nil).accepted)
    }

    @Test func userWords() {
        #expect(PasswordPatterns.userWords("john.smith+news@mail.example.co.uk") == ["john.smith+news", "john", "smith", "news", "example"])
        #expect(PasswordPatterns.userWords("Alice") == ["alice"])
        #expect(PasswordPatterns.userWords("al@x.io") == [])
    }

    @Test func patternChecksCanBeTurnedOff() {
        let lax = PasswordPolicy(checksPatterns: false)
        // libpwquality alone accepts these (our own checks are what refuse them).
        #expect(lax.evaluate("1qaz2wsx3edc", user: Self.user, oldPassword: nil).accepted)
        #expect(lax.evaluate("iloveyou2024", user: Self.user, oldPassword: nil).accepted)
        #expect(lax.evaluate("alice-rocks-2024", user: Self.user, oldPassword: nil).accepted)
        #expect(!lax.evaluate("understanding", user: Self.user, oldPassword: nil).accepted)
    }

    @Test func minimumLengthIsConfigurable() {
        let strict = PasswordPolicy(minimumLength: 16)
        let verdict = strict.evaluate("Granite!Otter!", user: nil, oldPassword: nil)
        #expect(verdict.reasons == [.tooShort(minimum: 16)])
        #expect(verdict.messages == ["Use at least 16 characters."])
        #expect(strict.evaluate("Granite!Otter!Lamp", user: nil, oldPassword: nil).accepted)
        // Characters, not bytes: ten 2-byte letters are ten characters.
        #expect(PasswordPolicy().evaluate(String(repeating: "é", count: 9), user: nil, oldPassword: nil).reasons == [.tooShort(minimum: 10)])
    }

    @Test func strengthLevels() {
        #expect(PasswordVerdict.Strength(score: 0) == .veryWeak)
        #expect(PasswordVerdict.Strength(score: 19) == .veryWeak)
        #expect(PasswordVerdict.Strength(score: 20) == .weak)
        #expect(PasswordVerdict.Strength(score: 59) == .fair)
        #expect(PasswordVerdict.Strength(score: 60) == .good)
        #expect(PasswordVerdict.Strength(score: 80) == .strong)
        #expect(PasswordVerdict.Strength(score: 100) == .strong)
        #expect(PasswordVerdict.Strength(score: 250) == .strong)
        // A long passphrase is strong; a short accepted one is weaker.
        let long = Self.policy.evaluate("correct horse battery staple", user: Self.user, oldPassword: nil)
        let short = Self.policy.evaluate("x7Kp2mQ9vL", user: Self.user, oldPassword: nil)
        #expect(long.strength == .strong && long.score == 100)
        #expect(short.accepted && short.score < long.score)
        // The meter moves while a too-short password is typed.
        #expect(Self.policy.evaluate("x7Kp2", user: nil, oldPassword: nil).score < Self.policy.evaluate("x7Kp2mQ9v", user: nil, oldPassword: nil).score)
    }

    @Test func commonListIsLowerCaseAndLargeEnough() {
        #expect(CommonPasswords.all.count >= 200)
        #expect(CommonPasswords.all.allSatisfy { $0 == $0.lowercased() && !$0.isEmpty })
    }

    @Test func checksAreSafeFromManyThreads() async {
        let passwords = Self.accepted + Self.refused.map(\.0)
        let expected = passwords.map { Self.policy.evaluate($0, user: Self.user, oldPassword: nil) }
        let results = await withTaskGroup(of: [PasswordVerdict].self) { group in
            for _ in 0..<8 {
                group.addTask { passwords.map { Self.policy.evaluate($0, user: Self.user, oldPassword: nil) } }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 8)
        for r in results { #expect(r == expected) }
    }

    /// The brief: a check (libpwquality with cracklib's dictionary open, plus
    /// ours) costs under 5 ms. The median of repeated runs, per password.
    @Test func costPerCheck() {
        let clock = ContinuousClock()
        var samples: [Duration] = []
        let passwords = ["correct horse battery staple", "password1234", "Tr0ub4dor&3xyz", "understanding", "kL9#mQ2$vX7&pR4!"]
        for _ in 0..<20 {
            for p in passwords {
                samples.append(clock.measure { _ = Self.policy.evaluate(p, user: Self.user, oldPassword: nil) })
            }
        }
        samples.sort()
        let median = samples[samples.count / 2]
        let p90 = samples[samples.count * 9 / 10]
        print("PasswordPolicy.evaluate: median \(median), p90 \(p90), max \(samples.last!) over \(samples.count) checks")
        #expect(median < .milliseconds(5))
    }
}
