import NIOCore

/// Reads a PROXY v2 header at the start of a connection from a trusted peer,
/// then hands over: `onHeader` installs the protocol handlers (knowing the
/// real client), this handler removes itself and passes on any bytes that
/// followed the header. A bad header closes the connection.
public final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    let onHeader: (ProxyHeader, ChannelHandlerContext) throws -> Void
    var buffer: ByteBuffer?
    var done = false

    public init(onHeader: @escaping (ProxyHeader, ChannelHandlerContext) throws -> Void) {
        self.onHeader = onHeader
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if done { context.fireChannelRead(data); return }
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        do {
            guard let header = try ProxyHeader.parse(&buffer!) else { return }
            done = true
            try onHeader(header, context)
            let rest = buffer!
            buffer = nil
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            if rest.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(rest))
                context.fireChannelReadComplete()
            }
        } catch {
            context.close(promise: nil)
        }
    }
}
