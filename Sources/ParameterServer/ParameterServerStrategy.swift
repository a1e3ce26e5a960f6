import Communication
import Coordination
import Datasets
import Foundation
import NeuralNet
import Persistence
import TrainingLoop

/// What a parameter-server run trains and how, in the library's terms.
public struct ParameterServerOptions: Sendable {
    public var model: ModelDescription
    /// Samples per worker per iteration.
    public var batchPerWorker: Int
    /// The first `servers` ranks serve; the others work.
    public var servers: Int
    public var consistency: ConsistencyModel
    public var stragglers = Stragglers()
    public var loss: any LossFunction = SoftmaxCrossEntropyLoss()

    public init(model: ModelDescription, batchPerWorker: Int, servers: Int, consistency: ConsistencyModel) {
        self.model = model
        self.batchPerWorker = batchPerWorker
        self.servers = servers
        self.consistency = consistency
    }
}

/// Names of the parameter-server settings the ranks agree on.
public enum ParameterServerField {
    public static let servers = "the number of servers"
    public static let consistency = "the consistency model"
    public static let batchPerWorker = "the batch per worker"
    public static let stragglers = "the simulated stragglers"
}

/// A job too small for its roles: no worker, or no server.
public struct RolesDoNotFit: Error, CustomStringConvertible {
    public let ranks: Int
    public let servers: Int

    public var description: String {
        servers < 1 ? "a parameter server needs at least one server (got \(servers))"
            : "\(servers) server\(servers == 1 ? "" : "s") on \(ranks) rank\(ranks == 1 ? "" : "s") leave no worker: "
                + "run at least \(servers + 1) ranks, or fewer servers"
    }
}

/// A straggler named a rank that is not a worker's.
public struct StragglerIsNotAWorker: Error, CustomStringConvertible {
    public let rank: Int
    public let servers: Int
    public let ranks: Int

    public var description: String {
        "the slowed rank \(rank) is not a worker: workers are ranks \(servers)..\(ranks - 1) (ranks 0..\(servers - 1) serve)"
    }
}

/// Training with a parameter server, as a strategy of the shared loop: the first K
/// ranks are servers, each holding a range of the parameters and of the optimizer
/// state (`ServerPartition`, `ServerShard`); the other W ranks are workers, each
/// holding a full copy for compute only. Every worker iteration computes the
/// gradient of the worker's shard of a global batch (the sampler of data-parallel
/// training, W ranks), pushes each server its range and pulls the fresh ranges back
/// (`WorkerChannel`), under the consistency model's rule for reads.
///
/// How this maps onto the loop: the loop's step s is the servers' unit of progress,
/// W pushes (one global batch's worth of gradients; under BSP exactly clock s of
/// every worker). Servers serve until their count of pushes reaches (s+1)·W; workers
/// iterate until server 0 reports that count. Where the loop communicates after a
/// step (a checkpoint, an epoch's evaluation, the end of the run) the step is a
/// synchronisation point: server 0 pauses every worker at its next admissible read
/// (under a bound S, once within S clocks of the fastest), the others learn of it,
/// and the loop's collectives run on a quiet job. The evaluation is of the servers'
/// parameters, gathered to every rank; checkpoints are the servers' ranges with
/// their optimizer state, one directory per server.
///
/// Under BSP the run equals synchronous data parallelism on W ranks with the same
/// per-rank batch (the same batches, the same averaged step). Under SSP and ASP the
/// interleaving depends on timing, so a run (and a resumed one, which restarts every
/// worker at the checkpoint's step) is not reproducible bit for bit.
public final class ParameterServerStrategy: TrainingStrategy {
    public let options: ParameterServerOptions
    private let communicator: any Communicator
    private var data: DatasetSplits!
    private var model: Sequential!
    private var partition: ServerPartition!
    private var services: TrainingServices!
    private var seed: UInt64 = 0
    /// The parameter server's own messages, on a duplicate of the loop's group.
    private var channel: (any Communicator)?
    /// A server's own group, for its checkpoint's state (it writes its directory alone).
    private var ownGroup: (any Communicator)?
    private var shard: ServerShard?
    private var worker: WorkerState?
    private var begun = false

