import Collectives
import Communication
import CommunicationHooks
import Coordination
import Datasets
import Foundation
import NeuralNet
import Persistence
import TrainingLoop

/// What a data-parallel run trains and how, in the library's terms.
public struct DataParallelOptions: Sendable {
    public var model: ModelDescription
    /// Samples per rank per micro-batch.
    public var batchPerRank: Int
    /// Micro-batches per optimizer step; gradients are only communicated on the last
    /// (DDP's `no_sync`).
    public var accumulate = 1
    public var engine = DataParallelEngine.Configuration()
    public var loss: any LossFunction = SoftmaxCrossEntropyLoss()

    public init(model: ModelDescription, batchPerRank: Int) {
        self.model = model
        self.batchPerRank = batchPerRank
    }
}

/// Names of the data-parallel settings the ranks agree on.
public enum DataParallelField {
    public static let batchPerRank = "the batch per rank"
    public static let accumulation = "the micro-batches accumulated per step"
    public static let algorithm = "the all-reduce algorithm"
    public static let nodes = "the node grouping"
    public static let decisionTable = AllreduceDecisionTable.agreementField
    public static let bucketCap = "the gradient bucket cap"
    public static let overlap = "overlapping communication with backward"
    public static let hook = HookField.hook
}

/// An epoch has fewer global batches than one optimizer step accumulates.
public struct AccumulationExceedsEpoch: Error, CustomStringConvertible {
    public let accumulate: Int
    public let globalBatch: Int
    public let stepsPerEpoch: Int
    public let dataset: String

    public var description: String {
        "accumulating \(accumulate) micro-batches needs \(accumulate) global batches of \(globalBatch) per epoch; "
            + "\(dataset) has \(stepsPerEpoch)"
    }
}

/// Synchronous data-parallel training, as a strategy of the shared loop: every rank
/// holds the whole model, computes gradients on its shard of each global batch, and
/// the gradients are averaged across ranks (`DataParallelEngine`) before every rank
/// applies the same update.
///
/// One optimizer step (docs/ddp.md has the whole lifecycle and a trace):
///
///     zero gradients
///     K times (gradient accumulation; K = 1 by default):
///         forward (own B samples) → loss, its gradient scaled by 1/K
///         backward; on the K-th only, each finished layer hands its completed
///         gradient buckets to the engine's communication thread
///     wait for the buckets still in flight → optimizer step at the scheduled rate
///
/// Because the sampler gives p ranks with batch B exactly the samples one process
/// with batch p·B would see, and every rank starts from rank 0's parameters, the
/// ranks stay identical and the run equals single-process training on the global
/// batch (up to float summation order).
public final class DataParallelStrategy: TrainingStrategy {
    public let options: DataParallelOptions
    public let hook: CommunicationHook
    private let communicator: any Communicator
    private var model: Sequential!
    private var data: DatasetSplits!
    private var sampler: DistributedSampler!
    private var order: [Int] = []
    private var engine: DataParallelEngine!
    private var optimizer: Optimizer!
    private var services: TrainingServices!

    public init(options: DataParallelOptions, communicator: any Communicator, hook: CommunicationHook = AveragingHook()) {
        self.options = options
        self.communicator = communicator
        self.hook = hook
    }

    public func plan(_ setup: TrainingSetup) throws -> StrategyPlan {
        let k = options.accumulate, ranks = communicator.size
        data = setup.data
        sampler = try DistributedSampler(sampleCount: data.train.count, ranks: ranks, rank: communicator.rank,
                                         batchPerRank: options.batchPerRank, seed: setup.seed)
        guard sampler.stepsPerEpoch >= k else {
            throw AccumulationExceedsEpoch(accumulate: k, globalBatch: sampler.globalBatch, stepsPerEpoch: sampler.stepsPerEpoch,
                                           dataset: data.name)
        }
        model = try setup.buildModel(options.model, batch: options.batchPerRank)
        let engine = options.engine
        let accumulated = k > 1 ? " x \(k) accumulated" : ""
        return StrategyPlan(
            configuration: [
                ConfigurationField(DataParallelField.batchPerRank, "\(options.batchPerRank)"),
                ConfigurationField(DataParallelField.accumulation, "\(k)"),
                ConfigurationField(DataParallelField.algorithm, engine.algorithm.rawValue),
                ConfigurationField(DataParallelField.bucketCap, "\(engine.bucketCapBytes) bytes"),
                ConfigurationField(DataParallelField.overlap, "\(engine.overlap)"),
                ConfigurationField(DataParallelField.hook, hook.configuration),
            ],
            stepsPerEpoch: sampler.stepsPerEpoch / k, model: options.model.description, parameterCount: model.parameters.count,
            globalBatch: sampler.globalBatch * k, linearScalingFactor: ranks * k,
            lossReporting: .mean(over: communicator, contributors: ranks),
            description: ["\(Formatting.count(ranks, "rank")) x batch \(options.batchPerRank)\(accumulated), data parallel"])
    }

