import Communication

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
    /// Through a shared-memory window, no messages (`SharedMemoryAllreduce`). On
    /// several nodes: the hierarchical algorithm, whose node stages use shared memory.
    case sharedMemory = "shared-memory"
    /// The transport's own all-reduce (`MPI_Allreduce` on MPI ranks): the baseline.
    case mpi
}

/// How `auto` chooses: an ordered list of rules, the first that applies wins
/// (Horovod's ordered list of enabled algorithms).
public enum AllreducePolicy {
    /// Below this the cost is latency, and recursive doubling's ⌈log2 p⌉ rounds beat the
    /// ring's 2(p−1) steps. Measured here (docs/collectives.md): recursive doubling is
    /// faster than the ring up to 64 KiB at 2 and 4 ranks and slower from 256 KiB,
    /// where moving the whole vector every round costs more than the latencies saved.
    public static let smallMessageBytes = 128 << 10

    /// One rule: a name and when it applies.
    public struct Rule: Sendable {
        public let algorithm: AllreduceAlgorithm
        public let condition: String
        let applies: @Sendable (_ situation: Situation) -> Bool
    }

    /// What a rule may look at: the same on every rank, so every rank picks the same.
    public struct Situation: Sendable {
        public let bytes: Int
        public let ranks: Int
        public let nodes: Int
        public let largestNode: Int
        /// The nodes' ranks share memory through a window.
        public let sharedMemory: Bool
        /// The transport can add the data (not 16-bit floats), so `mpi` may run.
        public var transportReduces = true

        public init(bytes: Int, ranks: Int, nodes: Int, largestNode: Int, sharedMemory: Bool, transportReduces: Bool = true) {
            self.bytes = bytes
            self.ranks = ranks
            self.nodes = nodes
            self.largestNode = largestNode
            self.sharedMemory = sharedMemory
            self.transportReduces = transportReduces
        }
    }

    /// Two ranks of one node, messages of 2 to 16 MiB: `MPI_Allreduce`. Both are bound
    /// by memory bandwidth there (the message no longer fits in cache), and Open MPI's
    /// shared-memory transport copies each byte once through the kernel (CMA) where the
    /// window costs two copies: per rank about 3.5 bytes of memory traffic per message
    /// byte against the window's 4.5. Measured on the 2-core VM (docs/collectives.md):
    /// the window at 0.75-0.91x MPI from 2 to 16 MiB, ahead below 2 MiB (latency) and
    /// 1.6x from 32 MiB, where Open MPI changes algorithm; at 4 ranks the window leads
    /// at every size.
    public static let twoRankTransportRange = (2 << 20)...(16 << 20)

    public static let rules: [Rule] = [
        Rule(algorithm: .mpi, condition: "one node of 2 ranks, 2-16 MiB (MPI's single copy moves fewer bytes)") {
            $0.nodes == 1 && $0.ranks == 2 && $0.transportReduces && twoRankTransportRange.contains($0.bytes)
        },
        Rule(algorithm: .sharedMemory, condition: "one node whose ranks share memory") {
            $0.nodes == 1 && $0.sharedMemory
        },
        Rule(algorithm: .hierarchical,
             condition: "several nodes, one with several ranks (leaders: recursive doubling below \(smallMessageBytes >> 10) KiB, else ring)") {
            $0.nodes > 1 && $0.largestNode > 1
        },
        Rule(algorithm: .recursiveDoubling, condition: "message < \(smallMessageBytes >> 10) KiB") {
            $0.bytes < smallMessageBytes
        },
        Rule(algorithm: .ring, condition: "otherwise") { _ in true },
    ]

    /// The concrete algorithm `auto` runs for a message of `bytes` bytes: the measured
    /// table's when it covers the situation, else the first rule that applies. A table's
    /// `mpi` is skipped for data the transport cannot add (16-bit floats), and its
    /// `shared-memory` where the ranks share no window.
    public static func choose(bytes: Int, ranks: Int, nodes: Int, largestNode: Int, sharedMemory: Bool,
                              table: AllreduceDecisionTable? = nil, transportReduces: Bool = true) -> AllreduceAlgorithm {
        let situation = Situation(bytes: bytes, ranks: ranks, nodes: nodes, largestNode: largestNode, sharedMemory: sharedMemory,
                                  transportReduces: transportReduces)
        if let measured = table?.choose(situation),
           !(measured == .mpi && !transportReduces), !(measured == .sharedMemory && !sharedMemory) {
            return measured
        }
        return rules.first { $0.applies(situation) }!.algorithm
    }
}

