import ChorusMPI
import Collectives
import Datasets
import Foundation
import NeuralNet
import Pipeline

/// Everything a pipeline run needs, already validated by the command line.
public struct PipelineOptions: Sendable {
    public var model: ModelDescription
    public var dataset: DatasetChoice
    public var epochs: Int
    public var maxSteps: Int?
    /// Samples one pipeline processes per optimizer step.
    public var batchSize: Int
    public var microbatches: Int
    public var stages: Int
    /// First layer of stages 1..<S (nil: balance by estimated cost).
    public var split: [Int]?
    public var schedule: ScheduleKind
    public var learningRate: Float
    public var optimizer: OptimizerSettings
    public var learningRatePolicy = LearningRatePolicy()
    public var seed: UInt64
    public var saveModel: String?
    public var metricsJSON: String?
    public var tracePath: String?
    public var logEvery: Int
    public var threads: Int?
    /// Checkpoints: one directory per stage (`DIR/stage-s`), written by replica 0.
    public var checkpointDirectory: String?
    public var checkpointEvery = 0
    public var keepCheckpoints = 3
    public var resume = false
    public var timeoutSeconds = Watchdog.defaultTimeoutSeconds

    public init(model: ModelDescription, dataset: DatasetChoice, epochs: Int, maxSteps: Int?, batchSize: Int,
                microbatches: Int, stages: Int, split: [Int]?, schedule: ScheduleKind, learningRate: Float,
                optimizer: OptimizerSettings, seed: UInt64, logEvery: Int, threads: Int?) {
        self.model = model
        self.dataset = dataset
        self.epochs = epochs
        self.maxSteps = maxSteps
        self.batchSize = batchSize
        self.microbatches = microbatches
        self.stages = stages
        self.split = split
        self.schedule = schedule
        self.learningRate = learningRate
        self.optimizer = optimizer
        self.seed = seed
        self.logEvery = logEvery
        self.threads = threads
    }
}

/// Pipeline-parallel training, optionally replicated data-parallel (hybrid).
///
/// With p ranks and S stages there are R = p / S replicas; rank r is stage r mod S of
/// replica r / S. Each replica is a pipeline: stage s runs a contiguous run of the
/// model's layers, receives its input activations from stage s−1 and its output
/// gradients from stage s+1 by point-to-point messages, and follows a schedule
/// (`PipelineSchedule`: GPipe or 1F1B) over the M micro-batches of its batch. Every
/// receive of a step is posted when the step starts and every send is non-blocking,
/// so transfers overlap computation wherever the schedule leaves room. After the
/// batch each stage's gradients are averaged across the R replicas (the same stage's
/// parameters live on one rank per replica) and the optimizer steps once.
///
/// Each micro-batch's loss gradient is scaled by 1/M, so a pipeline step equals one
/// step of the unsplit model on the whole batch (of R·B samples with replicas), up to
/// float summation order. Every rank builds the whole model from the seed (identical
/// initial values everywhere) and touches only its stage's parameters; they are
/// gathered at the end for evaluation and the model file.
public final class PipelineTrainer {
    public let options: PipelineOptions
    public let world: Communicator

    public init(options: PipelineOptions, world: Communicator) {
        self.options = options
        self.world = world
    }