    public init(options: ParameterServerOptions, communicator: any Communicator) {
        self.options = options
        self.communicator = communicator
    }

    var servers: Int { options.servers }
    var workers: Int { communicator.size - options.servers }
    var isServer: Bool { communicator.rank < options.servers }

    public func plan(_ setup: TrainingSetup) throws -> StrategyPlan {
        let ranks = communicator.size, batch = options.batchPerWorker
        guard servers >= 1, workers >= 1 else { throw RolesDoNotFit(ranks: ranks, servers: servers) }
        if let slow = options.stragglers.persistent, !(servers..<ranks).contains(slow.rank) {
            throw StragglerIsNotAWorker(rank: slow.rank, servers: servers, ranks: ranks)
        }
        data = setup.data
        seed = setup.seed
        let sampler = try DistributedSampler(sampleCount: data.train.count, ranks: workers, rank: max(communicator.rank - servers, 0),
                                             batchPerRank: batch, seed: setup.seed)
        model = try setup.buildModel(options.model, batch: batch)
        partition = try ServerPartition(slots: model.parameters.slots, servers: servers)
        if !isServer { worker = WorkerState(sampler: sampler) }
        return StrategyPlan(
            configuration: [
                ConfigurationField(ParameterServerField.servers, "\(servers)"),
                ConfigurationField(ParameterServerField.consistency, options.consistency.description),
                ConfigurationField(ParameterServerField.batchPerWorker, "\(batch)"),
                ConfigurationField(ParameterServerField.stragglers, options.stragglers.description),
            ],
            stepsPerEpoch: sampler.stepsPerEpoch, model: options.model.description, parameterCount: model.parameters.count,
            globalBatch: sampler.globalBatch, linearScalingFactor: workers,
            // Workers are not in lockstep: rank 0 (a server) logs the loss its pushes carried.
            lossReporting: .local,
            description: ["\(Formatting.count(servers, "server")) + \(Formatting.count(workers, "worker")) x batch \(batch), "
                          + "parameter server (\(options.consistency))"
                          + (options.stragglers == Stragglers() ? "" : ", stragglers: \(options.stragglers)"),
                          "parameter ranges by server: \(partition.description)"])
    }

    public func start(_ services: TrainingServices) throws {
        self.services = services
        let channel = communicator.duplicate()
        self.channel = channel
        ownGroup = communicator.split(color: isServer ? communicator.rank : nil, key: 0)
        if isServer {
            let k = communicator.rank
            let slice = FlatParameters(slots: partition.pieces(of: k, slots: model.parameters.slots))
            _ = slice.values.update(fromContentsOf: UnsafeBufferPointer(rebasing: model.parameters.values[partition.ranges[k]]))
            shard = ServerShard(index: k, parameters: slice, optimizer: services.makeOptimizer(), consistency: options.consistency,
                                channel: channel, workerRanks: Array(servers..<communicator.size))
        } else {
            worker!.channel = WorkerChannel(channel: channel, partition: partition)
        }
    }

    public func beginEpoch(_ epoch: Int) {}

    public func step(_ context: StepContext) throws -> StepOutcome {
        if !begun {
            // Fresh or resumed, workers start from the servers' parameters.
            begun = true
            gatherParameters()
            shard?.start(atStep: context.step)
            worker?.clock = context.step
            worker?.startClock = context.step
            worker?.knownStep = context.step
        }
        if let shard {
            shard.optimizer.learningRate = context.learningRate
            let before = shard.pushes
            shard.serve(untilPushes: (context.step + 1) * workers, synchronizing: context.synchronizes,
                        watchdog: services.watchdog, step: context.step)
            return StepOutcome(loss: shard.meanLoss(), samples: (shard.pushes - before) * options.batchPerWorker)
        }
        return try work(context)
    }

