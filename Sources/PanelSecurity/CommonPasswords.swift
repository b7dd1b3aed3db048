/// Passwords that attackers try first: number and keyboard runs, "password"
/// and "welcome" variants, admin defaults, pet names, sports teams, seasons
/// and months. Written for Postcell from general knowledge of what people
/// choose; lower case. `PasswordPolicy` compares a password's core (after
/// lower-casing, stripping leading and trailing digits and symbols, and
/// undoing common letter substitutions) with this list.
enum CommonPasswords {
    static let all: Set<String> = [
        // Number runs and repeats.
        "123456", "1234567", "12345678", "123456789", "1234567890", "0123456789",
        "12345", "123123", "123123123", "123321", "654321", "987654", "987654321",
        "111111", "11111111", "000000", "00000000", "666666", "7777777", "88888888",
        "99999999", "22222222", "121212", "112233", "1122334455", "112233445566",
        "102030", "123654", "147258", "147258369", "159753", "789456", "789456123",
        "741852963", "696969", "131313", "123abc", "abc123", "abcd1234", "abcdef",
        "abcabc", "a123456", "aa123456",
        // Keyboard runs.
        "qwerty", "qwerty123", "qwertyuiop", "qwertyqwerty", "qwe123", "123qwe",
        "qweasd", "qweasdzxc", "123qweasd", "asdf", "asdfgh", "asdfghjkl", "asdf1234",
        "zxcvbn", "zxcvbnm", "qazwsx", "1qaz2wsx", "1qazxsw2", "zaq12wsx", "zaq1xsw2",
        "zaq1zaq1", "!qaz2wsx", "1q2w3e", "1q2w3e4r", "1q2w3e4r5t", "q1w2e3", "q1w2e3r4",
        "q1w2e3r4t5", "qwer1234", "1234qwer", "azerty", "qwertz",
        // "password" and friends.
        "password", "password1", "password12", "password123", "passw0rd", "p@ssw0rd",
        "pass", "pass123", "passpass", "passwort", "mypassword", "newpassword",
        "nopassword", "password!", "secret", "secret123", "changeme", "changeme123",
        "mustchange", "default", "temp", "temp123", "temporary", "letmein",
        "letmein1", "letmein123", "welcome", "welcome1", "welcome123", "login",
        "access", "passport", "trustno1", "trustme", "open", "opensesame",
        // Administrator defaults.
        "admin", "admin123", "adminadmin", "administrator", "root", "rootroot", "toor",
        "test", "test123", "testing", "guest", "user", "master", "master123",
        "superuser", "support", "service", "office", "webmaster", "postmaster",
        "mailadmin", "email", "mail", "mail123", "server", "system", "manager",
        // Feelings and greetings.
        "iloveyou", "iloveyou1", "iloveyou2", "iloveu", "loveme", "lovely", "love",
        "love123", "lovelove", "ihateyou", "fuckyou", "hello", "hello123", "helloworld",
        "whatever", "whatever1", "freedom", "sunshine", "sunshine1", "rainbow",
        "butterfly", "flower", "princess", "princess1", "babygirl", "angel", "angels",
        "lucky", "lucky7", "superstar", "jesus", "blessed",
        // Animals, food, colours.
        "monkey", "monkey123", "dragon", "dragon123", "tiger", "tigger", "buster",
        "bailey", "ginger", "maggie", "pepper", "shadow", "shadow123", "cookie",
        "cheese", "chocolate", "banana", "orange", "purple", "snoopy",
        // Heroes, films and games.
        "superman", "batman", "spiderman", "starwars", "starwars1", "pokemon",
        "naruto", "matrix", "tinkerbell", "blink182", "minecraft", "killer",
        "hunter", "hunter2", "ninja", "pirate",
        // Sports, teams and cars.
        "football", "football1", "baseball", "baseball1", "basketball", "soccer",
        "hockey", "golf", "yankees", "cowboys", "eagles", "steelers", "packers",
        "liverpool", "chelsea", "arsenal", "barcelona", "juventus", "mustang",
        "ferrari", "mercedes", "porsche", "harley",
        // Names often used as passwords.
        "michael", "jennifer", "jessica", "ashley", "daniel", "charlie", "thomas",
        "jordan", "andrew", "joshua", "michelle", "amanda", "hannah", "anthony",
        "justin", "nicole", "robert", "matthew",
        // Brands and places.
        "computer", "internet", "samsung", "google", "facebook", "apple",
        "microsoft", "london", "paris", "berlin", "dallas",
        // Seasons, months and days (usually followed by a year).
        "summer", "winter", "spring", "autumn", "january", "february", "march",
        "april", "june", "july", "august", "september", "october", "november",
        "december", "monday", "friday", "sunday",
    ]
}
