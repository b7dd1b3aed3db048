import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import Mustache
import NIOCore
import NIOSSL

/// Builds the HTTPS application: panels, API, OpenAPI document, static files.
public enum ControlServer {
    public static func router(service: ControlService, library: MustacheLibrary, templatesDirectory: String) throws -> Router<PanelContext> {
        let router = Router(context: PanelContext.self)
        router.add(middleware: SessionMiddleware(service: service))
        let views = Views(library: library, providerDomain: service.config.providerDomain)
        let customer = CustomerRoutes(service: service, views: views)
        customer.register(router)
        StaffRoutes(service: service, views: views, customer: customer).register(router)
        let openAPI = try Data(contentsOf: URL(fileURLWithPath: templatesDirectory + "/api/openapi.json"))
        APIRoutes(service: service, openAPI: ByteBuffer(bytes: openAPI)).register(router)
        for (name, type) in [("panel.css", "text/css; charset=utf-8"), ("panel.js", "text/javascript; charset=utf-8")] {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: templatesDirectory + "/static/" + name))
            router.get("/static/\(name)") { _, _ in
                Response(status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=3600"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            }
        }
        router.get("/healthz") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        return router
    }

    /// TLS from a PEM certificate chain and key.
    public static func tlsConfiguration(certificatePEM: String, keyPEM: String) throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        return tls
    }

    public static func application(router: Router<PanelContext>, tls: TLSConfiguration, host: String, port: Int, logger: Logger,
                                   onServerRunning: @escaping @Sendable (Channel) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        Application(router: router, server: try .tls(.http1(), tlsConfiguration: tls),
                    configuration: .init(address: .hostname(host, port: port), serverName: nil),
                    onServerRunning: onServerRunning, logger: logger)
    }
}
