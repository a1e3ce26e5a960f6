import ArgumentParser
import Communication
import Coordination
import Federated
import TrainingLoop

extension FederatedAlgorithm: ExpressibleByArgument {}

/// `mpirun -n 4 fed-train --clients 100 --fraction 0.1 --partition shards:2`: federated
/// averaging over simulated clients.
public struct FedTrain: MPICommand {
    public static let configuration = CommandConfiguration(
        commandName: "fed-train",
        abstract: "Federated learning: simulated clients train locally on private shards, a server averages their models.",
        discussion: """
            Run under MPI, e.g. `mpirun -n 4 fed-train --clients 100 --fraction 0.1 --partition shards:2 --rounds 50`. \
            Each round the server asks a seeded sample of the clients; each rank trains its share of them one after \
            another (--local-epochs over the client's data in batches of --local-batch, with --optimizer and --lr), \
            and the new global model is the sample-weighted average of theirs (FedAvg), moved by the server's own \
            step (--server-lr, --server-momentum). The learning-rate flags schedule by round. --eval-every and \
            --log-every count rounds.
            """)

    @OptionGroup var subject: ModelDataOptions

    @Option(parsing: .unconditional, help: "Communication rounds.")
    var rounds: Int = 20

    @OptionGroup var optimization: OptimizationOptions
    @OptionGroup var run: RunOptions
    @OptionGroup var reliability: ReliabilityOptions

    @Option(parsing: .unconditional, help: "Simulated clients, spread over the ranks.")
    var clients: Int = 100

    @Option(parsing: .unconditional, help: "Fraction of the clients asked each round (max(round(C x clients), 1) of them).")
    var fraction: Double = 0.1

    @Option(help: "fedavg (local epochs, then the weighted average), fedsgd (one full-batch step per client), fedprox (with --mu).")
    var algorithm: FederatedAlgorithm = .fedavg

    @Option(parsing: .unconditional, help: "Passes over its data each client makes per round (fedavg, fedprox; default 1).")
    var localEpochs: Int?

    @Option(parsing: .unconditional, help: "A client's batch size; 0: its whole data in one batch (fedavg, fedprox; default 10).")
    var localBatch: Int?

    @Option(parsing: .unconditional, help: "FedProx's proximal weight mu (needs --algorithm fedprox; default 0.01 there).")
    var mu: Float?

    @Option(parsing: .unconditional, help: "The server's learning rate on the average update (1: plain FedAvg).")
    var serverLr: Float = 1

    @Option(parsing: .unconditional, help: "The server's momentum on the average update (FedAvgM; 0: plain FedAvg).")
    var serverMomentum: Float = 0

    @Option(help: ArgumentHelp("How the training set is split: iid, shards:S (S label-sorted shards each), dirichlet:ALPHA, labels:L.",
                               valueName: "scheme"))
    var partition: String = "iid"

    @Option(parsing: .unconditional, help: "dirichlet: redraw until every client holds at least this many samples.")
    var minClientSize: Int = 10

    @Option(parsing: .unconditional, help: "Probability that an asked client fails to report (seeded).")
    var clientDropout: Double = 0

    @Option(parsing: .unconditional, help: "A round with fewer reports asks more clients until this many report (0: never wait).")
    var minClients: Int = 0

