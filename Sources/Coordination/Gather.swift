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
