import ArgumentParser
import Collectives
import Communication
import DataParallel
import GradientCompression
import TrainingLoop

/// `mpirun -n P ddp-train --model lenet`: data-parallel training.
public struct DDPTrain: MPICommand {
    public static let configuration = CommandConfiguration(
        commandName: "ddp-train",
        abstract: "Data-parallel training: every rank holds the model, gradients are averaged with an all-reduce.",
        discussion: """
            Run under MPI, e.g. `mpirun -n 4 ddp-train --model lenet --epochs 2`. Each rank trains on its \
            shard of every global batch (--batch-size per rank); rank 0 prints progress.
            """)

    @OptionGroup var common: CommonTrainingOptions
    @OptionGroup var reliability: ReliabilityOptions
    @OptionGroup var compression: CompressionOptions

    // 32 per rank: with 4 ranks a global batch of 128, for which the default learning
    // rate (0.05, momentum 0.9) takes LeNet past 85% test accuracy in two epochs.
    @Option(parsing: .unconditional, help: "Samples per rank per step (the global batch is this times the number of ranks).")
    var batchSize: Int = 32

    @Option(help: "All-reduce algorithm for the gradients: \(AllreduceAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")).")
    var allreduce: AllreduceAlgorithm = .auto

    @OptionGroup var decisionTable: DecisionTableOptions

    @Option(parsing: .unconditional,
            help: "Treat each block of this many consecutive ranks as one node (default: ranks sharing memory; also CHORUS_RANKS_PER_NODE).")
    var ranksPerNode: Int?

    @Option(parsing: .unconditional, help: "Gradient bucket cap in MiB (the first bucket is capped at 1 MiB, as in PyTorch DDP).")
    var bucketMb: Double = Double(BucketPlan.defaultCapBytes) / Double(1 << 20)

    @Flag(help: "Reduce the gradient buckets after backward instead of during it (for comparison; same results).")
    var noOverlap = false

    @Option(parsing: .unconditional, help: "Micro-batches per optimizer step; gradients are communicated only on the last (DDP's no_sync).")
    var accumulate: Int = 1

    public func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        if let ranksPerNode, ranksPerNode < 1 {
            throw ValidationError("--ranks-per-node must be at least 1 (got \(ranksPerNode))")
        }
        guard bucketMb.isFinite, bucketMb > 0 else { throw ValidationError("--bucket-mb must be a positive number (got \(bucketMb))") }
        // A bucket is one MPI message, whose count is a 32-bit integer of floats.
        guard bucketMb <= Double(Self.largestBucketMiB) else {
            throw ValidationError("--bucket-mb must be at most \(Self.largestBucketMiB) (an MPI message of floats), got \(bucketMb)")
        }
        guard accumulate >= 1 else { throw ValidationError("--accumulate must be at least 1 (got \(accumulate))") }
        if allreduce == .mpi, try compression.compression(seed: 0).needsChorusAllreduce {
            throw ValidationError("--compress \(compression.compress) needs one of Chorus's all-reduce algorithms: "
                                  + "MPI_Allreduce cannot add 16-bit floats (--allreduce mpi)")
        }
    }

    /// 2^31 - 1 floats, rounded down to whole MiB: the largest MPI message of floats.
    static let largestBucketMiB = (Int(Int32.max) * 4) >> 20

    public init() {}

    public func run(world: any Communicator) throws {
        _ = try train(on: world) { $0 }
    }

    /// Trains on `communicator` with these flags; `adjust` may change the loop's
    /// options first (a search trial's data, epochs and outputs).
    func train(on communicator: any Communicator, adjust: (LoopOptions) -> LoopOptions) throws -> TrainingLoop.Summary {
        var options = DataParallelOptions(model: try common.modelDescription(), batchPerRank: batchSize)
        options.accumulate = accumulate
        let capBytes = max(4, Int(bucketMb * Double(1 << 20)))
        options.engine = DataParallelEngine.Configuration(
            algorithm: allreduce, ranksPerNode: ranksPerNode, bucketCapBytes: capBytes,
            firstBucketCapBytes: min(BucketPlan.defaultFirstCapBytes, capBytes), overlap: !noOverlap,
            decisionTable: try decisionTable.load(on: communicator))
        let loop = adjust(common.loopOptions(name: "ddp-train", reliability: reliability))
        let compressed = try compression.compression(seed: loop.seed)
        let strategy = DataParallelStrategy(options: options, communicator: communicator, hook: compressed.hook())
        return try Float16Overflow.explaining(compressed) {
            try TrainingLoop(strategy: strategy, options: loop, communicator: communicator).run()
        }
    }
}
