/// How a search runs, in the library's terms (the command line maps its flags onto these).
public struct SearchOptions: Sendable {
    /// Ranks that train one trial together (data parallel); must divide the world.
    public var ranksPerTrial = 1
    public var validation = ValidationScheme.holdout(fraction: 0.1)
    public var scheduler = SchedulerChoice.fifo
    /// The results CSV (nil: none).
    public var results: String?
    /// Read `results` and run only the trials it lacks.
    public var resume = false
    /// Where paused trials keep their checkpoints (early stopping; on a filesystem
    /// every rank sees, like any checkpoint directory). Removed when the search ends.
    public var trialDirectory = "tune.trials"
    /// Seed of the dispatch order, random draws and the validation split.
    public var seed: UInt64 = 42
    /// Retrain the best configuration on the whole training set and score it on the test set.
    public var refit = true
    /// Where the refit model goes (safetensors), or nil.
    public var modelPath: String?

    public init() {}
}

/// Which scheduler decides what runs and what stops.
public enum SchedulerChoice: Sendable, Equatable {
    /// Every trial to its end.
    case fifo
    /// Asynchronous successive halving.
    case asha(graceEpochs: Int, maxEpochs: Int, reductionFactor: Int)

    func make(order: [Int], exempt: Int?) throws -> TrialScheduler {
        switch self {
        case .fifo: FIFOScheduler(order: order)
        case .asha(let grace, let max, let eta):
            try ASHAScheduler(order: order, graceEpochs: grace, maxEpochs: max, reductionFactor: eta, exempt: exempt)
        }
    }

    public var description: String {
        switch self {
        case .fifo: "fifo (every trial to its end)"
        case .asha(let grace, let max, let eta): "asha (grace \(grace), max \(max) epochs, reduction factor \(eta))"
        }
    }
}
