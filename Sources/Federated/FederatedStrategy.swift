import Collectives
import Communication
import Coordination
import Datasets
import Foundation
import NeuralNet
import Persistence
import TrainingLoop

/// Federated training as a strategy of the shared loop: a loop step is a round.
///
/// One round (docs/federated.md has the protocol):
///
///     plan         which clients are asked and which report (`RoundPlan`: a function
///                  of the seed and the round, the same on every rank without a message)
///     train        each rank trains its block of the reporting clients, one after
///                  another, each from the global model (`LocalTrainer`)
///     aggregate    Σ n_k·Δ_k, Σ n_k and Σ n_k·loss_k over the ranks, client by client
///                  in order (`UpdateAggregator`: plain, or masked for secure aggregation)
///     server step  w ← w − η_s·v, v ← β·v + g with g = −Σ n_k·Δ_k / Σ n_k (FedAvgM;
///                  η_s = 1, β = 0 is FedAvg: w becomes the sample-weighted average)
///
/// Every rank holds the global model and applies the same server step to the same
/// sums, so there is no broadcast; the clients' data never moves (every rank loaded
/// the training set, and a client's samples are an index list). A round in which no
/// client reported keeps the model.
public final class FederatedStrategy: TrainingStrategy {
    public let options: FederatedOptions
    private let communicator: any Communicator
    private var aggregator: UpdateAggregator = PlainAggregator()
    private var global: Sequential!
    private var trainer: LocalTrainer!
    private var partition: ClientPartition!
    private var timing: ClientTiming!
    private var serverOptimizer: Optimizer!
    private var services: TrainingServices!
    private var seed: UInt64 = 0
    private var measured = FederatedMeasurements()
    private var rounds: RoundsFile?

    public init(options: FederatedOptions, communicator: any Communicator) {
        self.options = options
        self.communicator = communicator
        rounds = options.roundsFile.map(RoundsFile.init)
    }

    /// The partition of the training set the run uses (after `plan`).
    public var clientPartition: ClientPartition? { partition }

    public func plan(_ setup: TrainingSetup) throws -> StrategyPlan {
        try options.check(ranks: communicator.size)
        seed = setup.seed
        aggregator = options.secureAggregation.map { SecureAggregator(scheme: $0, seed: setup.seed) } ?? PlainAggregator()
        let data = setup.data.train
        partition = try ClientPartition(labels: data.labels, classes: data.classes, clients: options.clients,
                                        scheme: options.partition, seed: setup.seed, minimumSize: options.minimumClientSize)
        let batch = options.effectiveLocalBatch == 0 ? partition.sizes.max()! : options.effectiveLocalBatch
        global = try setup.buildModel(options.model, batch: batch)
        trainer = LocalTrainer(workspace: try options.model.build(seed: setup.seed), data: data, loss: options.loss,
                               epochs: options.effectiveLocalEpochs, batch: options.effectiveLocalBatch,
                               proximal: options.algorithm == .fedprox ? options.proximal : 0, seed: setup.seed)
        let sizes = partition.sizes, perRound = options.clientsPerRound
        timing = ClientTiming(sizes: sizes, epochs: options.effectiveLocalEpochs, batch: options.effectiveLocalBatch,
                              slow: options.slowClients, deadline: options.roundDeadline,
                              keepsPartialWork: options.algorithm == .fedprox, seed: setup.seed)
        let trainers = options.serverRankOnly ? communicator.size - 1 : communicator.size
        var plan = StrategyPlan(
            configuration: [
                ConfigurationField(FederatedField.clients, "\(options.clients), \(perRound) per round"
                                   + (options.serverRankOnly ? ", rank 0 serving only" : "")),
                ConfigurationField(FederatedField.algorithm, options.algorithm.rawValue),
                ConfigurationField(FederatedField.localTraining, "E \(options.effectiveLocalEpochs), B \(options.effectiveLocalBatch), "
                                   + "mu \(options.proximal)"),
                ConfigurationField(FederatedField.server, "lr \(options.serverLearningRate), momentum \(options.serverMomentum)"),
                ConfigurationField(FederatedField.partition, "\(options.partition), minimum \(options.minimumClientSize)"),
                ConfigurationField(FederatedField.dropout, "\(options.dropout), at least \(options.minimumReports) reports"),
                ConfigurationField(FederatedField.stragglers, "\(options.slowClients.map(String.init(describing:)) ?? "none"), "
                                   + "deadline \(options.roundDeadline.map { "\($0)" } ?? "none")"),
                ConfigurationField(FederatedField.secureAggregation, aggregator.configuration),
            ],
            stepsPerEpoch: options.rounds, model: options.model.description, parameterCount: global.parameters.count,
            globalBatch: Int((Double(perRound) * timing.unitSamples * Double(options.effectiveLocalEpochs)).rounded()),
            linearScalingFactor: 1, lossReporting: .local,
            description: [
                "\(Formatting.count(options.clients, "client")) (\(options.partition), \(sizes.min()!)-\(sizes.max()!) samples each) "
                    + "trained by \(Formatting.count(trainers, "rank")), \(perRound) asked per round; \(options.algorithm.rawValue) "
                    + "E \(options.effectiveLocalEpochs) B \(options.effectiveLocalBatch == 0 ? "all" : "\(options.effectiveLocalBatch)")"
                    + (options.algorithm == .fedprox ? " mu \(options.proximal)" : "")
                    + (options.dropout > 0 ? ", dropout \(options.dropout)" : "")
                    + (options.slowClients.map { ", \(timing.slowClients) clients \($0.slowdown)x slower" } ?? "")
                    + (options.roundDeadline.map { ", deadline \($0) (mean-size client epochs)" } ?? "")
                    + (options.secureAggregation != nil ? ", secure aggregation" : ""),
            ])
        plan.stepName = "round"
        plan.countsEpochs = false
        return plan
    }

