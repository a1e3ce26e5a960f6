import Communication

/// Hierarchical all-reduce for ranks spread over nodes:
///
///     1. reduce inside each node to its leader      (shared memory: fast)
///     2. all-reduce among the node leaders          (the network: slow); a ring,
///        or recursive doubling for small messages (`leadersUseRecursiveDoubling`)
///     3. broadcast inside each node from its leader (shared memory)
///
///     node 0: r0* r1   node 1: r2* r3   node 2: r4*      (* leader)
///        r1 → r0          r3 → r2                        step 1
///        r0 ⇄ r2 ⇄ r4 ring                               step 2
///        r0 → r1          r2 → r3                        step 3
///
/// With N nodes of k ranks, the network carries only the leaders' ring:
/// 2(N−1)/N · n·w bytes per leader instead of 2(Nk−1)/(Nk) · n·w per rank over links
/// shared by k ranks, and N−1 ring latencies instead of Nk−1. The price is the two
/// intra-node stages, cheap on shared memory: with `nodeMemory` they go through the
/// node's shared window (`SharedMemoryAllreduce`) instead of messages. `average` scales once, on the leaders,
/// by 1/(total ranks), before the broadcast, so every rank ends bitwise identical.
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Double)
@_specialize(exported: true, where T == Float16)
@_specialize(exported: true, where T == BFloat16)
public func hierarchicalAllreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ reduction: Reduction = .sum,
                                                       layout: NodeLayout, nodeMemory: SharedMemoryAllreduce? = nil,
                                                       segmentBytes: Int = RingSchedule.defaultSegmentBytes,
                                                       leadersUseRecursiveDoubling: Bool = false) {
    guard layout.world.size > 1 else { return }
    if let nodeMemory {
        nodeMemory.allreduce(buffer, .sum, resultOnRank: 0)
    } else {
        reduce(buffer, .sum, root: 0, over: layout.node, segmentBytes: segmentBytes)
    }
    if let leaders = layout.leaders {
        if leadersUseRecursiveDoubling {
            recursiveDoublingAllreduce(buffer, .sum, over: leaders)
        } else {
            ringAllreduce(buffer, .sum, over: leaders, segmentBytes: segmentBytes)
        }
        if reduction == .average { T.scale(buffer, by: T.reciprocal(of: layout.world.size)) }
    }
    if let nodeMemory {
        nodeMemory.broadcast(buffer, root: 0)
    } else {
        broadcast(buffer, root: 0, over: layout.node)
    }
}
