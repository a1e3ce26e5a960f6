import Collectives
import Communication
import CommunicationHooks
import Coordination
import Datasets
import Foundation
import NeuralNet
import Persistence
import PipelineSchedules
import TrainingLoop

/// What a pipeline run trains and how, in the library's terms.
public struct PipelineOptions: Sendable {
    public var model: ModelDescription
    /// Samples one pipeline processes per optimizer step.
    public var batchSize: Int
    public var microbatches: Int
    public var stages: Int
    /// First layer of stages 1..<S (nil: balance by estimated cost).
    public var split: [Int]?
    public var schedule: ScheduleKind
    public var loss: any LossFunction = SoftmaxCrossEntropyLoss()

    public init(model: ModelDescription, batchSize: Int, microbatches: Int, stages: Int, split: [Int]? = nil,
                schedule: ScheduleKind) {
        self.model = model
        self.batchSize = batchSize
        self.microbatches = microbatches
        self.stages = stages
        self.split = split
        self.schedule = schedule
    }
}

/// A pipeline layout that cannot be built.
public enum PipelineSetupError: Error, CustomStringConvertible {
    case ranksNotMultipleOfStages(ranks: Int, stages: Int)
    case batchNotDivisible(batch: Int, microbatches: Int)
    case splitStageCount(given: Int, stages: Int)

    public var description: String {
        switch self {
        case .ranksNotMultipleOfStages(let ranks, let stages):
            "\(Formatting.count(ranks, "rank")) cannot form pipelines of \(stages) stages: the number of ranks must be a multiple of the stages"
        case .batchNotDivisible(let batch, let microbatches):
            "a batch of \(batch) is not divisible into \(microbatches) micro-batches"
        case .splitStageCount(let given, let stages):
            "the split gives \(given) stages but the pipeline has \(stages)"
        }
    }
}

/// Pipeline-parallel training, optionally replicated data-parallel (hybrid), as a
/// strategy of the shared loop.
///
/// With p ranks and S stages there are R = p / S replicas; rank r is stage r mod S of
/// replica r / S. Each replica is a pipeline: stage s runs a contiguous run of the
/// model's layers, receives its input activations from stage s−1 and its output
/// gradients from stage s+1 by point-to-point messages, and follows a schedule
/// (`PipelineSchedule`: GPipe or 1F1B) over the M micro-batches of its batch
/// (`StageExecutor`). After the batch each stage's gradients are averaged across the
/// R replicas (the same stage's parameters live on one rank per replica) and the
/// optimizer steps once.
///
/// Each micro-batch's loss gradient is scaled by 1/M, so a pipeline step equals one
/// step of the unsplit model on the whole batch (of R·B samples with replicas), up to
/// float summation order. Every rank builds the whole model from the seed (identical
/// initial values everywhere) and touches only its stage's parameters; they are
/// gathered for evaluation and the model file.
public final class PipelineStrategy: TrainingStrategy {
    public let options: PipelineOptions
    private let world: any Communicator
    private var model: Sequential!
    private var data: DatasetSplits!
    private var partition: StagePartition!
    private var schedule: PipelineSchedule!
    private var runner: StageRunner!
    private var sampler: DistributedSampler!
    private var order: [Int] = []
    private var services: TrainingServices!
    private var pipeline: (any Communicator)!
    private var stageGroup: (any Communicator)!
    private var replicaReducer: Allreducer?
    /// The replica all-reduce's hook: averaging, or a compressor.
    public let hook: CommunicationHook
    private var hookContext: HookContext?
    private var replicaBytes: CountingCommunicator.Counter?
    private var stageSlots: [ParameterSlot] = []
    private var communicatedSteps = 0
    private var executor: StageExecutor!
    private var optimizer: Optimizer!
    private var busySeconds = 0.0, stepSeconds = 0.0
    /// This stage's compute time in forwards and backwards, over `stepsRun` steps.
    private var forwardSeconds = 0.0, backwardSeconds = 0.0, stepsRun = 0

    public init(options: PipelineOptions, communicator: any Communicator, hook: CommunicationHook = AveragingHook()) {
        self.options = options
        world = communicator
        self.hook = hook
    }

    private var stages: Int { options.stages }
    private var replicas: Int { world.size / stages }
    private var replica: Int { world.rank / stages }
    private var stage: Int { world.rank % stages }

