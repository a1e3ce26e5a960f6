import ArgumentParser
import ChorusCLI
import ChorusMPI
import Collectives
import Training

/// `mpirun -n P ddp-train --model lenet`: data-parallel training.
@main
struct DDPTrain: MPICommand {
    static let configuration = CommandConfiguration(
        commandName: "ddp-train",
        abstract: "Data-parallel training: every rank holds the model, gradients are averaged with an all-reduce.",
        discussion: """
            Run under MPI, e.g. `mpirun -n 4 ddp-train --model lenet --epochs 2`. Each rank trains on its \
            shard of every global batch (--batch-size per rank); rank 0 prints progress.
            """)

    @OptionGroup var common: CommonTrainingOptions

    // 32 per rank: with 4 ranks a global batch of 128, for which the default learning
    // rate (0.05, momentum 0.9) takes LeNet past 85% test accuracy in two epochs.
    @Option(parsing: .unconditional, help: "Samples per rank per step (the global batch is this times the number of ranks).")
    var batchSize: Int = 32

    @Option(help: "All-reduce algorithm for the gradients: \(AllreduceAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")).")
    var allreduce: AllreduceAlgorithm = .auto

    @Option(parsing: .unconditional,
            help: "Treat each block of this many consecutive ranks as one node (default: ranks sharing memory; also CHORUS_RANKS_PER_NODE).")
    var ranksPerNode: Int?

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        if let ranksPerNode, ranksPerNode < 1 {
            throw ValidationError("--ranks-per-node must be at least 1 (got \(ranksPerNode))")
        }
    }

    func run(world: Communicator) throws {
        let options = DataParallelOptions(
            model: try common.modelDescription(), dataset: common.datasetChoice, epochs: common.epochs,
            maxSteps: common.steps, batchPerRank: batchSize, learningRate: common.lr, momentum: common.momentum,
            seed: common.seed, allreduce: allreduce, ranksPerNode: ranksPerNode, saveModel: common.saveModel, metricsJSON: common.metricsJson,
            logEvery: common.logEvery, threads: common.threads)
        _ = try DataParallelTrainer(options: options, world: world).run()
    }
}