/// All-reduces over a communicator with any algorithm, keeping the node layout the
/// hierarchical algorithm and `auto` need (computed once: splitting is collective).
public final class Allreducer {
    public let world: any Communicator
    public let layout: NodeLayout
    /// Segment size of the pipelined ring (`RingSchedule.defaultSegmentBytes`); must be
    /// the same on every rank.
    public let ringSegmentBytes: Int
    /// The node's shared window, when the node has several ranks sharing memory.
    public let nodeMemory: SharedMemoryAllreduce?
    /// Measured choices for `auto` (nil: the built-in rules). The same on every rank:
    /// its owner agrees on `digest` before the first call.
    public let decisionTable: AllreduceDecisionTable?

    /// Collective: every rank of `world` must create it at the same point, and release
    /// it at the same point (the shared window is freed collectively).
    public init(world: any Communicator, ranksPerNode: Int? = nil, ringSegmentBytes: Int = RingSchedule.defaultSegmentBytes,
                sharedMemoryPieceBytes: Int = SharedMemoryAllreduce.defaultPieceBytes, useSharedMemory: Bool = true,
                decisionTable: AllreduceDecisionTable? = nil) {
        self.world = world
        self.decisionTable = decisionTable
        self.ringSegmentBytes = ringSegmentBytes
        layout = NodeLayout(world: world, ranksPerNode: ranksPerNode)
        let windowed = useSharedMemory && layout.nodesShareMemory && layout.largestNode > 1
        nodeMemory = windowed ? SharedMemoryAllreduce(node: layout.node, worldRank: world.rank,
                                                       pieceBytes: sharedMemoryPieceBytes) : nil
    }

    /// Frees the shared window and the node groups. Collective, like creation: every
    /// rank calls it at the same point, after its last all-reduce.
    public func release() {
        nodeMemory?.release()
        layout.release()
    }

    /// The algorithm that runs for `algorithm` (resolving `auto`) at this size.
    public func resolve(_ algorithm: AllreduceAlgorithm, bytes: Int, transportReduces: Bool = true) -> AllreduceAlgorithm {
        guard algorithm == .auto else { return algorithm }
        return AllreducePolicy.choose(bytes: bytes, ranks: world.size, nodes: layout.nodeCount,
                                      largestNode: layout.largestNode, sharedMemory: nodeMemory != nil,
                                      table: decisionTable, transportReduces: transportReduces)
    }

    /// All-reduces `buffer` in place on every rank.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    @_specialize(exported: true, where T == Float16)
    @_specialize(exported: true, where T == BFloat16)
    public func allreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ reduction: Reduction = .sum,
                                               algorithm: AllreduceAlgorithm = .auto) {
        let bytes = buffer.count * MemoryLayout<T>.stride
        switch resolve(algorithm, bytes: bytes, transportReduces: T.scalarKind.transportReduces) {
        case .auto, .ring:
            ringAllreduce(buffer, reduction, over: world, segmentBytes: ringSegmentBytes)
        case .sharedMemory where layout.nodeCount == 1 && nodeMemory != nil:
            nodeMemory!.allreduce(buffer, reduction)
        case .hierarchical, .sharedMemory:
            hierarchicalAllreduce(buffer, reduction, layout: layout, nodeMemory: nodeMemory, segmentBytes: ringSegmentBytes,
                                  leadersUseRecursiveDoubling: bytes < AllreducePolicy.smallMessageBytes)
        case .recursiveDoubling:
            recursiveDoublingAllreduce(buffer, reduction, over: world)
        case .mpi:
            guard buffer.count > 0 else { return }
            precondition(T.scalarKind.transportReduces, "MPI_Allreduce cannot reduce \(T.scalarKind): choose one of Chorus's algorithms")
            world.allreduce(buffer, op: .sum)
            if reduction == .average && world.size > 1 { T.scale(buffer, by: T.reciprocal(of: world.size)) }
        }
    }
}
