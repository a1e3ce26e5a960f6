import Communication

/// Collectives with a root: broadcast from it and reduce to it.

/// Broadcast: small messages go down a binomial tree (⌈log2 p⌉ rounds of the whole
/// message); large ones are scattered from the root and then all-gathered around the
/// ring (van de Geijn), so the root sends each byte once instead of log2 p times.
///
///     tree:              T = ⌈log2 p⌉·(α + n·w·β)
///     scatter+allgather: T ≈ (p−1)·α·2 + 2·(p−1)/p·n·w·β
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Double)
@_specialize(exported: true, where T == Float16)
@_specialize(exported: true, where T == BFloat16)
public func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int, over group: any Communicator) {
    let p = group.size
    precondition((0..<p).contains(root), "broadcast root \(root) is not a rank of a group of \(p)")
    group.checkSameLengthAsNeighbours(buffer.count, operation: "broadcast")
    guard p > 1, buffer.count > 0 else { return }
    if buffer.count * MemoryLayout<T>.stride <= BroadcastTuning.treeMaximumBytes || buffer.count < p {
        treeBroadcast(buffer, root: root, over: group)
    } else {
        scatter(buffer, root: root, over: group)
        ringAllgather(buffer, over: group)
    }
}

public enum BroadcastTuning {
    /// Up to 64 KiB the tree's log2 p latencies beat the ring's 2(p−1); above it the
    /// root's link is the bottleneck and scatter + all-gather relieves it.
    public static let treeMaximumBytes = 64 << 10
}

/// Reduce to `root`: a ring reduce-scatter, then every rank sends its reduced chunk to
/// the root. Each rank sends (p−1)/p·n·w + n·w/p bytes; the root receives n·w·(p−1)/p.
/// Other ranks' buffers are left holding partial sums.
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Double)
@_specialize(exported: true, where T == Float16)
@_specialize(exported: true, where T == BFloat16)
public func reduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ reduction: Reduction = .sum,
                                                         root: Int, over group: any Communicator,
                                                         segmentBytes: Int = RingSchedule.defaultSegmentBytes) {
    let p = group.size
    precondition((0..<p).contains(root), "reduce root \(root) is not a rank of a group of \(p)")
    guard p > 1 else { return }
    let mine = ringReduceScatter(buffer, reduction, over: group, segmentBytes: segmentBytes)
    let chunks = Chunking(count: buffer.count, parts: p)
    if group.rank == root {
        let receives = (0..<p).filter { $0 != root }.map { source in
            group.startReceive(into: UnsafeMutableBufferPointer(rebasing: buffer[chunks.range(source)]), from: source,
                               tag: CollectiveTag.scatterGather)
        }
        for receive in receives { receive.wait() }
    } else {
        group.startSend(UnsafeBufferPointer(rebasing: buffer[mine]), to: root, tag: CollectiveTag.scatterGather).wait()
    }
}

/// Binomial-tree broadcast over ranks renumbered so the root is 0.
func treeBroadcast<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int, over group: any Communicator) {
    let p = group.size
    let relative = (group.rank - root + p) % p
    var mask = 1
    while mask < p {
        if relative & mask != 0 {
            group.startReceive(into: buffer, from: (relative - mask + root) % p, tag: CollectiveTag.tree).wait()
            break
        }
        mask <<= 1
    }
    mask >>= 1
    var sends: [Transfer] = []
    while mask > 0 {
        if relative + mask < p {
            sends.append(group.startSend(UnsafeBufferPointer(buffer), to: (relative + mask + root) % p, tag: CollectiveTag.tree))
        }
        mask >>= 1
    }
    for send in sends { send.wait() }
}

/// The root sends chunk i of the buffer to rank i.
func scatter<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int, over group: any Communicator) {
    let chunks = Chunking(count: buffer.count, parts: group.size)
    if group.rank == root {
        let sends = (0..<group.size).filter { $0 != root }.map { destination in
            group.startSend(UnsafeBufferPointer(rebasing: buffer[chunks.range(destination)]), to: destination,
                            tag: CollectiveTag.scatterGather)
        }
        for send in sends { send.wait() }
    } else {
        group.startReceive(into: UnsafeMutableBufferPointer(rebasing: buffer[chunks.range(group.rank)]), from: root,
                           tag: CollectiveTag.scatterGather).wait()
    }
}
