import Communication

#if canImport(Glibc)
import Glibc
#endif

/// How the ranks of a communicator sit on nodes: a communicator of the ranks on this
/// node, and one of the node leaders (local rank 0 of each node).
///
/// By default a node is the set of ranks that share memory (`MPI_Comm_split_type`).
/// `ranksPerNode` (or `CHORUS_RANKS_PER_NODE`) forces consecutive blocks of K ranks
/// instead, so one machine can stand in for several nodes; the last node may be
/// smaller (5 ranks, 2 per node: {0,1} {2,3} {4}).
public final class NodeLayout {
    public static let environmentVariable = "CHORUS_RANKS_PER_NODE"

    public let world: any Communicator
    /// The ranks on this rank's node, ordered by world rank.
    public let node: any Communicator
    /// The node leaders; nil on ranks that are not a leader.
    public let leaders: (any Communicator)?
    public let nodeCount: Int
    /// Ranks per node, largest and smallest.
    public let largestNode: Int
    public let smallestNode: Int
    /// Whether the ranks of every node share memory (always, unless a forced grouping
    /// spans machines), so node stages can use a shared window. The same on all ranks.
    public let nodesShareMemory: Bool

    /// Collective: every rank of `world` must call it.
    public init(world: any Communicator, ranksPerNode: Int? = nil) {
        self.world = world
        let forced = ranksPerNode ?? getenv(Self.environmentVariable).flatMap { Int(String(cString: $0)) }
        let machine = world.splitByNode()
        if let k = forced, k >= 1 {
            node = world.split(color: world.rank / k, key: world.rank)!
            // A forced node shares memory if all its ranks are on one machine: same
            // lowest world rank among the ranks sharing memory with them.
            let machineID = machine.allreduce(Int32(world.rank), op: .min)
            let sameMachine = node.allreduce(machineID, op: .min) == node.allreduce(machineID, op: .max)
            nodesShareMemory = world.allAgree(sameMachine)
            machine.release()
        } else {
            node = machine
            nodesShareMemory = true
        }
        let isLeader = node.rank == 0
        leaders = world.split(color: isLeader ? 0 : nil, key: world.rank)
        nodeCount = Int(world.allreduce(Int32(isLeader ? 1 : 0), op: .sum))
        largestNode = Int(world.allreduce(Int32(node.size), op: .max))
        smallestNode = Int(world.allreduce(Int32(node.size), op: .min))
    }

    /// Frees the node and leader groups. Collective over `world`, like creation.
    public func release() {
        node.release()
        leaders?.release()
    }

    public var description: String {
        nodeCount == 1 ? "1 node of \(node.size)"
            : "\(nodeCount) nodes of \(smallestNode == largestNode ? "\(largestNode)" : "\(smallestNode)-\(largestNode)") ranks"
    }
}