    @Option(help: ArgumentHelp("F:X: a seeded fraction F of the clients takes X times as long for its local training.",
                               valueName: "F:X"))
    var slowClients: String?

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Round deadline on the simulated clock, in local epochs of a mean-size client at normal speed: fedavg drops "
            + "the clients that would miss it, fedprox keeps the steps they finished (docs/federated.md).",
        valueName: "epochs"))
    var roundDeadline: Double?

    @Flag(help: "Mask every update with pairwise masks modulo 2^32 so the server only sees the sum (docs/federated.md).")
    var secureAggregation = false

    @Option(parsing: .unconditional, help: "--secure-aggregation: per-coordinate bound on a client's update (larger ones are clipped).")
    var secureClip: Float = 10

    @Flag(help: "Rank 0 only aggregates and evaluates; the other ranks train the clients.")
    var serverRankOnly = false

    @Option(parsing: .unconditional, help: "Report in the metrics the first evaluated round at this test accuracy (0-1).")
    var targetAccuracy: Double?

    @Option(help: ArgumentHelp("Write one row per round here (CSV: clients, loss, accuracy, bytes), after every round.",
                               valueName: "file"))
    var roundsCsv: String?

    @Flag(help: "Print each client's samples per label (CSV) and stop.")
    var describePartition = false

    public init() {}

    public func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1 (got \(rounds))") }
        guard clients >= 1 else { throw ValidationError("--clients must be at least 1 (got \(clients))") }
        guard fraction > 0, fraction <= 1 else { throw ValidationError("--fraction must be in (0, 1] (got \(fraction))") }
        if let localEpochs, localEpochs < 1 { throw ValidationError("--local-epochs must be at least 1 (got \(localEpochs))") }
        if let localBatch, localBatch < 0 { throw ValidationError("--local-batch must be 0 (the whole client) or more (got \(localBatch))") }
        if algorithm == .fedsgd && (localEpochs ?? 1 != 1 || localBatch ?? 0 != 0) {
            throw ValidationError("--algorithm fedsgd is one step on each client's whole data: leave out --local-epochs and --local-batch")
        }
        if let mu {
            guard algorithm == .fedprox else { throw ValidationError("--mu needs --algorithm fedprox (got --algorithm \(algorithm.rawValue))") }
            guard mu.isFinite, mu >= 0 else { throw ValidationError("--mu must be a non-negative number (got \(mu))") }
        }
        guard serverLr.isFinite, serverLr > 0 else { throw ValidationError("--server-lr must be a positive number (got \(serverLr))") }
        guard serverMomentum >= 0, serverMomentum < 1 else {
            throw ValidationError("--server-momentum must be in [0, 1) (got \(serverMomentum))")
        }
        _ = try partitionScheme()
        guard minClientSize >= 1 else { throw ValidationError("--min-client-size must be at least 1 (got \(minClientSize))") }
        guard clientDropout >= 0, clientDropout < 1 else {
            throw ValidationError("--client-dropout must be in [0, 1) (got \(clientDropout))")
        }
        guard minClients >= 0, minClients <= clients else {
            throw ValidationError("--min-clients must be between 0 and --clients \(clients) (got \(minClients))")
        }
        _ = try slowClientsSetting()
        if let roundDeadline, !(roundDeadline.isFinite && roundDeadline > 0) {
            throw ValidationError("--round-deadline must be a positive number of epochs (got \(roundDeadline))")
        }
        guard secureClip.isFinite, secureClip > 0 else { throw ValidationError("--secure-clip must be a positive number (got \(secureClip))") }
        if let targetAccuracy, !(targetAccuracy > 0 && targetAccuracy <= 1) {
            throw ValidationError("--target-accuracy must be in (0, 1] (got \(targetAccuracy))")
        }
    }

    func partitionScheme() throws -> PartitionScheme {
        let parts = partition.split(separator: ":", maxSplits: 1).map(String.init)
        let bad = ValidationError("--partition must be iid, shards:S, dirichlet:ALPHA or labels:L (got '\(partition)')")
        switch (parts.first, parts.count) {
        case ("iid", 1): return .iid
        case ("shards", 2):
            guard let s = Int(parts[1]), s >= 1 else { throw ValidationError("--partition shards:S needs a whole S >= 1 (got '\(partition)')") }
            return .shards(perClient: s)
        case ("labels", 2):
            guard let l = Int(parts[1]), l >= 1 else { throw ValidationError("--partition labels:L needs a whole L >= 1 (got '\(partition)')") }
            return .labels(perClient: l)
        case ("dirichlet", 2):
            guard let alpha = Double(parts[1]), alpha.isFinite, alpha > 0 else {
                throw ValidationError("--partition dirichlet:ALPHA needs a number ALPHA > 0 (got '\(partition)')")
            }
            return .dirichlet(alpha: alpha)
        default: throw bad
        }
    }

    func slowClientsSetting() throws -> SlowClients? {
        guard let slowClients else { return nil }
        let parts = slowClients.split(separator: ":", omittingEmptySubsequences: false).map { Double($0) }
        guard parts.count == 2, let fraction = parts[0], let slowdown = parts[1] else {
            throw ValidationError("--slow-clients must be F:X, a fraction and a slowdown, e.g. 0.3:4 (got '\(slowClients)')")
        }
        guard fraction > 0, fraction <= 1 else { throw ValidationError("--slow-clients F:X needs F in (0, 1] (got '\(slowClients)')") }
        guard slowdown.isFinite, slowdown >= 1 else { throw ValidationError("--slow-clients F:X needs X >= 1 (got '\(slowClients)')") }
        return SlowClients(fraction: fraction, slowdown: slowdown)
    }

    func federatedOptions() throws -> FederatedOptions {
        var options = FederatedOptions(model: try subject.modelDescription(), rounds: rounds)
        options.clients = clients
        options.fraction = fraction
        options.algorithm = algorithm
        options.localEpochs = localEpochs ?? 1
        options.localBatch = localBatch ?? 10
        options.proximal = algorithm == .fedprox ? (mu ?? 0.01) : 0
        options.serverLearningRate = serverLr
        options.serverMomentum = serverMomentum
        options.partition = try partitionScheme()
        options.minimumClientSize = minClientSize
        options.dropout = clientDropout
        options.minimumReports = minClients
        options.slowClients = try slowClientsSetting()
        options.roundDeadline = roundDeadline
        options.secureAggregation = secureAggregation ? SecureAggregation(clipBound: secureClip) : nil
        options.serverRankOnly = serverRankOnly
        options.targetAccuracy = targetAccuracy
        options.roundsFile = roundsCsv
        return options
    }

    public func run(world: any Communicator) throws {
        let options = try federatedOptions()
        if describePartition { return try describe(options, world: world) }
        var loop = LoopOptions.from(name: "fed-train", dataset: subject.datasetChoice, epochs: 1, steps: nil,
                                    optimization: optimization, run: run, reliability: reliability)
        loop.outputs.strategyFiles = roundsCsv.map { ["rounds": $0] } ?? [:]
        let strategy = FederatedStrategy(options: options, communicator: world)
        _ = try TrainingLoop(strategy: strategy, options: loop, communicator: world).run()
    }

    /// `--describe-partition`: the clients' label histograms, printed by rank 0.
    func describe(_ options: FederatedOptions, world: any Communicator) throws {
        let data = try world.together("loading \(subject.datasetChoice.name)") { try subject.datasetChoice.load(seed: run.seed) }
        let partition = try world.together("partitioning") {
            try ClientPartition(labels: data.train.labels, classes: data.train.classes, clients: options.clients,
                                scheme: options.partition, seed: run.seed, minimumSize: options.minimumClientSize)
        }
        guard world.rank == 0 else { return }
        print(PartitionDescription(partition: partition, labels: data.train.labels, classes: data.train.classes,
                                   scheme: options.partition).text)
    }
}
