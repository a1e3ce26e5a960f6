import Coordination
import NeuralNet

#if canImport(Glibc)
import Glibc
#endif

/// A run would need more memory than a rank's share of its node.
public struct MemoryShortfall: Error, CustomStringConvertible {
    /// What needs it ("the model and a batch of 64").
    public let what: String
    public let neededBytes: Int
    public let availableBytes: Int
    public let ranksOnNode: Int

    public var description: String {
        "\(what) need about \(Formatting.gigabytes(neededBytes)) per rank, but each of the \(ranksOnNode) "
            + "rank\(ranksOnNode == 1 ? "" : "s") on this node has \(Formatting.gigabytes(availableBytes)) "
            + "(\(Formatting.gigabytes(availableBytes * ranksOnNode)) of memory in all)"
    }
}

/// Refuses, before allocating, a model and batch that cannot fit: a 300 GB request
/// would otherwise end every rank in the allocator with a crash dump.
public enum MemoryBudget {
    /// Floats per parameter: its value and gradient, an optimizer's two buffers at
    /// most (Adam), and a copy while a checkpoint or model file is encoded.
    static let floatsPerParameter = 5
    /// Floats per activation: the output a layer keeps for backward, and the
    /// gradient of the same size flowing back.
    static let floatsPerActivation = 2

    /// The bytes training `footprint` with `items` batch items in flight needs.
    public static func bytes(for footprint: ModelFootprint, items: Int) -> Int {
        let parameterBytes = footprint.parameters.multipliedReportingOverflow(by: floatsPerParameter * 4)
        let activationBytes = footprint.activationsPerItem.multipliedReportingOverflow(by: max(items, 1))
        guard !parameterBytes.overflow, !activationBytes.overflow else { return Int.max }
        let perBatch = activationBytes.partialValue.multipliedReportingOverflow(by: floatsPerActivation * 4)
        guard !perBatch.overflow else { return Int.max }
        let (total, overflow) = parameterBytes.partialValue.addingReportingOverflow(perBatch.partialValue)
        return overflow ? Int.max : total
    }

    /// Throws when `bytes` exceed a rank's share of the node's physical memory.
    public static func check(_ bytes: Int, for what: String, ranksOnNode: Int) throws {
        let share = physicalMemory / max(ranksOnNode, 1)
        if bytes > share {
            throw MemoryShortfall(what: what, neededBytes: bytes, availableBytes: share, ranksOnNode: ranksOnNode)
        }
    }

    static var physicalMemory: Int { sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE)) }
}
