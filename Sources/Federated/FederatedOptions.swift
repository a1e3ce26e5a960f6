import NeuralNet

/// How the server combines the clients' work (McMahan et al., 2017; Li et al., 2020).
public enum FederatedAlgorithm: String, CaseIterable, Sendable {
    /// Local epochs of mini-batch steps, then the sample-weighted average.
    case fedavg
    /// One step on each client's whole data (E = 1, B = ∞): a full-batch gradient
    /// step on the union when every client takes part.
    case fedsgd
    /// FedAvg with the proximal term (mu/2)·|w − w_global|² in each client's objective.
    case fedprox
}

/// What a federated run trains and how, in the library's terms.
public struct FederatedOptions: Sendable {
    public var model: ModelDescription
    public var rounds: Int
    /// Simulated clients K, and the fraction C of them asked each round.
    public var clients = 100
    public var fraction = 0.1
    public var algorithm = FederatedAlgorithm.fedavg
    /// Local epochs E and batch B (0: the client's whole data in one batch). FedSGD
    /// always uses E = 1, B = 0.
    public var localEpochs = 1
    public var localBatch = 10
    /// FedProx's mu.
    public var proximal: Float = 0
    /// The server's step on the average update (FedAvgM, Hsu et al. 2019): SGD with
    /// momentum on the pseudo-gradient w − mean(w_k). Rate 1 and momentum 0 is FedAvg.
    public var serverLearningRate: Float = 1
    public var serverMomentum: Float = 0
    public var partition = PartitionScheme.iid
    /// Dirichlet partitions are redrawn until every client holds this many samples.
    public var minimumClientSize = 10
    /// The probability an asked client fails to report.
    public var dropout = 0.0
    /// A round with fewer reports asks more clients (0: aggregate whatever reported).
    public var minimumReports = 0
    /// Clients that run slower, and the round's deadline on the simulated clock of
    /// `ClientTiming` (nil: the server waits for every client).
    public var slowClients: SlowClients?
    public var roundDeadline: Double?
    /// Mask the updates so the server only sees their sum (nil: plain sums).
    public var secureAggregation: SecureAggregation?
    /// Rank 0 only aggregates and evaluates; the other ranks train the clients.
    public var serverRankOnly = false
    /// `rounds_to_target` in the metrics: the first evaluated round at this test accuracy.
    public var targetAccuracy: Double?
    /// One CSV row per round, written by rank 0 after every round (nil: none). The
    /// loop checks it with its own outputs when it is in `Outputs.strategyFiles`.
    public var roundsFile: String?
    public var loss: any LossFunction = SoftmaxCrossEntropyLoss()

    public init(model: ModelDescription, rounds: Int) {
        self.model = model
        self.rounds = rounds
    }

    /// Clients asked per round: max(round(C·K), 1).
    public var clientsPerRound: Int { max(Int((fraction * Double(clients)).rounded()), 1) }

    /// E and B as the algorithm runs them.
    public var effectiveLocalEpochs: Int { algorithm == .fedsgd ? 1 : localEpochs }
    public var effectiveLocalBatch: Int { algorithm == .fedsgd ? 0 : localBatch }

    func check(ranks: Int) throws {
        func fail(_ message: String) throws -> Never { throw FederatedOptionsError(description: message) }
        if rounds < 1 { try fail("the rounds must be at least 1 (got \(rounds))") }
        if clients < 1 { try fail("there must be at least one client (got \(clients))") }
        if !(fraction > 0 && fraction <= 1) { try fail("the fraction of clients per round must be in (0, 1] (got \(fraction))") }
        if localEpochs < 1 { try fail("the local epochs must be at least 1 (got \(localEpochs))") }
        if localBatch < 0 { try fail("the local batch must be 0 (the whole client) or more (got \(localBatch))") }
        if !(proximal.isFinite && proximal >= 0) { try fail("FedProx's mu must be a non-negative number (got \(proximal))") }
        if proximal > 0 && algorithm != .fedprox { try fail("a proximal term (mu) needs the fedprox algorithm (got \(algorithm.rawValue))") }
        if !(serverLearningRate.isFinite && serverLearningRate > 0) {
            try fail("the server learning rate must be a positive number (got \(serverLearningRate))")
        }
        if !(serverMomentum >= 0 && serverMomentum < 1) { try fail("the server momentum must be in [0, 1) (got \(serverMomentum))") }
        if !(dropout >= 0 && dropout < 1) { try fail("the client dropout must be in [0, 1) (got \(dropout))") }
        if minimumReports < 0 || minimumReports > clients {
            try fail("the minimum of reporting clients must be between 0 and the \(clients) clients (got \(minimumReports))")
        }
        if let slow = slowClients {
            if !(slow.fraction > 0 && slow.fraction <= 1) { try fail("the fraction of slow clients must be in (0, 1] (got \(slow.fraction))") }
            if !(slow.slowdown.isFinite && slow.slowdown >= 1) {
                try fail("a slow client's slowdown must be a number of at least 1 (got \(slow.slowdown))")
            }
        }
        if let deadline = roundDeadline, !(deadline.isFinite && deadline > 0) {
            try fail("the round deadline must be a positive number (got \(deadline))")
        }
        if let secure = secureAggregation, !(secure.clipBound.isFinite && secure.clipBound > 0) {
            try fail("the secure aggregation clip bound must be a positive number (got \(secure.clipBound))")
        }
        if serverRankOnly && ranks < 2 { try fail("a server rank of its own needs at least 2 ranks (got \(ranks))") }
        if let target = targetAccuracy, !(target > 0 && target <= 1) {
            try fail("the target accuracy must be in (0, 1] (got \(target))")
        }
    }
}

public struct FederatedOptionsError: Error, CustomStringConvertible {
    public let description: String
}

/// Names of the federated settings the ranks agree on.
public enum FederatedField {
    public static let clients = "the clients"
    public static let algorithm = "the federated algorithm"
    public static let localTraining = "the local training"
    public static let server = "the server step"
    public static let partition = "the partition"
    public static let dropout = "the client dropout"
    public static let stragglers = "the slow clients and the round deadline"
    public static let secureAggregation = "secure aggregation"
}
