import ChorusMPI
import Foundation
import Collectives
import Datasets
import NeuralNet

/// Which data to train on.
public enum DatasetChoice: Equatable, Sendable {
    case fashionMNIST(directory: String)
    case synthetic

    /// Loads the splits (on every rank: each reads its own copy).
    public func load(seed: UInt64) throws -> DatasetSplits {
        switch self {
        case .fashionMNIST(let directory): try FashionMNIST.load(directory: directory)
        case .synthetic: try SyntheticImages.make(seed: seed)
        }
    }
}

/// Everything a data-parallel run needs, already validated by the command line.
public struct DataParallelOptions: Sendable {
    public var model: ModelDescription
    public var dataset: DatasetChoice
    public var epochs: Int
    /// Stop after this many optimizer steps in total (nil: run all epochs).
    public var maxSteps: Int?
    public var batchPerRank: Int
    public var learningRate: Float
    public var momentum: Float
    public var seed: UInt64
    public var allreduce: AllreduceAlgorithm
    /// Override the node grouping (nil: ranks sharing memory form a node).
    public var ranksPerNode: Int?
    public var saveModel: String?
    public var metricsJSON: String?
    public var logEvery: Int
    /// OpenBLAS threads per rank (nil: the node's cores divided by its ranks).
    public var threads: Int?

    public init(model: ModelDescription, dataset: DatasetChoice, epochs: Int, maxSteps: Int?, batchPerRank: Int,
                learningRate: Float, momentum: Float, seed: UInt64, allreduce: AllreduceAlgorithm,
                ranksPerNode: Int? = nil, saveModel: String?, metricsJSON: String?, logEvery: Int, threads: Int?) {
        self.model = model
        self.dataset = dataset
        self.epochs = epochs
        self.maxSteps = maxSteps
        self.batchPerRank = batchPerRank
        self.learningRate = learningRate
        self.momentum = momentum
        self.seed = seed
        self.allreduce = allreduce
        self.ranksPerNode = ranksPerNode
        self.saveModel = saveModel
        self.metricsJSON = metricsJSON
        self.logEvery = logEvery
        self.threads = threads
    }
}

/// Synchronous data-parallel SGD: every rank holds the whole model, computes
/// gradients on its shard of each global batch, and the gradients are averaged
/// across ranks with an all-reduce before every rank applies the same update.
///
/// One step:
///
///     zero gradients → forward (own B samples) → loss → backward
///       → all-reduce(average) the flat gradient buffer → optimizer step
///
/// Because the sampler gives p ranks with batch B exactly the samples one process
/// with batch p·B would see, and every rank starts from rank 0's parameters, the
/// ranks stay identical and the run equals single-process training on the global
/// batch (up to float summation order).
public final class DataParallelTrainer {
    public let options: DataParallelOptions
    public let world: Communicator

    public init(options: DataParallelOptions, world: Communicator) {
        self.options = options
        self.world = world
    }

    /// What a finished run measured.
    public struct Summary {
        public var steps = 0
        public var samples = 0
        public var trainSeconds = 0.0
        public var commSeconds = 0.0
        public var finalLoss = Double.nan
        public var testAccuracy = Double.nan
        public var wallSeconds = 0.0
    }