    public func run() throws {
        let started = MPIRuntime.wallTime()
        let S = options.stages, M = options.microbatches
        guard world.size % S == 0 else {
            throw FileError("\(world.size) ranks cannot form pipelines of --stages \(S): the number of ranks must be a multiple of the stages")
        }
        guard options.batchSize % M == 0 else {
            throw FileError("--batch-size \(options.batchSize) is not divisible by --microbatches \(M)")
        }
        let replicas = world.size / S, replica = world.rank / S, stage = world.rank % S
        // A pipeline's ranks, numbered by stage; and one rank per replica of this stage.
        let pipeline = world.split(color: replica, key: stage)
        let stageGroup = world.split(color: stage, key: replica)
        configureBLASThreads(requested: options.threads, world: world)
        keepLargeAllocationsInHeap()

        let model = try options.model.build(seed: options.seed)
        let costs = model.layers.indices.map { i in
            // Multiply-adds, plus one per output element for the element-wise layers.
            Double(model.layers[i].forwardMACs(for: model.shapes[i]) + model.shapes[i + 1].reduce(1, *))
        }
        let partition = try options.split.map { try StagePartition(starts: $0, layerCount: model.layers.count) }
            ?? StagePartition(balancing: costs, stages: S)
        guard partition.stages == S else {
            throw FileError("--split gives \(partition.stages) stages but --stages is \(S)")
        }
        let runner = StageRunner(model: model, layers: partition.ranges[stage])
        let schedule = PipelineSchedule(options.schedule, stages: S, microbatches: M)
        try schedule.validate()
        let microbatch = options.batchSize / M

        let data = try world.together("loading the dataset") { try options.dataset.load(seed: options.seed) }
        guard data.train.imageShape == options.model.inputShape else {
            throw FileError("\(data.name) images are \(data.train.imageShape), the model expects \(options.model.inputShape)")
        }
        // Ranks started differently would exchange messages of the wrong size or call
        // collectives in a different order: compare before the first message.
        try world.agreeOnConfiguration([
            ("the model", "\(options.model) with \(model.parameters.count) parameters"),
            ("the dataset", "\(data.name), \(data.train.count) train / \(data.test.count) test images"),
            ("the stages", "\(partition.ranges)"), ("--microbatches", "\(M)"), ("--schedule", options.schedule.rawValue),
            ("--batch-size", "\(options.batchSize)"),
            ("the optimizer", "\(options.optimizer.description) lr \(options.learningRate) \(options.learningRatePolicy)"),
            ("--seed", "\(options.seed)"), ("--epochs/--steps", "\(options.epochs)/\(options.maxSteps.map(String.init) ?? "all")"),
            ("--checkpoint-dir/--resume", "\(options.checkpointDirectory ?? "none")/\(options.resume)"),
        ])
        let sampler = try DistributedSampler(sampleCount: data.train.count, ranks: replicas, rank: replica,
                                             batchPerRank: options.batchSize, seed: options.seed)
        let totalSteps = min(options.maxSteps ?? Int.max, options.epochs * sampler.stepsPerEpoch)
        let scale: Float = options.learningRatePolicy.scaling == .linear ? Float(replicas) : 1
        let rates = LearningRateSchedule(peak: options.learningRate * scale, warmupSteps: options.learningRatePolicy.warmupSteps,
                                         totalSteps: totalSteps, decay: options.learningRatePolicy.decay)
        let optimizer = options.optimizer.make(learningRate: rates.rate(atStep: 0))
        let replicaReducer = replicas > 1 ? Allreducer(world: stageGroup) : nil
        let trace = options.tracePath.map { _ in TraceRecorder(world: world) }
        let parameterRange = runner.parameterRange
        let values = UnsafeMutableBufferPointer(rebasing: model.parameters.values[parameterRange])
        let gradients = UnsafeMutableBufferPointer(rebasing: model.parameters.gradients[parameterRange])

        let watchdog = options.timeoutSeconds > 0 ? Watchdog(timeout: options.timeoutSeconds, rank: world.rank) : nil
        defer { watchdog?.stop() }

        // Checkpoints: each stage's tensors and optimizer state in its own directory.
        let stageSlots = model.parameters.slots.filter { partition.ranges[stage].contains($0.layerIndex) }
        let stageDirectory = options.checkpointDirectory.map { ($0 as NSString).appendingPathComponent("stage-\(stage)") }
        let checkpointLayout = ["model": options.model.description, "ranks": "\(world.size)", "stages": "\(S)",
                                "stage": "\(stage)", "global_batch": "\(options.batchSize * replicas)",
                                "optimizer": options.optimizer.kind.rawValue, "seed": "\(options.seed)"]
        if let directory = stageDirectory {
            try world.together("using the checkpoint directory \(directory)") {
                if replica == 0 { try AtomicFile.checkWritable(directory: directory) }
            }
        }
        var startEpoch = 0, startStep = 0, resumedSteps = 0
        if options.resume, let directory = stageDirectory {
            // Every stage must resume from the same step: the newest one all have.
            let newest = try world.together("looking for checkpoints in \(directory)") {
                try Checkpoint.newestValid(in: directory).map { $0.checkpoint.step } ?? -1
            }
            let common = world.mpiAllreduce(Int64(newest), op: .min), latest = world.mpiAllreduce(Int64(newest), op: .max)
            if latest >= 0 {
                let step = Int(common)
                try world.together("resuming from \(directory)") {
                    guard step >= 0 else { throw FileError("stage \(stage) has no checkpoint in \(directory) while others do") }
                    let (checkpoint, path) = try Checkpoint.read(step: step, in: directory)
                    try checkpoint.apply(to: model.parameters, slots: stageSlots, optimizer: optimizer,
                                         expecting: checkpointLayout, path: path)
                    (startEpoch, startStep, resumedSteps) = (checkpoint.epoch, checkpoint.stepInEpoch, checkpoint.step)
                }
                ConsoleLog.info("resumed every stage from step \(step) in \(options.checkpointDirectory!)", rank: world.rank)
            } else {
                ConsoleLog.info("no checkpoint in \(options.checkpointDirectory!) yet: starting from the beginning", rank: world.rank)
            }
        }

        let stageList = partition.ranges.enumerated().map { s, range in
            "stage \(s): layers \(range.lowerBound)..<\(range.upperBound) (\(range.map { model.layers[$0].name }.joined(separator: " ")))"
        }
        ConsoleLog.info("""
            pipe-train: \(options.model) on \(data.name), \(S) stages x \(replicas) replica\(replicas == 1 ? "" : "s"), \
            batch \(options.batchSize) per pipeline in \(M) micro-batches of \(microbatch), \(options.schedule.rawValue) schedule, \
            \(totalSteps) steps, \(options.optimizer.description) lr \(rates.peak)
            \(stageList.joined(separator: "\n"))
            """, rank: world.rank)

        let executor = StageExecutor(runner: runner, schedule: schedule, stage: stage, pipeline: pipeline, microbatch: microbatch,
                                     trace: trace, watchdog: watchdog)
        var steps = resumedSteps, busySeconds = 0.0, stepSeconds = 0.0, trainingClock = 0.0
        var windowLoss = 0.0, windowSteps = 0, windowStart = MPIRuntime.wallTime(), finalLoss = Double.nan
        var testAccuracy = Double.nan
        for epoch in startEpoch..<options.epochs where steps < totalSteps {
            let order = sampler.permutation(epoch: epoch)
            let epochStart = MPIRuntime.wallTime()
            for step in (epoch == startEpoch ? startStep : 0)..<sampler.stepsPerEpoch where steps < totalSteps {
                FaultInjection.check(rank: world.rank, step: steps)
                let indices = sampler.indices(step: step, of: order)
                let needsData = stage == 0 || stage == S - 1
                let (images, labels) = needsData ? data.train.batch(indices) : (Tensor(shape: [0], storage: []), [])
                gradients.update(repeating: 0)

                // Every stage starts the step together, so idle time is measurable.
                watchdog.waiting(for: "the other stages to start step \(steps + 1)") { pipeline.barrier() }
                let stepStart = MPIRuntime.wallTime()
                let result = executor.runStep(images: images, labels: labels, step: steps + 1)
                let ownEnd = MPIRuntime.wallTime()
                // The step lasts until its slowest stage is done.
                stepSeconds += watchdog.waiting(for: "the other stages to finish step \(steps + 1)") {
                    pipeline.mpiAllreduce(ownEnd - stepStart, op: .max)
                }
                busySeconds += result.busySeconds

                if let replicaReducer {
                    watchdog.waiting(for: "the all-reduce of stage \(stage)'s gradients across replicas at step \(steps + 1)") {
                        replicaReducer.allreduce(gradients, .average)
                    }
                }
                // Stages hold different gradients: agree on the verdict, or one stage
                // would stop while the others wait for it.
                let nonFinite = firstNonFiniteGradient(model.parameters, in: parameterRange)
                if world.mpiAllreduce(Int32(nonFinite == nil ? 0 : 1), op: .max) != 0 {
                    try world.together("step \(steps + 1)") {
                        if let slot = nonFinite {
                            throw FileError("the gradient of \(slot.name) (layer \(model.layers[slot.layerIndex].name), stage \(stage)) is not finite; lower --lr")
                        }
                    }
                }
                let optimizerStart = MPIRuntime.wallTime()
                optimizer.learningRate = rates.rate(atStep: steps)
                optimizer.step(values: values, gradients: gradients)
                trace?.span("optimizer step", category: "optimizer", since: optimizerStart)
                steps += 1
                if let directory = stageDirectory, options.checkpointEvery > 0, steps % options.checkpointEvery == 0 {
                    let next = step + 1 < sampler.stepsPerEpoch ? (epoch, step + 1) : (epoch + 1, 0)
                    try world.together("writing a checkpoint to \(directory)") {
                        if replica == 0 {
                            try Checkpoint.save(model.parameters, slots: stageSlots, optimizer: optimizer, step: steps,
                                                epoch: next.0, stepInEpoch: next.1, layout: checkpointLayout,
                                                to: directory, keep: options.keepCheckpoints)
                        }
                    }
                }
                windowLoss += result.loss
                windowSteps += 1

                if steps % options.logEvery == 0 || steps == totalSteps || step == sampler.stepsPerEpoch - 1 {
                    // Only last stages know the loss: sum over the world, average over replicas.
                    let meanLoss = watchdog.waiting(for: "the loss all-reduce after step \(steps)") {
                        world.mpiAllreduce(windowLoss / Double(windowSteps), op: .sum) / Double(replicas)
                    }
                    let rate = Double(windowSteps * options.batchSize * replicas) / (MPIRuntime.wallTime() - windowStart)
                    finalLoss = meanLoss
                    ConsoleLog.progress("epoch \(epoch + 1)/\(options.epochs) step \(step + 1)/\(sampler.stepsPerEpoch) " +
                                        "loss \(format(meanLoss, 4)) samples/s \(Int(rate.rounded()))", rank: world.rank)
                    windowLoss = 0
                    windowSteps = 0
                    windowStart = MPIRuntime.wallTime()
                }
            }
            trainingClock += MPIRuntime.wallTime() - epochStart
            gatherStages(model: model, partition: partition, stage: stage, pipeline: pipeline)
            testAccuracy = evaluateAccuracy(model, on: data.test, world: world)
            ConsoleLog.info("epoch \(epoch + 1) done: test accuracy \(format(testAccuracy * 100, 2))%", rank: world.rank)
            windowStart = MPIRuntime.wallTime()
        }

        // A run resumed at its last step trains no epoch: gather and evaluate anyway.
        gatherStages(model: model, partition: partition, stage: stage, pipeline: pipeline)
        if testAccuracy.isNaN { testAccuracy = evaluateAccuracy(model, on: data.test, world: world) }

        // Idle fraction over the stages of a pipeline (averaged over replicas).
        let busyAll = world.mpiAllreduce(busySeconds, op: .sum)
        let wallAll = world.mpiAllreduce(stepSeconds, op: .sum)  // each stage added the same per-step maxima
        let bubbleMeasured = wallAll > 0 ? 1 - busyAll / wallAll : 0
        let peaks = pipeline.allgather(Int64(executor.peakStoredMicrobatches))
        let peakBytes = pipeline.allgather(Int64(executor.peakStoredBytes))
        let samplesPerSecond = trainingClock > 0 ? Double(steps * options.batchSize * replicas) / trainingClock : 0
        ConsoleLog.info("done: \(steps) steps, \(Int(samplesPerSecond.rounded())) samples/s, test accuracy " +
                        "\(format(testAccuracy * 100, 2))%, bubble \(format(bubbleMeasured, 3)) measured / " +
                        "\(format(schedule.theoreticalBubble, 3)) theory, peak stored micro-batches per stage \(peaks)",
                        rank: world.rank)

        if let path = options.tracePath, let trace {
            try trace.write(to: path, world: world)
            ConsoleLog.info("trace written to \(path)", rank: world.rank)
        }
        if let path = options.saveModel {
            try world.together("saving the model") {
                if world.rank == 0 { try ModelFile.save(model.parameters, model: options.model.description, to: path) }
            }
            ConsoleLog.info("model saved to \(path)", rank: world.rank)
        }
        if let path = options.metricsJSON {
            var metrics = Metrics()
            metrics["tool"] = "pipe-train"
            metrics["ranks"] = world.size
            metrics["model"] = options.model.description
            metrics["stages"] = S
            metrics["replicas"] = replicas
            metrics["stage_layers"] = partition.ranges.map { [$0.lowerBound, $0.upperBound] }
            metrics["microbatches"] = M
            metrics["schedule"] = options.schedule.rawValue
            metrics["batch_size"] = options.batchSize
            metrics["global_batch"] = options.batchSize * replicas
            metrics["steps"] = steps
            metrics["epochs"] = options.epochs
            metrics["optimizer"] = options.optimizer.kind.rawValue
            metrics["samples_per_sec"] = samplesPerSecond
            metrics["test_accuracy"] = testAccuracy
            metrics["final_loss"] = finalLoss
            metrics["bubble_fraction_measured"] = bubbleMeasured
            metrics["bubble_fraction_theory"] = schedule.theoreticalBubble
            metrics["peak_stored_activations"] = peaks.map(Int.init)
            metrics["peak_stored_activation_bytes"] = peakBytes.map(Int.init)
            metrics["resumed_from_step"] = resumedSteps
            metrics["train_seconds"] = trainingClock
            metrics["wall_seconds"] = MPIRuntime.wallTime() - started
            try world.together("writing metrics") {
                if world.rank == 0 { try metrics.write(to: path) }
            }
        }
    }

    /// Gives every rank of the pipeline the whole model: each stage contributes its
    /// parameter slice (replicas hold identical values, so one pipeline suffices).
    private func gatherStages(model: Sequential, partition: StagePartition, stage: Int, pipeline: Communicator) {
        let mine = StageRunner(model: model, layers: partition.ranges[stage]).parameterRange
        let values = model.parameters.values
        let bytes = Array(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: values[mine])))
        let all = pipeline.allgatherBytes(bytes)
        for (s, slice) in all.enumerated() where s != stage {
            let range = StageRunner(model: model, layers: partition.ranges[s]).parameterRange
            slice.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: values[range])).copyMemory(from: source)
            }
        }
    }
}