    /// A worker's share of step s: iterations until server 0 has counted the step's
    /// pushes, or, at a synchronisation point, until it says pause.
    ///
    /// A worker learns the global step only from replies, so its loop may be a few
    /// steps behind the servers' when the pause comes: it then stays paused through
    /// its remaining steps up to the synchronisation point (the next one: the servers
    /// cannot have passed another without this worker).
    private func work(_ context: StepContext) throws -> StepOutcome {
        let worker = worker!
        var loss = 0.0, iterations = 0
        while !worker.paused && (context.synchronizes || worker.knownStep <= context.step) {
            loss += try iterate(worker)
            iterations += 1
        }
        if context.synchronizes { worker.paused = false }
        return StepOutcome(loss: iterations > 0 ? loss / Double(iterations) : .nan,
                           samples: iterations * options.batchPerWorker)
    }

    /// One iteration at the worker's clock: its batch's gradient, delayed if this
    /// worker straggles now, pushed; the fresh parameters pulled.
    private func iterate(_ worker: WorkerState) throws -> Double {
        let parameters = model.parameters
        let started = MonotonicClock.seconds()
        let (images, labels) = worker.batch(clock: worker.clock, from: data.train)
        parameters.zeroGradients()
        let (logits, tape) = model.forward(images, training: true)
        let (loss, gradient) = options.loss.lossAndGradient(logits: logits, labels: labels)
        model.backward(gradient, tape: tape)
        let compute = MonotonicClock.seconds() - started
        worker.computeSeconds += compute
        let slowdown = options.stragglers.factor(rank: communicator.rank, iteration: worker.clock, seed: seed)
        if slowdown > 1 {
            Thread.sleep(forTimeInterval: (slowdown - 1) * compute)
            worker.straggledSeconds += (slowdown - 1) * compute
        }
        let admitted: Bool
        do {
            admitted = try services.screen.admits(parameters, range: 0..<parameters.count, step: worker.clock,
                                                  layerName: { self.model.layers[$0].name }, loss: loss)
        } catch {
            // Only this worker holds this gradient: no verdict the others could share.
            communicator.abort("error [rank \(communicator.rank)]: \(error)")
        }
        let answer = worker.channel.pushPull(gradients: parameters.gradients, loss: loss, skipped: !admitted, clock: worker.clock,
                                             into: parameters.values, watchdog: services.watchdog)
        worker.clock += 1
        worker.knownStep = answer.globalStep
        if answer.verdict == .pause {
            worker.paused = true
            worker.channel.announcePause()
        }
        return loss
    }

    /// Every rank's model set to the servers' parameters (collective).
    private func gatherParameters() {
        let values = model.parameters.values
        if let shard {
            _ = UnsafeMutableBufferPointer(rebasing: values[partition.ranges[communicator.rank]])
                .update(fromContentsOf: UnsafeBufferPointer(shard.parameters.values))
        }
        // Servers own their ranges; workers own none.
        communicator.allgatherRanges(of: values, owned: partition.ranges + Array(repeating: 0..<0, count: workers))
    }

    public func checkpointScope(directory: String) -> CheckpointScope? {
        guard let shard else { return nil }
        let k = communicator.rank
        return CheckpointScope(
            directory: (directory as NSString).appendingPathComponent("server-\(k)"), writes: true,
            parameters: shard.parameters, slots: shard.parameters.slots, optimizer: shard.optimizer,
            layout: ["model": options.model.description, "ranks": "\(communicator.size)", "servers": "\(servers)",
                     "server": "\(k)", "server_range": "\(partition.ranges[k])",
                     "global_batch": "\(options.batchPerWorker * workers)", "consistency": options.consistency.description,
                     "optimizer": services.optimizerName, "seed": "\(seed)"],
            subject: "every server", stateGroup: ownGroup)
    }

    public func prepareEvaluation() throws -> EvaluationTarget {
        gatherParameters()
        return EvaluationTarget(model: model, group: communicator, parameters: model.parameters, modelName: options.model.description)
    }

    public func report(into metrics: inout Metrics) -> String? {
        ParameterServerReport(strategy: self, shard: shard, worker: worker, communicator: communicator).write(into: &metrics)
    }

    /// Server 0's view: the workers' clocks and the most stale read so far.
    public func progressDetail() -> String? {
        shard.map { "clocks \($0.clocks.slowest)-\($0.clocks.fastest) staleness max \($0.maxStaleness)" }
    }

    public func close() {
        channel?.release()
        ownGroup?.release()
        channel = nil
        ownGroup = nil
    }
}