    public func start(_ services: TrainingServices) throws {
        self.services = services
        engine = try DataParallelEngine(parameters: model.parameters, communicator: communicator,
                                        configuration: options.engine, hook: hook, trace: services.trace,
                                        watchdog: services.watchdog)
        engine.broadcastParameters(from: 0)
        hook.prepare(totalSteps: services.totalSteps)
        optimizer = services.makeOptimizer()
        let bytes = engine.bucketBytes
        ConsoleLog.info("gradients: \(Formatting.count(bytes.count, "bucket")) (\(bytes.map(Formatting.bytes).joined(separator: ", "))), "
                        + "\(options.engine.overlap ? "reduced during backward" : "reduced after backward"), "
                        + "\(options.engine.algorithm.rawValue) all-reduce (\(engine.resolvedAlgorithm.rawValue) for the largest, "
                        + "\(engine.allreducer.layout.description)), \(Formatting.count(BLAS.threads, "BLAS thread"))/rank",
                        rank: communicator.rank)
        if !(hook is AveragingHook) { ConsoleLog.info("communication hook: \(hook.configuration)", rank: communicator.rank) }
    }

    public func beginEpoch(_ epoch: Int) {
        order = sampler.permutation(epoch: epoch)
    }

    public func step(_ context: StepContext) throws -> StepOutcome {
        let k = options.accumulate, parameters = model.parameters, trace = services.trace
        parameters.zeroGradients()
        var loss = 0.0
        for micro in 0..<k {
            let last = micro == k - 1
            let (images, labels) = data.train.batch(sampler.indices(step: context.stepInEpoch * k + micro, of: order))
            var layerStart = MonotonicClock.seconds()
            let (logits, tape) = model.forward(images, training: true, layerDone: trace.map { trace in
                { [model] index in
                    trace.span("forward \(model!.layers[index].name)", category: "forward", since: layerStart)
                    layerStart = MonotonicClock.seconds()
                }
            })
            var (microLoss, gradient) = options.loss.lossAndGradient(logits: logits, labels: labels)
            // The mean over K micro-batches of B is the mean over one batch of K·B.
            if k > 1 { gradient.scale(by: 1 / Float(k)) }
            loss += microLoss / Double(k)
            if last { engine.prepareForBackward() }
            layerStart = MonotonicClock.seconds()
            model.backward(gradient, tape: tape) { [model, engine] index in
                if let trace {
                    trace.span("backward \(model!.layers[index].name)", category: "backward", since: layerStart)
                    layerStart = MonotonicClock.seconds()
                }
                if last { engine!.markLayerReady(index) }
            }
        }
        engine.finalizeBackward()

        // After averaging every rank holds the same gradients: the same verdict everywhere.
        guard try services.screen.admits(parameters, range: 0..<parameters.count, step: context.step,
                                         layerName: { model.layers[$0].name }, loss: loss) else {
            return StepOutcome(loss: loss, skipped: true)
        }
        let start = MonotonicClock.seconds()
        optimizer.learningRate = context.learningRate
        optimizer.step(values: parameters.values, gradients: parameters.gradients)
        trace?.span("optimizer step", category: "optimizer", since: start, arguments: ["lr": "\(optimizer.learningRate)"])
        return StepOutcome(loss: loss)
    }

    public func checkpointScope(directory: String) -> CheckpointScope? {
        CheckpointScope(directory: directory, writes: communicator.rank == 0, parameters: model.parameters,
                        slots: model.parameters.slots, optimizer: optimizer,
                        layout: ["model": options.model.description, "ranks": "\(communicator.size)",
                                 "global_batch": "\(sampler.globalBatch * options.accumulate)",
                                 "optimizer": services.optimizerName, "seed": "\(sampler.seed)",
                                 "communication_hook": hook.configuration]
                            .merging(hook.keepsBucketState ? ["gradient_buckets": engine.bucketBytes.map(String.init).joined(separator: " ")]
                                                           : [:]) { own, _ in own },
                        saveState: { [hook] in hook.checkpointState },
                        restoreState: { [hook] in try hook.restore(checkpointState: $0) })
    }

    public func prepareEvaluation() throws -> EvaluationTarget {
        EvaluationTarget(model: model, group: communicator, parameters: model.parameters, modelName: options.model.description)
    }

    public func report(into metrics: inout Metrics) -> String? {
        let ranks = communicator.size
        // Means over ranks.
        let comm = communicator.allreduce(engine.communicationSeconds, op: .sum) / Double(ranks)
        let exposed = communicator.allreduce(engine.exposedCommunicationSeconds, op: .sum) / Double(ranks)
        // One rank has nothing to communicate (the all-reduce returns at once): no overlap to report.
        let overlap = ranks > 1 && comm > 0 ? max(0, 1 - exposed / comm) : 0
        metrics["batch_per_rank"] = options.batchPerRank
        metrics["accumulate"] = options.accumulate
        metrics["allreduce"] = options.engine.algorithm.rawValue
        metrics["allreduce_resolved"] = engine.resolvedAlgorithm.rawValue
        metrics["allreduce_table"] = AllreduceDecisionTable.summary(options.engine.decisionTable)
        metrics["nodes"] = engine.allreducer.layout.nodeCount
        metrics["overlap"] = options.engine.overlap
        metrics["buckets"] = engine.plan.buckets.count
        metrics["bucket_bytes"] = engine.bucketBytes
        metrics["communication_hook"] = hook.configuration
        engine.meter.report(into: &metrics, bytesSent: engine.bytesSent, steps: engine.communicatedSteps, over: communicator)
        metrics["comm_seconds"] = comm
        metrics["exposed_comm_seconds"] = exposed
        metrics["overlap_fraction"] = overlap
        return "all-reduce \(Formatting.decimals(comm, 2)) s (exposed \(Formatting.decimals(exposed, 2)) s, overlap \(Formatting.decimals(overlap * 100, 0))%)"
    }

    public func close() {
        engine?.close()
    }
}