    public func start(_ services: TrainingServices) throws {
        self.services = services
        // Every rank built the model from the seed; the broadcast makes that a fact.
        broadcast(global.parameters.values, root: 0, over: communicator)
        serverOptimizer = OptimizerSettings(kind: .momentum, momentum: options.serverMomentum)
            .make(learningRate: options.serverLearningRate)
    }

    public func beginEpoch(_ epoch: Int) {}

    public func step(_ context: StepContext) throws -> StepOutcome {
        let round = context.step, started = MonotonicClock.seconds()
        rounds?.begin(round: round)
        let plan = RoundPlan(round: round, clients: options.clients, perRound: options.clientsPerRound, dropout: options.dropout,
                             minimumReports: options.minimumReports, seed: seed) { timing.work(client: $0) == .late }
        let updates = myClients(plan).map { client in
            let optimizer = services.makeOptimizer()
            optimizer.learningRate = context.learningRate
            return trainer.train(client: client, samples: partition.clients[client], from: global.parameters.values,
                                 round: round, optimizer: optimizer, stepLimit: timing.stepLimit(client: client))
        }
        let parameters = global.parameters.count
        let askedSamples = plan.asked.reduce(0) { $0 + partition.clients[$1].count }
        let aggregate = services.watchdog.waiting(for: "the aggregation of round \(round + 1)") {
            aggregator.aggregate(updates, plan: plan, askedSamples: askedSamples, parameters: parameters, over: communicator)
        }

        let processed = plan.reporting.reduce(0) { $0 + timing.processedSamples(client: $1) }
        let partial = plan.reporting.filter { timing.stepLimit(client: $0) != nil }.count
        let roundTime = timing.roundTime(plan)
        measured.record(plan, aggregate, processed: processed, uploadBytes: aggregator.uploadBytes(parameters: parameters),
                        downloadBytes: parameters * MemoryLayout<Float>.size, partial: partial, roundTime: roundTime)
        if aggregate.samples > 0 {
            try applyServerStep(aggregate, round: round)
        } else {
            ConsoleLog.info("round \(round + 1): none of the \(plan.asked.count) clients asked reported; the global model is kept",
                            rank: communicator.rank)
        }
        try logRound(plan, aggregate, processed: processed, roundTime: roundTime, seconds: MonotonicClock.seconds() - started)
        return StepOutcome(loss: aggregate.meanLoss, samples: processed)
    }

    /// The round's row of the rounds file, written by rank 0; a failed write ends every rank.
    private func logRound(_ plan: RoundPlan, _ aggregate: RoundAggregate, processed: Int, roundTime: Double, seconds: Double) throws {
        guard var file = rounds else { return }
        let parameterBytes = global.parameters.count * MemoryLayout<Float>.size
        file.append(.init(round: plan.round + 1, asked: plan.asked.count, reported: plan.reporting.count,
                          meanLoss: aggregate.meanLoss, testAccuracy: nil, clientSamples: processed,
                          bytesDown: plan.asked.count * parameterBytes,
                          bytesUp: plan.reporting.count * aggregator.uploadBytes(parameters: global.parameters.count),
                          seconds: seconds, late: plan.late.count, roundTime: roundTime))
        rounds = file
        try communicator.together("writing \(file.path)") { if communicator.rank == 0 { try file.write() } }
    }

