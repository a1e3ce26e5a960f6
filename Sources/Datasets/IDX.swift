import CZlib

/// A file that is not a valid IDX file, or cannot be read.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An IDX array of unsigned bytes (the MNIST family's format).
///
/// Layout: two zero bytes, a type byte (0x08 = unsigned byte), the number of
/// dimensions, one big-endian UInt32 per dimension, then the data, row-major. The
/// reader accepts gzip-compressed and plain files alike (zlib's gz* functions read
/// both) and checks every part: magic, type, dimensions, and that the data is exactly
/// as long as the dimensions say.
public struct IDXArray: Equatable {
    public let dimensions: [Int]
    public let bytes: [UInt8]

    public init(dimensions: [Int], bytes: [UInt8]) {
        self.dimensions = dimensions
        self.bytes = bytes
    }

    /// Largest element count accepted, a guard against absurd headers in a corrupt
    /// file (1 GiB is far beyond any dataset this format is used for).
    static let maximumElements = 1 << 30

    /// Reads and validates an IDX file.
    public static func read(path: String) throws -> IDXArray {
        try parse(readAll(path: path), name: path)
    }

    /// Validates an IDX image already in memory (decompressed).
    public static func parse(_ data: [UInt8], name: String) throws -> IDXArray {
        guard data.count >= 4 else {
            throw DataError("\(name): truncated IDX file (\(data.count) bytes, the header alone needs 4)")
        }
        guard data[0] == 0, data[1] == 0 else {
            throw DataError("\(name): not an IDX file (wrong magic number \(hex(data[0..<4])), expected 00 00 08 0N)")
        }
        guard data[2] == 0x08 else {
            throw DataError("\(name): unsupported IDX element type 0x\(String(data[2], radix: 16)) (only unsigned bytes, 0x08, are supported)")
        }
        let rank = Int(data[3])
        guard (1...4).contains(rank) else {
            throw DataError("\(name): IDX file claims \(rank) dimensions (expected 1 to 4)")
        }
        let headerLength = 4 + 4 * rank
        guard data.count >= headerLength else {
            throw DataError("\(name): truncated IDX header (\(data.count) bytes, expected \(headerLength))")
        }
        var dimensions: [Int] = []
        var elements = 1
        for d in 0..<rank {
            let at = 4 + 4 * d
            let size = Int(data[at]) << 24 | Int(data[at + 1]) << 16 | Int(data[at + 2]) << 8 | Int(data[at + 3])
            dimensions.append(size)
            elements *= size
            guard elements <= maximumElements else {
                throw DataError("\(name): IDX dimensions \(dimensions) are implausibly large")
            }
        }
        let payload = data.count - headerLength
        guard payload == elements else {
            let what = payload < elements ? "truncated" : "has trailing bytes"
            throw DataError("\(name): IDX file \(what): dimensions \(dimensions) need \(elements) bytes of data, found \(payload)")
        }
        return IDXArray(dimensions: dimensions, bytes: Array(data[headerLength...]))
    }

    private static func hex(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: " ")
    }

    /// The whole (decompressed) content of a gzip or plain file.
    static func readAll(path: String) throws -> [UInt8] {
        guard let file = gzopen(path, "rb") else {
            throw DataError("cannot open \(path)")
        }
        defer { gzclose(file) }
        gzbuffer(file, 1 << 20)
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown error"
                throw DataError("\(path): corrupt or unreadable gzip data (\(message))")
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<Int(n)])
        }
        // gzread stops quietly at a truncated gzip stream; gzerror tells.
        var code: Int32 = 0
        let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
        if code != Z_OK && code != Z_STREAM_END {
            throw DataError("\(path): corrupt or truncated gzip data (\(message))")
        }
        return result
    }
}
