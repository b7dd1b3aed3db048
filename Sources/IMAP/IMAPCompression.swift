import CZlib
import NIOCore

/// COMPRESS=DEFLATE (RFC 4978): raw deflate (RFC 1951, no zlib header) both
/// ways once the client asked and heard OK. Two handlers sit between TLS
/// and the IMAP driver: one inflates what comes in, one deflates what goes
/// out, flushing at every write so that each response reaches the client
/// whole (Z_SYNC_FLUSH).
final class DeflateStream {
    enum Direction { case compress, decompress }
    let direction: Direction
    var stream = z_stream()
    var open = false

    /// Output window 2^12 and memLevel 5 keep a compressing stream near
    /// 32 KiB instead of 256 KiB (any inflater reads it); the inflater must
    /// take the client's window, up to 2^15.
    init(_ direction: Direction) throws {
        self.direction = direction
        let version = ZLIB_VERSION
        let size = Int32(MemoryLayout<z_stream>.size)
        let rc: Int32
        switch direction {
        case .compress: rc = deflateInit2_(&stream, 6, Z_DEFLATED, -12, 5, Z_DEFAULT_STRATEGY, version, size)
        case .decompress: rc = inflateInit2_(&stream, -15, version, size)
        }
        guard rc == Z_OK else { throw DeflateError(code: rc) }
        open = true
    }

    deinit {
        guard open else { return }
        switch direction {
        case .compress: deflateEnd(&stream)
        case .decompress: inflateEnd(&stream)
        }
    }

    /// Runs the stream over `input`; the output is bounded by `limit`
    /// (an inflated bomb is an error, not memory).
    func process(_ input: [UInt8], limit: Int = 64 << 20) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        try input.withUnsafeBufferPointer { inp in
            stream.next_in = UnsafeMutablePointer(mutating: inp.baseAddress)
            stream.avail_in = UInt32(inp.count)
            while true {
                var rc = Z_OK
                let produced: Int = try chunk.withUnsafeMutableBufferPointer { buf in
                    stream.next_out = buf.baseAddress
                    stream.avail_out = UInt32(buf.count)
                    rc = direction == .compress ? deflate(&stream, Z_SYNC_FLUSH) : inflate(&stream, Z_SYNC_FLUSH)
                    guard rc == Z_OK || rc == Z_BUF_ERROR || rc == Z_STREAM_END else { throw DeflateError(code: rc) }
                    return buf.count - Int(stream.avail_out)
                }
                out += chunk[0..<produced]
                guard out.count <= limit else { throw DeflateError(code: Z_MEM_ERROR) }
                // Done when the output had room to spare (all flushed), or nothing more can move.
                if rc == Z_STREAM_END || (stream.avail_out > 0 && (stream.avail_in == 0 || produced == 0)) { break }
            }
            stream.next_in = nil
        }
        return out
    }
}

struct DeflateError: Error { var code: Int32 }

final class InflateHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let stream: DeflateStream

    init() throws { stream = try DeflateStream(.decompress) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            let plain = try stream.process(Array(buffer.readableBytesView))
            guard !plain.isEmpty else { return }
            context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: plain)))
        } catch {
            // Not a deflate stream: nothing sensible can follow.
            context.close(promise: nil)
        }
    }
}

final class DeflateHandler: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let stream: DeflateStream

    init() throws { stream = try DeflateStream(.compress) }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        do {
            let packed = try stream.process(Array(buffer.readableBytesView), limit: Int.max)
            context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: packed)), promise: promise)
        } catch {
            promise?.fail(error)
            context.close(promise: nil)
        }
    }
}
