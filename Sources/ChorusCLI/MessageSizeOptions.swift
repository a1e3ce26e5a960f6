import ArgumentParser

/// The message sizes a benchmark sweeps: `--min-bytes`, `--max-bytes`, `--step-factor`.
public struct MessageSizeOptions: ParsableArguments {
    @Option(help: "Smallest message (bytes; K, M, G suffixes).")
    public var minBytes = ByteCount(bytes: 4)

    @Option(help: "Largest message.")
    public var maxBytes = ByteCount(bytes: 64 << 20)

    @Option(parsing: .unconditional, help: "Multiply the size by this between rows.")
    public var stepFactor: Int = 2

    public init() {}

    public func validate() throws {
        guard minBytes.bytes >= 4 else { throw ValidationError("--min-bytes must be at least 4 (one float32), got \(minBytes.bytes)") }
        // The sizes are whole float32 vectors: anything else would be measured as the
        // size below without a word.
        for (flag, size) in [("--min-bytes", minBytes), ("--max-bytes", maxBytes)] where size.bytes % 4 != 0 {
            throw ValidationError("\(flag) must be a multiple of 4 bytes (whole float32 elements), got \(size.bytes)")
        }
        guard minBytes <= maxBytes else { throw ValidationError("--min-bytes (\(minBytes)) is larger than --max-bytes (\(maxBytes))") }
        guard maxBytes.bytes <= 1 << 32 else { throw ValidationError("--max-bytes must be at most 4G") }
        guard stepFactor >= 2 else { throw ValidationError("--step-factor must be at least 2 (got \(stepFactor))") }
    }

    /// Sizes from min to max, multiplied by the step factor, rounded down to whole
    /// float32 elements.
    public var sizes: [Int] {
        var sizes: [Int] = []
        var bytes = minBytes.bytes
        while bytes <= maxBytes.bytes {
            sizes.append(bytes / 4 * 4)
            bytes *= stepFactor
        }
        return sizes
    }
}