    public func plan(_ setup: TrainingSetup) throws -> StrategyPlan {
        let S = stages, M = options.microbatches
        guard world.size % S == 0 else { throw PipelineSetupError.ranksNotMultipleOfStages(ranks: world.size, stages: S) }
        guard options.batchSize % M == 0 else {
            throw PipelineSetupError.batchNotDivisible(batch: options.batchSize, microbatches: M)
        }
        data = setup.data
        sampler = try DistributedSampler(sampleCount: data.train.count, ranks: replicas, rank: replica,
                                         batchPerRank: options.batchSize, seed: setup.seed)
        // Every rank builds the whole model; a stage keeps up to a batch of activations
        // (GPipe: every micro-batch), bounded here by the whole model's.
        model = try setup.buildModel(options.model, batch: options.batchSize)
        partition = try options.split.map { try StagePartition(starts: $0, layerCount: model.layers.count) }
            ?? StagePartition(balancing: model.trainingMACs(), stages: S)
        guard partition.stages == S else { throw PipelineSetupError.splitStageCount(given: partition.stages, stages: S) }
        runner = StageRunner(model: model, layers: partition.ranges[stage])
        schedule = PipelineSchedule(options.schedule, stages: S, microbatches: M)
        try schedule.validate()
        let stageList = partition.ranges.enumerated().map { s, range in
            "stage \(s): layers \(range.lowerBound)..<\(range.upperBound) (\(range.map { model.layers[$0].name }.joined(separator: " ")))"
        }
        // Stages that disagree on any of these would exchange messages of the wrong size.
        let layout = [ConfigurationField(PipelineField.stages, "\(partition.ranges)"),
                      ConfigurationField(PipelineField.microbatches, "\(M)"),
                      ConfigurationField(PipelineField.schedule, options.schedule.rawValue),
                      ConfigurationField(PipelineField.batchSize, "\(options.batchSize)"),
                      ConfigurationField(HookField.hook, hook.configuration)]
        return StrategyPlan(
            configuration: layout, stepsPerEpoch: sampler.stepsPerEpoch, model: options.model.description, parameterCount: model.parameters.count,
            globalBatch: options.batchSize * replicas, linearScalingFactor: replicas,
            // Only last stages know the loss: summed over the world, averaged over replicas.
            lossReporting: .mean(over: world, contributors: replicas),
            description: ["\(Formatting.count(S, "stage")) x \(Formatting.count(replicas, "replica")), batch \(options.batchSize) per pipeline in "
                          + "\(M) micro-batches of \(options.batchSize / M), \(options.schedule.rawValue) schedule"] + stageList)
    }

    public func start(_ services: TrainingServices) throws {
        self.services = services
        // A pipeline's ranks, numbered by stage; and one rank per replica of this stage.
        pipeline = world.split(color: replica, key: stage)!
        stageGroup = world.split(color: stage, key: replica)!
        stageSlots = model.parameters.slots.filter { partition.ranges[stage].contains($0.layerIndex) }
        if replicas > 1 {
            // Counted, so the run can report the bytes its gradients really sent.
            let counting = CountingCommunicator(stageGroup)
            replicaBytes = counting.counter
            replicaReducer = Allreducer(world: counting)
            hookContext = HookContext(communicator: counting, allreducer: replicaReducer!, algorithm: .auto, trace: services.trace)
            hook.prepare(totalSteps: services.totalSteps)
        }
        executor = StageExecutor(runner: runner, schedule: schedule, stage: stage, pipeline: pipeline,
                                 microbatch: options.batchSize / options.microbatches, loss: options.loss,
                                 trace: services.trace, watchdog: services.watchdog)
        optimizer = services.makeOptimizer()
    }

    public func beginEpoch(_ epoch: Int) {
        order = sampler.permutation(epoch: epoch)
    }

    public func step(_ context: StepContext) throws -> StepOutcome {
        let S = stages, watchdog = services.watchdog, number = context.step + 1
        let range = runner.parameterRange
        let values = UnsafeMutableBufferPointer(rebasing: model.parameters.values[range])
        let gradients = UnsafeMutableBufferPointer(rebasing: model.parameters.gradients[range])
        let needsData = stage == 0 || stage == S - 1
        let indices = sampler.indices(step: context.stepInEpoch, of: order)
        let (images, labels) = needsData ? data.train.batch(indices) : (Tensor(shape: [0], storage: []), [])
        gradients.update(repeating: 0)

        // Every stage starts the step together, so idle time is measurable.
        watchdog.waiting(for: "the other stages to start step \(number)") { pipeline.barrier() }
        let stepStart = MonotonicClock.seconds()
        let result = executor.runStep(images: images, labels: labels, step: number)
        let ownEnd = MonotonicClock.seconds()
        // The step lasts until its slowest stage is done.
        stepSeconds += watchdog.waiting(for: "the other stages to finish step \(number)") {
            pipeline.allreduce(ownEnd - stepStart, op: .max)
        }
        busySeconds += result.busySeconds
        forwardSeconds += result.forwardSeconds
        backwardSeconds += result.backwardSeconds
        stepsRun += 1
        if let hookContext {
            // The stage's gradients are one bucket: they are all final once the step is.
            watchdog.waiting(for: "the all-reduce of stage \(stage)'s gradients across replicas at step \(number)") {
                hook.communicate(GradientBucket(index: 0, gradients: gradients, offset: range.lowerBound, tensors: stageSlots,
                                                step: number), hookContext)
            }
            hookContext.meter.record(gradientBytes: gradients.count * MemoryLayout<Float>.stride)
            communicatedSteps += 1
        }
        // Stages hold different gradients: they agree on the verdict, or one stage
        // would stop while the others wait for it.
        guard try services.screen.admits(model.parameters, range: range, step: context.step,
                                         layerName: { self.model.layers[$0].name }, stage: stage,
                                         agreeingOver: world) else {
            return StepOutcome(loss: result.loss, skipped: true)
        }
        let start = MonotonicClock.seconds()
        optimizer.learningRate = context.learningRate
        optimizer.step(values: values, gradients: gradients)
        services.trace?.span("optimizer step", category: "optimizer", since: start)
        return StepOutcome(loss: result.loss)
    }