    /// The reporting clients this rank trains: its block of the sorted list (none on a
    /// serving-only rank 0).
    func myClients(_ plan: RoundPlan) -> ArraySlice<Int> {
        if options.serverRankOnly {
            return communicator.rank == 0 ? [] : plan.trainedBy(rank: communicator.rank - 1, of: communicator.size - 1)
        }
        return plan.trainedBy(rank: communicator.rank, of: communicator.size)
    }

    private func applyServerStep(_ aggregate: RoundAggregate, round: Int) throws {
        let parameters = global.parameters, n = Double(aggregate.samples)
        // Every rank holds the same sums: the same verdict everywhere, no agreement needed.
        guard aggregate.weightedDelta.allSatisfy(\.isFinite) else {
            throw FederatedDivergence(round: round + 1)
        }
        for i in 0..<parameters.count { parameters.gradients[i] = Float(-aggregate.weightedDelta[i] / n) }
        serverOptimizer.learningRate = options.serverLearningRate
        serverOptimizer.step(values: parameters.values, gradients: parameters.gradients)
    }

    public func checkpointScope(directory: String) -> CheckpointScope? {
        CheckpointScope(directory: directory, writes: communicator.rank == 0, parameters: global.parameters,
                        slots: global.parameters.slots, optimizer: serverOptimizer,
                        layout: ["model": options.model.description, "clients": "\(options.clients)",
                                 "partition": "\(options.partition)", "algorithm": options.algorithm.rawValue,
                                 "fraction": "\(options.fraction)", "seed": "\(seed)"])
    }

    public func prepareEvaluation() throws -> EvaluationTarget {
        EvaluationTarget(model: global, group: communicator, parameters: global.parameters, modelName: options.model.description)
    }

    public func evaluated(afterStep steps: Int, accuracy: Double) {
        rounds?.setAccuracy(accuracy, round: steps)
        if let target = options.targetAccuracy, accuracy >= target, measured.roundsToTarget == nil {
            measured.roundsToTarget = steps
        }
    }

    public func progressDetail() -> String? { measured.lastRound }

    public func report(into metrics: inout Metrics) -> String? {
        metrics["clients"] = options.clients
        metrics["fraction"] = options.fraction
        metrics["clients_per_round"] = options.clientsPerRound
        metrics["algorithm"] = options.algorithm.rawValue
        metrics["local_epochs"] = options.effectiveLocalEpochs
        metrics["local_batch"] = options.effectiveLocalBatch
        metrics["mu"] = Double(options.proximal)
        metrics["server_lr"] = Double(options.serverLearningRate)
        metrics["server_momentum"] = Double(options.serverMomentum)
        metrics["partition"] = "\(options.partition)"
        metrics["client_dropout"] = options.dropout
        metrics["slow_clients"] = timing.slowClients
        metrics["slowdown"] = options.slowClients?.slowdown ?? 1
        metrics["round_deadline"] = options.roundDeadline.map { $0 as Any } ?? NSNull()
        metrics["secure_aggregation"] = options.secureAggregation != nil
        metrics["target_accuracy"] = options.targetAccuracy.map { $0 as Any } ?? NSNull()
        metrics["server_rank_only"] = options.serverRankOnly
        measured.report(into: &metrics)
        // The last evaluation's accuracy; every earlier row was written with its round.
        if let rounds, communicator.rank == 0 {
            do { try rounds.write() } catch { ConsoleLog.info("warning: could not write \(rounds.path): \(error)", rank: 0) }
        }
        return "clients: \(measured.reported) reports, \(measured.dropped) dropped"
            + (measured.late > 0 ? " (\(measured.late) late)" : "") + (measured.partial > 0 ? ", \(measured.partial) partial" : "")
            + "; sent \(Formatting.bytes(measured.bytesDown)) down, "
            + "\(Formatting.bytes(measured.bytesUp)) up"
            + (measured.clipped > 0 ? "; secure aggregation clipped \(measured.clipped) update values to its bound" : "")
    }

    public func close() {}
}

/// The average update is not finite: the clients' training diverged.
public struct FederatedDivergence: Error, CustomStringConvertible {
    public let round: Int
    public var description: String {
        "round \(round): the clients' average update is not finite (their local training diverged); lower the learning rate"
    }
}
