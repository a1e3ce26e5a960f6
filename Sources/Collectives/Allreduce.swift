import ChorusMPI

/// The all-reduce implementations a caller can choose from.
public enum AllreduceAlgorithm: String, Sendable, CaseIterable {
    /// Pick per call from the message size and node layout (`AllreducePolicy`).
    case auto
    /// Chorus's pipelined ring (`ringAllreduce`): bandwidth-optimal.
    case ring
    /// Reduce in each node, ring across node leaders, broadcast in each node.
    case hierarchical
    /// Recursive doubling (`recursiveDoublingAllreduce`): latency-optimal.
    case recursiveDoubling = "recursive-doubling"
    /// The MPI library's own `MPI_Allreduce`: the baseline.
    case mpi
}

/// How `auto` chooses: an ordered list of rules, the first that applies wins
/// (Horovod's ordered list of enabled algorithms).
public enum AllreducePolicy {
    /// Below this the cost is latency, and recursive doubling's ⌈log2 p⌉ rounds beat the
    /// ring's 2(p−1) steps (plus its length check). Measured crossover on this
    /// 2-core machine: see docs/collectives.md.
    public static let smallMessageBytes = 16 << 10

    /// One rule: a name and when it applies.
    public struct Rule: Sendable {
        public let algorithm: AllreduceAlgorithm
        public let condition: String
        let applies: @Sendable (_ bytes: Int, _ ranks: Int, _ nodes: Int, _ largestNode: Int) -> Bool
    }

    public static let rules: [Rule] = [
        Rule(algorithm: .recursiveDoubling, condition: "message < \(smallMessageBytes / 1024) KiB") { bytes, _, _, _ in
            bytes < smallMessageBytes
        },
        Rule(algorithm: .hierarchical, condition: "more than one node, and a node with several ranks") { _, _, nodes, largest in
            nodes > 1 && largest > 1
        },
        Rule(algorithm: .ring, condition: "otherwise") { _, _, _, _ in true },
    ]

    /// The concrete algorithm `auto` runs for a message of `bytes` bytes.
    public static func choose(bytes: Int, ranks: Int, nodes: Int, largestNode: Int) -> AllreduceAlgorithm {
        rules.first { $0.applies(bytes, ranks, nodes, largestNode) }!.algorithm
    }
}

/// All-reduces over a communicator with any algorithm, keeping the node layout the
/// hierarchical algorithm and `auto` need (computed once: splitting is collective).
public final class Allreducer {
    public let world: Communicator
    public let layout: NodeLayout

    /// Collective: every rank of `world` must create it at the same point.
    public init(world: Communicator, ranksPerNode: Int? = nil) {
        self.world = world
        layout = NodeLayout(world: world, ranksPerNode: ranksPerNode)
    }

    /// The algorithm that runs for `algorithm` (resolving `auto`) at this size.
    public func resolve(_ algorithm: AllreduceAlgorithm, bytes: Int) -> AllreduceAlgorithm {
        guard algorithm == .auto else { return algorithm }
        return AllreducePolicy.choose(bytes: bytes, ranks: world.size, nodes: layout.nodeCount,
                                      largestNode: layout.largestNode)
    }

    /// All-reduces `buffer` in place on every rank.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func allreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ reduction: Reduction = .sum,
                                               algorithm: AllreduceAlgorithm = .auto) {
        switch resolve(algorithm, bytes: buffer.count * MemoryLayout<T>.stride) {
        case .auto, .ring:
            ringAllreduce(buffer, reduction, over: world)
        case .hierarchical:
            hierarchicalAllreduce(buffer, reduction, layout: layout)
        case .recursiveDoubling:
            recursiveDoublingAllreduce(buffer, reduction, over: world)
        case .mpi:
            guard buffer.count > 0 else { return }
            world.mpiAllreduce(buffer, op: .sum)
            if reduction == .average && world.size > 1 { Kernels.scale(buffer, by: 1 / T(world.size)) }
        }
    }
}