    public func checkpointScope(directory: String) -> CheckpointScope? {
        // Each stage's tensors and optimizer state in a directory of its own, written
        // by replica 0.
        return CheckpointScope(
            directory: (directory as NSString).appendingPathComponent("stage-\(stage)"), writes: replica == 0,
            parameters: model.parameters, slots: stageSlots, optimizer: optimizer,
            layout: ["model": options.model.description, "ranks": "\(world.size)", "stages": "\(stages)",
                     "stage": "\(stage)", "stage_layers": "\(partition.ranges[stage])",
                     "global_batch": "\(options.batchSize * replicas)",
                     "optimizer": services.optimizerName, "seed": "\(sampler.seed)",
                     "communication_hook": hook.configuration],
            subject: "every stage",
            saveState: { [hook] in hook.checkpointState },
            restoreState: { [hook] in try hook.restore(checkpointState: $0) },
            stateGroup: stageGroup)
    }

    /// Gives every rank of the pipeline the whole model: each stage contributes its
    /// parameter slice (replicas hold identical values, so one pipeline suffices).
    public func prepareEvaluation() throws -> EvaluationTarget {
        pipeline.allgatherRanges(of: model.parameters.values,
                                 owned: partition.ranges.map { StageRunner(model: model, layers: $0).parameterRange })
        return EvaluationTarget(model: model, group: world, parameters: model.parameters, modelName: options.model.description)
    }

    public func report(into metrics: inout Metrics) -> String? {
        // Idle fraction over the stages of a pipeline (averaged over replicas).
        let busyAll = world.allreduce(busySeconds, op: .sum)
        let wallAll = world.allreduce(stepSeconds, op: .sum)  // each stage added the same per-step maxima
        let bubble = wallAll > 0 ? 1 - busyAll / wallAll : 0
        let stageTimesBubble = stageTimesBubble()
        let peaks = pipeline.allgather(Int64(executor.peakStoredMicrobatches)).map(Int.init)
        let peakBytes = pipeline.allgather(Int64(executor.peakStoredBytes)).map(Int.init)
        if let hookContext, let replicaBytes {
            metrics["communication_hook"] = hook.configuration
            hookContext.meter.report(into: &metrics, bytesSent: replicaBytes.bytes, steps: communicatedSteps, over: world)
        }
        metrics["stages"] = stages
        metrics["replicas"] = replicas
        metrics["stage_layers"] = partition.ranges.map { [$0.lowerBound, $0.upperBound] }
        metrics["microbatches"] = options.microbatches
        metrics["schedule"] = options.schedule.rawValue
        metrics["batch_size"] = options.batchSize
        metrics["bubble_fraction_measured"] = bubble
        metrics["bubble_fraction_theory"] = schedule.theoreticalBubble
        metrics["bubble_fraction_stage_times"] = stageTimesBubble
        metrics["peak_stored_activations"] = peaks
        metrics["peak_stored_activation_bytes"] = peakBytes
        return "bubble \(Formatting.decimals(bubble, 3)) measured / \(Formatting.decimals(schedule.theoreticalBubble, 3)) theory / "
            + "\(Formatting.decimals(stageTimesBubble, 3)) for these stages' times, peak stored micro-batches per stage \(peaks)"
    }

    /// The bubble this schedule would have with no overhead at all, given each stage's
    /// measured mean forward and backward time per micro-batch (averaged over
    /// replicas). The formula (S − 1)/(M + S − 1) assumes equal stages; the layers
    /// rarely split so (the 1024x4 MLP's best split into two is 1.8 : 2.0 in forward
    /// multiply-adds and 4.6 : 6.0 with backward, whose first layer needs no input
    /// gradient), and then the faster stages wait on the slowest however the schedule
    /// interleaves. Measured minus this is what messages, barriers and bookkeeping cost.
    private func stageTimesBubble() -> Double {
        let perMicrobatch = Double(max(1, stepsRun * options.microbatches))
        let forwards = pipeline.allgather(forwardSeconds / perMicrobatch)
        let backwards = pipeline.allgather(backwardSeconds / perMicrobatch)
        // The schedule was validated (simulated) in plan: it cannot deadlock here.
        let own = try! schedule.bubble(forward: forwards, backward: backwards)
        return world.allreduce(own, op: .sum) / Double(world.size)
    }

    public func close() {
        replicaReducer?.release()
        stageGroup?.release()
        pipeline?.release()
    }
}

/// Names of the pipeline settings the ranks agree on.
public enum PipelineField {
    public static let stages = "the stages"
    public static let microbatches = "the micro-batches per batch"
    public static let schedule = "the pipeline schedule"
    public static let batchSize = "the batch per pipeline"
}
