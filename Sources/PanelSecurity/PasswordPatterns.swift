/// The checks libpwquality does not make (see `PasswordPolicy`): the user's
/// own name and domain, keyboard walks, repeated patterns and very common
/// passwords. Each works on lower-cased Unicode scalars and answers a
/// yes/no; none keeps or prints the password.
enum PasswordPatterns {
    // MARK: Normalising

    /// Letter substitutions people use to dress up a word ("p@ssw0rd").
    static let substitutions: [Character: Character] = [
        "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
        "@": "a", "$": "s", "!": "i", "+": "t",
    ]

    static func undoSubstitutions(_ text: String) -> String {
        String(text.map { substitutions[$0] ?? $0 })
    }

    /// The password without leading and trailing digits and symbols:
    /// "Summer2024!" → "summer" (after lower-casing).
    static func core(_ lower: String) -> Substring {
        let isDecoration: (Character) -> Bool = { !$0.isLetter }
        guard let first = lower.firstIndex(where: { !isDecoration($0) }),
              let last = lower.lastIndex(where: { !isDecoration($0) })
        else { return "" }
        return lower[first...last]
    }

    // MARK: The user's own names

    /// The words of an account name worth refusing in its password: the whole
    /// local part, its parts split at `. _ - +`, and the domain's labels
    /// except the top-level one. Words shorter than `minimumWordLength`, and
    /// generic host labels ("mail", "www"), are left out.
    static func userWords(_ user: String, minimumWordLength: Int = 3) -> [String] {
        let lower = user.lowercased()
        let local: Substring
        var labels: [Substring] = []
        if let at = lower.lastIndex(of: "@") {
            local = lower[..<at]
            labels = lower[lower.index(after: at)...].split(separator: ".")
            if !labels.isEmpty { labels.removeLast() }  // the TLD
        } else {
            local = lower[...]
        }
        let generic: Set<Substring> = ["mail", "www", "smtp", "imap", "mx", "webmail"]
        var words: [String] = []
        func add<S: StringProtocol>(_ w: S) {
            let s = String(w)
            if s.count >= minimumWordLength, !words.contains(s) { words.append(s) }
        }
        add(local)
        for part in local.split(whereSeparator: { ".-_+".contains($0) }) { add(part) }
        for label in labels where label.count >= 4 && !generic.contains(label) { add(label) }
        return words
    }

    /// True when the password contains one of the user's words, as typed or
    /// with letter substitutions undone ("Al1ce-2024" contains "alice").
    static func containsUserWord(_ lower: String, words: [String]) -> Bool {
        let plain = undoSubstitutions(lower)
        return words.contains { lower.contains($0) || plain.contains($0) }
    }

    // MARK: Keyboard walks

    /// A US keyboard's key grid; shifted symbols are mapped to their keys.
    static let keyRows: [String] = ["1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./"]
    static let shifted: [Character: Character] = {
        var m: [Character: Character] = [:]
        for (s, k) in zip("!@#$%^&*()_+{}:\"<>?", "1234567890-=[];',./") { m[s] = k }
        return m
    }()
    static let keyPositions: [Character: (row: Int, column: Int)] = {
        var m: [Character: (row: Int, column: Int)] = [:]
        for (r, row) in keyRows.enumerated() {
            for (c, key) in row.enumerated() { m[key] = (r, c) }
        }
        return m
    }()

    /// The number of characters that belong to keyboard walks: runs of at
    /// least 4 neighbouring keys along a row ("qwer", "7654") or at least 3
    /// down or up a column ("1qaz", "wsx", "zaq1") or its slant ("zse4"),
    /// each run keeping one direction. Column runs may be shorter because words rarely contain
    /// them, while row triples ("ert", "tre") are in many words.
    static func keyboardWalkLength(_ lower: String) -> Int {
        let keys = lower.map { c -> (row: Int, column: Int)? in keyPositions[shifted[c] ?? c] }
        var covered = [Bool](repeating: false, count: keys.count)
        var start = 0
        var step: (Int, Int)?
        func close(_ end: Int) {
            // A run of keys[start..<end] moving by `step`.
            guard let step else { return }
            let length = end - start
            if length >= (step.0 == 0 ? 4 : 3) {
                for i in start..<end { covered[i] = true }
            }
        }
        for i in 1..<max(keys.count, 1) {
            guard let a = keys[i - 1], let b = keys[i] else {
                close(i); step = nil; start = i; continue
            }
            let d = (b.row - a.row, b.column - a.column)
            // Along a row, straight down or up a column, or along the
            // keyboard's slant ("zse4": down-left/up-right in this grid).
            let isNeighbour = (d.0 == 0 && abs(d.1) == 1) || (abs(d.0) == 1 && (d.1 == 0 || d.1 == -d.0))
            if let s = step, isNeighbour, s == d { continue }
            close(i)
            if isNeighbour { start = i - 1; step = d } else { start = i; step = nil }
        }
        close(keys.count)
        return covered.filter { $0 }.count
    }

    // MARK: Repetition

    /// The length of the longest stretch that repeats one unit at least twice
    /// ("abcabcabc" → 9, "passwordpassword1" → 16, "aaaa" → 4).
    static func longestRepetition(_ lower: String) -> Int {
        let s = Array(lower.unicodeScalars)
        let n = s.count
        guard n >= 2 else { return 0 }
        var best = 0
        for period in 1...(n / 2) {
            var run = 0  // consecutive i with s[i] == s[i - period]
            for i in period..<n {
                if s[i] == s[i - period] {
                    run += 1
                    if run >= period { best = max(best, run + period) }
                } else {
                    run = 0
                }
            }
        }
        return best
    }

    // MARK: Common passwords

    /// True when the password is, or is mostly, a very common password: its
    /// lower-cased form, its core (no leading or trailing digits and
    /// symbols) or either with letter substitutions undone is on the list;
    /// or a listed password of 6 characters or more makes up at least half
    /// of it ("iloveyoutoo").
    static func isCommon(_ lower: String) -> Bool {
        let core = String(core(lower))
        let candidates = [lower, core, undoSubstitutions(lower), undoSubstitutions(core)]
        if candidates.contains(where: { CommonPasswords.all.contains($0) }) { return true }
        let plain = undoSubstitutions(lower)
        let length = lower.count
        return CommonPasswords.all.contains { word in
            word.count >= 6 && word.count * 2 >= length && (lower.contains(word) || plain.contains(word))
        }
    }
}
