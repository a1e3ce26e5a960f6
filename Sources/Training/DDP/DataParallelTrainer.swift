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

/// How the learning rate is set per step.
public struct LearningRatePolicy: Sendable, Equatable {
    public enum Scaling: String, Sendable, CaseIterable {
        /// `--lr` as given.
        case none
        /// The linear scaling rule (Goyal et al.; Horovod's advice): `--lr` is the rate
        /// for one rank's batch, multiplied by ranks × accumulation steps, i.e. by how
        /// many such batches one optimizer step averages.
        case linear
    }

    public var scaling: Scaling = .none
    public var warmupSteps = 0
    public var decay: LearningRateSchedule.Decay = .constant

    public init(scaling: Scaling = .none, warmupSteps: Int = 0, decay: LearningRateSchedule.Decay = .constant) {
        self.scaling = scaling
        self.warmupSteps = warmupSteps
        self.decay = decay
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
    public var optimizer: OptimizerSettings
    public var schedule = LearningRatePolicy()
    /// Micro-batches per optimizer step; gradients are only communicated on the last.
    public var accumulate = 1
    public var seed: UInt64
    public var allreduce: AllreduceAlgorithm
    /// Override the node grouping (nil: ranks sharing memory form a node).
    public var ranksPerNode: Int?
    public var bucketCapBytes = BucketPlan.defaultCapBytes
    public var firstBucketCapBytes = BucketPlan.defaultFirstCapBytes
    /// Reduce buckets during backward (false: after it, for comparison).
    public var overlap = true
    public var saveModel: String?
    public var metricsJSON: String?
    public var tracePath: String?
    public var logEvery: Int
    /// OpenBLAS threads per rank (nil: the node's cores divided by its ranks).
    public var threads: Int?
    /// Write a checkpoint into this directory every `checkpointEvery` steps, keeping
    /// the newest `keepCheckpoints`; with `resume`, start from the newest valid one.
    public var checkpointDirectory: String?
    public var checkpointEvery = 0
    public var keepCheckpoints = 3
    public var resume = false
    /// Skip the update of a step whose gradients are not finite, instead of stopping.
    public var skipNonFinite = false
    /// End the job when a wait on other ranks lasts longer than this (0: never).
    public var timeoutSeconds = Watchdog.defaultTimeoutSeconds

    public init(model: ModelDescription, dataset: DatasetChoice, epochs: Int, maxSteps: Int?, batchPerRank: Int,
                learningRate: Float, optimizer: OptimizerSettings, seed: UInt64, allreduce: AllreduceAlgorithm,
                ranksPerNode: Int? = nil, saveModel: String?, metricsJSON: String?, logEvery: Int, threads: Int?) {
        self.model = model
        self.dataset = dataset
        self.epochs = epochs
        self.maxSteps = maxSteps
        self.batchPerRank = batchPerRank
        self.learningRate = learningRate
        self.optimizer = optimizer
        self.seed = seed
        self.allreduce = allreduce
        self.ranksPerNode = ranksPerNode
        self.saveModel = saveModel
        self.metricsJSON = metricsJSON
        self.logEvery = logEvery
        self.threads = threads
    }
}

/// Synchronous data-parallel training: every rank holds the whole model, computes
/// gradients on its shard of each global batch, and the gradients are averaged
/// across ranks before every rank applies the same update.
///
/// One optimizer step (docs/ddp.md has the whole lifecycle and a trace):
///
///     zero gradients
///     K times (gradient accumulation; K = 1 by default):
///         forward (own B samples) → loss, its gradient scaled by 1/K
///         backward; on the K-th only, each finished layer hands its completed
///         gradient buckets to the communication thread (GradientReducer)
///     wait for the buckets still in flight → optimizer step at the scheduled rate
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
        public var exposedCommSeconds = 0.0
        public var finalLoss = Double.nan
        public var testAccuracy = Double.nan
        public var wallSeconds = 0.0
    }

    public func run() throws -> Summary {
        let started = MPIRuntime.wallTime()
        let rank = world.rank, ranks = world.size
        // Gradient traffic gets its own communicator, so the communication thread's
        // messages can never match the main thread's.
        let gradientWorld = world.duplicate()
        let allreducer = Allreducer(world: gradientWorld, ranksPerNode: options.ranksPerNode)
        configureBLASThreads(requested: options.threads, world: world)
        keepLargeAllocationsInHeap()

        let model = try options.model.build(seed: options.seed)
        let data = try world.together("loading \(datasetName)") { try options.dataset.load(seed: options.seed) }
        let sampler = try DistributedSampler(sampleCount: data.train.count, ranks: ranks, rank: rank,
                                             batchPerRank: options.batchPerRank, seed: options.seed)
        guard data.train.imageShape == options.model.inputShape else {
            throw FileError("\(data.name) images are \(data.train.imageShape), the model expects \(options.model.inputShape)")
        }
        let k = options.accumulate
        guard sampler.stepsPerEpoch >= k else {
            throw FileError("--accumulate \(k) needs \(k) global batches of \(sampler.globalBatch) per epoch; \(data.name) has \(sampler.stepsPerEpoch)")
        }
        let parameters = model.parameters
        // Ranks started differently would hang in mismatched collectives: compare first.
        try world.agreeOnConfiguration([
            ("the model", "\(options.model) with \(parameters.count) parameters"),
            ("the dataset", "\(data.name), \(data.train.count) train / \(data.test.count) test images"),
            ("--batch-size", "\(options.batchPerRank)"), ("--accumulate", "\(k)"),
            ("the optimizer", "\(options.optimizer.description) lr \(options.learningRate) \(options.schedule)"),
            ("--seed", "\(options.seed)"), ("--epochs/--steps", "\(options.epochs)/\(options.maxSteps.map(String.init) ?? "all")"),
            ("--allreduce", options.allreduce.rawValue), ("--bucket-mb", "\(options.bucketCapBytes)"),
            ("--no-overlap", "\(!options.overlap)"),
            ("--checkpoint-dir/--resume", "\(options.checkpointDirectory ?? "none")/\(options.resume)"),
        ])

        // Every rank starts from rank 0's parameters.
        world.mpiBroadcast(parameters.values, root: 0)

        let plan = BucketPlan(slots: parameters.slots, capBytes: options.bucketCapBytes,
                              firstCapBytes: options.firstBucketCapBytes)
        // The plan is a pure function of the model and the caps; a rank that disagrees
        // would reduce different ranges and corrupt every step, so check once.
        let fingerprint = plan.fingerprint
        guard world.mpiAllreduce(fingerprint, op: .min) == world.mpiAllreduce(fingerprint, op: .max) else {
            throw FileError("ranks computed different gradient bucket plans; every rank must run the same model and --bucket-mb")
        }
        let trace = options.tracePath.map { _ in TraceRecorder(world: world) }
        let watchdog = options.timeoutSeconds > 0 ? Watchdog(timeout: options.timeoutSeconds, rank: rank) : nil
        defer { watchdog?.stop() }
        let reducer = GradientReducer(plan: plan, allreducer: allreducer, algorithm: options.allreduce,
                                      gradients: parameters.gradients, overlap: options.overlap, trace: trace,
                                      watchdog: watchdog)
        defer { reducer.close() }

        let stepsPerEpoch = sampler.stepsPerEpoch / k
        let totalSteps = min(options.maxSteps ?? Int.max, options.epochs * stepsPerEpoch)
        let scale: Float = options.schedule.scaling == .linear ? Float(ranks * k) : 1
        let schedule = LearningRateSchedule(peak: options.learningRate * scale, warmupSteps: options.schedule.warmupSteps,
                                            totalSteps: totalSteps, decay: options.schedule.decay)
        let optimizer = options.optimizer.make(learningRate: schedule.rate(atStep: 0))
        let globalBatch = sampler.globalBatch * k

        if let directory = options.checkpointDirectory {
            // Fail now, not at the first checkpoint an hour in.
            try world.together("using the checkpoint directory \(directory)") {
                if rank == 0 { try AtomicFile.checkWritable(directory: directory) }
            }
        }
        // What a checkpoint must match to be resumed by this run.
        let checkpointLayout = ["model": options.model.description, "ranks": "\(ranks)", "global_batch": "\(globalBatch)",
                                "optimizer": options.optimizer.kind.rawValue, "seed": "\(options.seed)"]
        var startEpoch = 0, startStep = 0, resumedSteps = 0
        if options.resume, let directory = options.checkpointDirectory {
            let found = try world.together("resuming from \(directory)") { () -> (Checkpoint, String, [String])? in
                guard let found = try Checkpoint.newestValid(in: directory) else { return nil }
                try found.checkpoint.apply(to: parameters, optimizer: optimizer, expecting: checkpointLayout, path: found.path)
                return (found.checkpoint, found.path, found.skipped)
            }
            if let (checkpoint, path, skipped) = found {
                for reason in skipped { ConsoleLog.info("skipped an unreadable checkpoint: \(reason)", rank: rank) }
                (startEpoch, startStep, resumedSteps) = (checkpoint.epoch, checkpoint.stepInEpoch, checkpoint.step)
                ConsoleLog.info("resumed from \(path): step \(checkpoint.step), epoch \(checkpoint.epoch + 1)", rank: rank)
            } else {
                ConsoleLog.info("no checkpoint in \(directory) yet: starting from the beginning", rank: rank)
            }
        }
        let bucketBytes = plan.buckets.map { $0.range.count * MemoryLayout<Float>.stride }
        ConsoleLog.info("""
            ddp-train: \(options.model) (\(parameters.count) parameters) on \(data.name) \
            (\(data.train.count) train / \(data.test.count) test images)
            \(ranks) rank\(ranks == 1 ? "" : "s") x batch \(options.batchPerRank)\(k > 1 ? " x \(k) accumulated" : "") = \
            global batch \(globalBatch), \(stepsPerEpoch) steps/epoch, \(totalSteps) steps, \(options.optimizer.description) \
            lr \(schedule.peak)\(options.schedule.warmupSteps > 0 ? " after \(options.schedule.warmupSteps) warm-up steps" : "")
            gradients: \(plan.buckets.count) bucket\(plan.buckets.count == 1 ? "" : "s") \
            (\(bucketBytes.map(formatBytes).joined(separator: ", "))), \
            \(options.overlap ? "reduced during backward" : "reduced after backward"), \
            \(options.allreduce.rawValue) all-reduce (\(allreducer.resolve(options.allreduce, bytes: bucketBytes.max() ?? 0).rawValue) \
            for the largest, \(allreducer.layout.description)), \(BLAS.threads) BLAS thread\(BLAS.threads == 1 ? "" : "s")/rank
            """, rank: rank)

        var summary = Summary()
        summary.steps = resumedSteps
        var skippedSteps = 0
        var windowLoss = 0.0, windowSteps = 0
        var windowStart = MPIRuntime.wallTime()
        var trainingClock = 0.0
        for epoch in startEpoch..<options.epochs where summary.steps < totalSteps {
            let order = sampler.permutation(epoch: epoch)
            let epochStart = MPIRuntime.wallTime()
            for step in (epoch == startEpoch ? startStep : 0)..<stepsPerEpoch where summary.steps < totalSteps {
                FaultInjection.check(rank: rank, step: summary.steps)
                parameters.zeroGradients()
                var stepLoss = 0.0
                for micro in 0..<k {
                    let last = micro == k - 1
                    let (images, labels) = data.train.batch(sampler.indices(step: step * k + micro, of: order))
                    let forwardStart = MPIRuntime.wallTime()
                    var layerStart = forwardStart
                    let (logits, tape) = model.forward(images, training: true, layerDone: trace.map { trace in
                        { index in
                            trace.span("forward \(model.layers[index].name)", category: "forward", since: layerStart)
                            layerStart = MPIRuntime.wallTime()
                        }
                    })
                    var (loss, gradLogits) = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels)
                    // The mean over K micro-batches of B is the mean over one batch of K·B.
                    if k > 1 { gradLogits.scale(by: 1 / Float(k)) }
                    stepLoss += loss / Double(k)
                    if last { reducer.beginStep() }
                    layerStart = MPIRuntime.wallTime()
                    model.backward(gradLogits, tape: tape) { index in
                        if let trace {
                            trace.span("backward \(model.layers[index].name)", category: "backward", since: layerStart)
                            layerStart = MPIRuntime.wallTime()
                        }
                        if last { reducer.layerFinished(index) }
                    }
                }
                reducer.finish()

                // After averaging every rank holds the same gradients, so all ranks
                // reach the same verdict.
                if let slot = firstNonFiniteGradient(parameters, in: 0..<parameters.count) {
                    let message = "step \(summary.steps + 1): the gradient of \(slot.name) (layer \(model.layers[slot.layerIndex].name)) is not finite " +
                        "(this rank's loss: \(stepLoss))"
                    guard options.skipNonFinite else {
                        throw FileError(message + "; lower --lr, or pass --skip-nonfinite to skip such steps")
                    }
                    ConsoleLog.info(message + "; update skipped (--skip-nonfinite)", rank: rank)
                    skippedSteps += 1
                } else {
                    let optimizerStart = MPIRuntime.wallTime()
                    optimizer.learningRate = schedule.rate(atStep: summary.steps)
                    optimizer.step(values: parameters.values, gradients: parameters.gradients)
                    trace?.span("optimizer step", category: "optimizer", since: optimizerStart,
                                arguments: ["lr": "\(optimizer.learningRate)"])
                }
                summary.steps += 1
                if let directory = options.checkpointDirectory, options.checkpointEvery > 0,
                   summary.steps % options.checkpointEvery == 0 {
                    let next = step + 1 < stepsPerEpoch ? (epoch, step + 1) : (epoch + 1, 0)
                    try world.together("writing a checkpoint to \(directory)") {
                        if rank == 0 {
                            try Checkpoint.save(parameters, optimizer: optimizer, step: summary.steps, epoch: next.0,
                                                stepInEpoch: next.1, layout: checkpointLayout, to: directory,
                                                keep: options.keepCheckpoints)
                        }
                    }
                }
                summary.samples += globalBatch
                windowLoss += stepLoss
                windowSteps += 1

                let last = summary.steps == totalSteps || step == stepsPerEpoch - 1
                if summary.steps % options.logEvery == 0 || last {
                    // The window's loss averaged over all ranks: one small all-reduce
                    // per log line, not per step.
                    let meanLoss = watchdog.waiting(for: "the loss all-reduce after step \(summary.steps)") {
                        world.mpiAllreduce(windowLoss / Double(windowSteps), op: .sum) / Double(ranks)
                    }
                    let now = MPIRuntime.wallTime()
                    let rate = Double(windowSteps * globalBatch) / (now - windowStart)
                    summary.finalLoss = meanLoss
                    ConsoleLog.progress("epoch \(epoch + 1)/\(options.epochs) step \(step + 1)/\(stepsPerEpoch) " +
                                        "loss \(format(meanLoss, 4)) samples/s \(Int(rate.rounded()))", rank: rank)
                    windowLoss = 0
                    windowSteps = 0
                    windowStart = MPIRuntime.wallTime()
                }
            }
            trainingClock += MPIRuntime.wallTime() - epochStart
            summary.testAccuracy = watchdog.waiting(for: "the evaluation after epoch \(epoch + 1)") {
                evaluateAccuracy(model, on: data.test, world: world)
            }
            ConsoleLog.info("epoch \(epoch + 1) done: test accuracy \(format(summary.testAccuracy * 100, 2))% " +
                            "on \(data.test.count) images, \(format(MPIRuntime.wallTime() - epochStart, 1)) s", rank: rank)
            windowStart = MPIRuntime.wallTime()
        }
        reducer.close()
        if summary.testAccuracy.isNaN {
            summary.testAccuracy = evaluateAccuracy(model, on: data.test, world: world)
        }
        summary.trainSeconds = trainingClock
        // Mean over ranks.
        summary.commSeconds = world.mpiAllreduce(reducer.communicationSeconds, op: .sum) / Double(ranks)
        summary.exposedCommSeconds = world.mpiAllreduce(reducer.exposedSeconds, op: .sum) / Double(ranks)
        summary.wallSeconds = MPIRuntime.wallTime() - started
        // One rank has nothing to communicate (the all-reduce returns at once): no overlap to report.
        let overlapFraction = ranks > 1 && summary.commSeconds > 0 ? max(0, 1 - summary.exposedCommSeconds / summary.commSeconds) : 0

        if let path = options.tracePath, let trace {
            try trace.write(to: path, world: world)
            ConsoleLog.info("trace written to \(path) (open in ui.perfetto.dev or chrome://tracing)", rank: rank)
        }
        if let path = options.saveModel {
            try world.together("saving the model") {
                if rank == 0 { try ModelFile.save(parameters, model: options.model.description, to: path) }
            }
            ConsoleLog.info("model saved to \(path)", rank: rank)
        }
        let samplesPerSecond = summary.trainSeconds > 0 ? Double(summary.samples) / summary.trainSeconds : 0
        ConsoleLog.info("done: \(summary.steps) steps, \(Int(samplesPerSecond.rounded())) samples/s, " +
                        "test accuracy \(format(summary.testAccuracy * 100, 2))%, " +
                        "all-reduce \(format(summary.commSeconds, 2)) s (exposed \(format(summary.exposedCommSeconds, 2)) s, " +
                        "overlap \(format(overlapFraction * 100, 0))%) of \(format(summary.wallSeconds, 2)) s", rank: rank)
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
            metrics["accumulate"] = k
            metrics["global_batch"] = globalBatch
            metrics["optimizer"] = options.optimizer.kind.rawValue
            metrics["learning_rate"] = Double(schedule.peak)
            metrics["seed"] = Int(options.seed)
            metrics["samples_per_sec"] = samplesPerSecond
            metrics["step_seconds"] = summary.steps > 0 ? summary.trainSeconds / Double(summary.steps) : 0
            metrics["test_accuracy"] = summary.testAccuracy
            metrics["final_loss"] = summary.finalLoss
            metrics["allreduce"] = options.allreduce.rawValue
            metrics["allreduce_resolved"] = allreducer.resolve(options.allreduce, bytes: bucketBytes.max() ?? 0).rawValue
            metrics["nodes"] = allreducer.layout.nodeCount
            metrics["overlap"] = options.overlap
            metrics["buckets"] = plan.buckets.count
            metrics["bucket_bytes"] = bucketBytes
            metrics["comm_seconds"] = summary.commSeconds
            metrics["exposed_comm_seconds"] = summary.exposedCommSeconds
            metrics["overlap_fraction"] = overlapFraction
            metrics["skipped_nonfinite_steps"] = skippedSteps
            metrics["resumed_from_step"] = resumedSteps
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
}