    public func run() throws -> Summary {
        let started = MPIRuntime.wallTime()
        let rank = world.rank, ranks = world.size
        let allreducer = Allreducer(world: world, ranksPerNode: options.ranksPerNode)
        configureThreads(layout: allreducer.layout)
        keepLargeAllocationsInHeap()

        let model = try options.model.build(seed: options.seed)
        let data = try world.together("loading \(datasetName)") { try options.dataset.load(seed: options.seed) }
        let sampler = try DistributedSampler(sampleCount: data.train.count, ranks: ranks, rank: rank,
                                             batchPerRank: options.batchPerRank, seed: options.seed)
        guard data.train.imageShape == options.model.inputShape else {
            throw FileError("\(data.name) images are \(data.train.imageShape), the model expects \(options.model.inputShape)")
        }
        let parameters = model.parameters
        // Every rank starts from rank 0's parameters.
        world.mpiBroadcast(parameters.values, root: 0)
        let optimizer = SGD(learningRate: options.learningRate, momentum: options.momentum)

        let totalSteps = min(options.maxSteps ?? Int.max, options.epochs * sampler.stepsPerEpoch)
        ConsoleLog.info("""
            ddp-train: \(options.model) (\(parameters.count) parameters) on \(data.name) \
            (\(data.train.count) train / \(data.test.count) test images)
            \(ranks) rank\(ranks == 1 ? "" : "s") x batch \(options.batchPerRank) = global batch \(sampler.globalBatch), \
            \(sampler.stepsPerEpoch) steps/epoch, \(totalSteps) steps, SGD lr \(options.learningRate) momentum \(options.momentum), \
            \(options.allreduce.rawValue) all-reduce (\(allreducer.resolve(options.allreduce, bytes: parameters.count * 4).rawValue)             for the gradients, \(allreducer.layout.description)), \(BLAS.threads) BLAS thread\(BLAS.threads == 1 ? "" : "s")/rank
            """, rank: rank)

        var summary = Summary()
        var windowLoss = 0.0, windowSteps = 0
        var windowStart = MPIRuntime.wallTime()
        var trainingClock = 0.0
        for epoch in 0..<options.epochs where summary.steps < totalSteps {
            let order = sampler.permutation(epoch: epoch)
            let epochStart = MPIRuntime.wallTime()
            for step in 0..<sampler.stepsPerEpoch where summary.steps < totalSteps {
                let (images, labels) = data.train.batch(sampler.indices(step: step, of: order))

                parameters.zeroGradients()
                let (logits, tape) = model.forward(images, training: true)
                let (loss, gradLogits) = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels)
                model.backward(gradLogits, tape: tape)

                let commStart = MPIRuntime.wallTime()
                allreducer.allreduce(parameters.gradients, .average, algorithm: options.allreduce)
                summary.commSeconds += MPIRuntime.wallTime() - commStart

                optimizer.step(values: parameters.values, gradients: parameters.gradients)
                summary.steps += 1
                summary.samples += sampler.globalBatch
                windowLoss += loss
                windowSteps += 1

                let last = summary.steps == totalSteps || step == sampler.stepsPerEpoch - 1
                if summary.steps % options.logEvery == 0 || last {
                    // The window's loss averaged over all ranks: one small all-reduce
                    // per log line, not per step.
                    let meanLoss = world.mpiAllreduce(windowLoss / Double(windowSteps), op: .sum) / Double(ranks)
                    let now = MPIRuntime.wallTime()
                    let rate = Double(windowSteps * sampler.globalBatch) / (now - windowStart)
                    summary.finalLoss = meanLoss
                    ConsoleLog.progress("epoch \(epoch + 1)/\(options.epochs) step \(step + 1)/\(sampler.stepsPerEpoch) " +
                                        "loss \(format(meanLoss, 4)) samples/s \(Int(rate.rounded()))", rank: rank)
                    windowLoss = 0
                    windowSteps = 0
                    windowStart = MPIRuntime.wallTime()
                }
            }
            trainingClock += MPIRuntime.wallTime() - epochStart
            summary.testAccuracy = evaluateAccuracy(model, on: data.test, world: world)
            ConsoleLog.info("epoch \(epoch + 1) done: test accuracy \(format(summary.testAccuracy * 100, 2))% " +
                            "on \(data.test.count) images, \(format(MPIRuntime.wallTime() - epochStart, 1)) s", rank: rank)
            windowStart = MPIRuntime.wallTime()
        }
        if summary.testAccuracy.isNaN {
            summary.testAccuracy = evaluateAccuracy(model, on: data.test, world: world)
        }
        summary.trainSeconds = trainingClock
        // Report the mean communication time over ranks.
        summary.commSeconds = world.mpiAllreduce(summary.commSeconds, op: .sum) / Double(ranks)
        summary.wallSeconds = MPIRuntime.wallTime() - started

        if let path = options.saveModel {
            try world.together("saving the model") {
                if rank == 0 { try ModelFile.save(parameters, model: options.model.description, to: path) }
            }
            ConsoleLog.info("model saved to \(path)", rank: rank)
        }
        let samplesPerSecond = summary.trainSeconds > 0 ? Double(summary.samples) / summary.trainSeconds : 0
        ConsoleLog.info("done: \(summary.steps) steps, \(Int(samplesPerSecond.rounded())) samples/s, " +
                        "test accuracy \(format(summary.testAccuracy * 100, 2))%, " +
                        "all-reduce \(format(summary.commSeconds, 2)) s of \(format(summary.wallSeconds, 2)) s", rank: rank)
        if let path = options.metricsJSON {
            var metrics = Metrics()
            metrics["tool"] = "ddp-train"
            metrics["ranks"] = ranks
            metrics["model"] = options.model.description
            metrics["parameters"] = parameters.count
            metrics["dataset"] = data.name
            metrics["epochs"] = options.epochs
            metrics["steps"] = summary.steps
            metrics["batch_per_rank"] = options.batchPerRank
            metrics["global_batch"] = sampler.globalBatch
            metrics["learning_rate"] = Double(options.learningRate)
            metrics["momentum"] = Double(options.momentum)
            metrics["seed"] = Int(options.seed)
            metrics["samples_per_sec"] = samplesPerSecond
            metrics["test_accuracy"] = summary.testAccuracy
            metrics["final_loss"] = summary.finalLoss
            metrics["allreduce"] = options.allreduce.rawValue
            metrics["allreduce_resolved"] = allreducer.resolve(options.allreduce, bytes: parameters.count * 4).rawValue
            metrics["nodes"] = allreducer.layout.nodeCount
            metrics["comm_seconds"] = summary.commSeconds
            metrics["train_seconds"] = summary.trainSeconds
            metrics["wall_seconds"] = summary.wallSeconds
            metrics["blas_threads"] = BLAS.threads
            try world.together("writing metrics") {
                if rank == 0 { try metrics.write(to: path) }
            }
        }
        return summary
    }

    private var datasetName: String {
        switch options.dataset {
        case .fashionMNIST: "Fashion-MNIST"
        case .synthetic: "the synthetic dataset"
        }
    }

    /// One BLAS thread per core this rank can call its own: ranks sharing a node
    /// split its cores instead of oversubscribing them.
    private func configureThreads(layout: NodeLayout) {
        if let threads = options.threads {
            BLAS.setThreads(threads)
        } else {
            // The real node (shared memory), not a simulated grouping, decides how many
            // ranks compete for these cores.
            let local = layout.world.splitByNode().size
            BLAS.setThreads(max(1, onlineCores() / local))
        }
    }
}

/// `value` with a fixed number of decimals.
func format(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }

#if canImport(Glibc)
import Glibc
#endif

func onlineCores() -> Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
