// swift-tools-version:6.0
import PackageDescription

// Dependencies point down (see docs/ARCHITECTURE in ../shared/design/STYLE.md):
// MailCore ← SMTP ← MailStore, MailQueue, DNS ← CellEngine ← postcell-engine.
let package = Package(
    name: "Postcell",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "postcell-engine", targets: ["PostcellEngine"]),
        .executable(name: "postcell", targets: ["Postcell"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        // The control plane: HTTP server, panel templates, PostgreSQL for a fleet.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Foundations: addresses, replies, durable files, PROXY v2, password hashing.
        .target(name: "MailCore", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),
        ]),
        // SMTP grammar, codec and the server session state machine, plus its thin NIO driver.
        .target(name: "SMTP", dependencies: [
            "MailCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // RFC 5322 headers, MIME structure, encoded words, RFC 2231, envelopes (pure Swift).
        .target(name: "MIME"),
        // IMAP grammar and codec (RFC 9051 / RFC 3501); the server comes next.
        // The system zlib, for COMPRESS=DEFLATE (RFC 4978).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "IMAP", dependencies: [
            "MIME", "MailCore", "CZlib",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // POP3 (RFC 1939) codec, session and NIO driver.
        .target(name: "POP3", dependencies: [
            "MailCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // The cell's store: SQLite index + immutable message files, quotas.
        .target(name: "MailStore", dependencies: [
            "MailCore",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // DNS: message codec (RFC 1035, EDNS0) and a stub resolver for the event loops.
        .target(name: "DNS", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // Mail authentication: SPF, DKIM, DMARC, Authentication-Results (verdicts as values).
        .target(name: "MailAuth", dependencies: [
            "DNS", "MailCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),
        ]),
        // The outbound queue: durable spool and per-recipient state, MX routes,
        // retries, DSNs, and delivery over the SMTP client.
        .target(name: "MailQueue", dependencies: [
            "MailCore", "SMTP", "DNS", "MIME",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Engine wiring: configuration, listeners, backends, reload, shutdown.
        .target(name: "CellEngine", dependencies: [
            "MailCore", "SMTP", "IMAP", "POP3", "MailStore", "MailQueue", "DNS", "MailAuth", "MIME",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "PostcellEngine", dependencies: [
            "CellEngine", "MailCore", "MailStore", "MailQueue", "DNS", "MailAuth",
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // libpwquality (with cracklib's dictionary) for the password policy.
        .systemLibrary(name: "CPWQuality", path: "Sources/CPWQuality", pkgConfig: "pwquality", providers: [.apt(["libpwquality-dev"])]),
        // libqrencode draws the TOTP set-up link as a QR code.
        .systemLibrary(name: "CQRencode", path: "Sources/CQRencode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        // Panel security pieces as values: TOTP (RFC 6238), password policy,
        // self-signed certificates, login throttling, CSRF tokens, QR codes.
        .target(name: "PanelSecurity", dependencies: [
            "CPWQuality", "CQRencode", "MailCore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
        ]),
        // The provisioning protocol and its local backend (child processes in
        // bubblewrap sandboxes), the reconciler, and the engine admin API client.
        .target(name: "Provisioning", dependencies: [
            "MailCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The control plane: database, model, service layer, panels, REST API.
        .target(name: "ControlPlane", dependencies: [
            "MailCore", "MIME", "SMTP", "PanelSecurity", "Provisioning",
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "Mustache", package: "swift-mustache"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "Postcell", dependencies: [
            "ControlPlane", "Provisioning", "PanelSecurity", "MailCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "PanelSecurityTests", dependencies: ["PanelSecurity"]),
        .testTarget(name: "ProvisioningTests", dependencies: ["Provisioning"]),
        .testTarget(name: "ControlPlaneTests", dependencies: [
            "ControlPlane", "PanelSecurity", "Provisioning",
            .product(name: "Mustache", package: "swift-mustache"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .testTarget(name: "MailCoreTests", dependencies: ["MailCore", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "SMTPTests", dependencies: [
            "SMTP", "MailCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        // What several test targets share (a seeded random generator).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "IMAPTests", dependencies: ["IMAP", "MIME", "TestSupport"]),
        .testTarget(name: "POP3Tests", dependencies: ["POP3"]),
        .testTarget(name: "DNSTests", dependencies: ["DNS", "TestSupport"]),
        .testTarget(name: "MIMETests", dependencies: ["MIME"]),
        .testTarget(name: "MailAuthTests", dependencies: ["MailAuth", "DNS", "TestSupport"]),
        .testTarget(name: "CellEngineTests", dependencies: [
            "CellEngine", "MailCore", "MailStore", "MailQueue", "MailAuth", "SMTP",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "MailQueueTests", dependencies: ["MailQueue", "SMTP"]),
        .testTarget(name: "MailStoreTests", dependencies: ["MailStore", "MailQueue", "MailCore"]),
    ]
)
