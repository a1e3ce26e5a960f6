import Communication

extension Communicator {
    /// Every rank's bytes (any length) at `root`, in rank order; nil on the other
    /// ranks. Collective over the group, but only the root ends up holding everything:
    /// for state as large as the model (a compressor's residuals), where an
    /// all-gather would give every rank p copies. Each rank sends its length, then
    /// its bytes (messages from one sender with one tag arrive in order); the root
    /// receives from the ranks in turn. Cost at the root: (p−1)·(2α) + Σ bytes·β.
    public func gatherBytes(_ bytes: [UInt8], root: Int = 0) -> [[UInt8]]? {
        precondition((0..<size).contains(root), "gather root \(root) is not a rank of a group of \(size)")
        let tag = GatherTag.bytes
        guard rank == root else {
            [Int64(bytes.count)].withUnsafeBufferPointer { startSend($0, to: root, tag: tag).wait() }
            bytes.withUnsafeBufferPointer { startSend($0, to: root, tag: tag).wait() }
            return nil
        }
        var gathered = [[UInt8]](repeating: [], count: size)
        gathered[root] = bytes
        for source in 0..<size where source != root {
            var length: [Int64] = [0]
            length.withUnsafeMutableBufferPointer { startReceive(into: $0, from: source, tag: tag).wait() }
            var received = [UInt8](repeating: 0, count: Int(length[0]))
            received.withUnsafeMutableBufferPointer { startReceive(into: $0, from: source, tag: tag).wait() }
            gathered[source] = received
        }
        return gathered
    }
}

/// The tag of `gatherBytes`' messages, apart from the collectives' (0x7C00…).
enum GatherTag {
    static let bytes = 0x7D00
}

extension Communicator {
    /// Fills every rank's `values` with each rank's own part: rank r contributes
    /// `values[ranges[r]]` (empty for a rank that owns none) and receives everyone
    /// else's. How a model split across ranks (pipeline stages, parameter servers) is
    /// made whole for evaluation and the model file. One all-gather of the parts:
    /// each rank receives Σ parts, Σ |ranges| floats.
    public func allgatherRanges(of values: UnsafeMutableBufferPointer<Float>, owned ranges: [Range<Int>],
                                file: StaticString = #fileID, line: UInt = #line) {
        precondition(ranges.count == size, "\(ranges.count) ranges for a group of \(size)")
        let mine = UnsafeMutableBufferPointer(rebasing: values[ranges[rank]])
        let parts = allgatherBytes(Array(UnsafeRawBufferPointer(mine)), file: file, line: line)
        for (r, part) in parts.enumerated() where r != rank {
            precondition(part.count == ranges[r].count * MemoryLayout<Float>.stride, "rank \(r) sent \(part.count) bytes")
            part.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: values[ranges[r]])).copyMemory(from: source)
            }
        }
    }
}
