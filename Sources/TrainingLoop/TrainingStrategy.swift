import Communication
import Coordination
import Datasets
import NeuralNet
import Persistence

/// What a trainer supplies to the shared `TrainingLoop`: how to set itself up, how to
/// take one optimizer step, and what it reports. The loop owns everything else:
/// agreement, epochs and steps with resume and a step limit, fault injection, the
/// learning-rate schedule, periodic checkpoints, the progress window, evaluation,
/// and the trace, model and metrics files.
///
/// The calls come in this order, on every rank of the loop's communicator:
///
///     plan(setup)            local: build the model, validate; may throw (the loop
///                            agrees on the outcome, then on `plan.configuration`)
///     start(services)        collective: sub-groups, engines, the initial broadcast
///     [resume: checkpointScope(directory:) is read back]
///     per epoch:  beginEpoch(e); per step: step(context); then prepareEvaluation()
///     report(into:)          collective: the strategy's own metrics
///     close()                collective: release what `start` made
public protocol TrainingStrategy: AnyObject {
    /// Checks the setup against the data and describes the run. Must not
    /// communicate: a rank that throws here would leave the others waiting.
    func plan(_ setup: TrainingSetup) throws -> StrategyPlan

    /// Creates what communicates (sub-groups, engines) and synchronises the initial
    /// state. Runs after every rank has agreed on the configuration.
    func start(_ services: TrainingServices) throws

    /// A new pass over the data begins (the data order is a function of the epoch).
    func beginEpoch(_ epoch: Int)

    /// One optimizer step.
    func step(_ context: StepContext) throws -> StepOutcome

    /// What a checkpoint of this rank holds, or nil if this rank keeps none.
    func checkpointScope(directory: String) -> CheckpointScope?

    /// Makes the model whole where evaluation and the model file need it (a pipeline
    /// gathers its stages) and says what to evaluate. Collective.
    func prepareEvaluation() throws -> EvaluationTarget

    /// Adds the strategy's own metrics and returns its part of the closing line (or
    /// nil). Collective: may average measurements over ranks.
    func report(into metrics: inout Metrics) -> String?

    /// Releases what `start` created. Collective; the loop calls it once `start` has
    /// succeeded, however the run ends (every later failure is agreed by all ranks).
    func close()

    /// What this rank adds to a progress line (rank 0's is printed), or nil. Local.
    func progressDetail() -> String?

    /// The model was evaluated after `afterStep` steps (the same accuracy on every
    /// rank): for strategies that report when a target was reached.
    func evaluated(afterStep: Int, accuracy: Double)
}

extension TrainingStrategy {
    public func progressDetail() -> String? { nil }
    public func evaluated(afterStep: Int, accuracy: Double) {}
}

/// What the loop knows before a strategy plans.
public struct TrainingSetup {
    public let communicator: any Communicator
    public let data: DatasetSplits
    public let seed: UInt64
    /// Ranks sharing this rank's node (and its memory).
    public let ranksOnNode: Int
}

/// What the loop hands a strategy once the ranks agree.
public struct TrainingServices {
    public let communicator: any Communicator
    public let trace: TraceRecorder?
    public let watchdog: Watchdog?
    /// Checks gradients for NaN/Inf under the run's policy.
    public let screen: GradientScreen
    /// A fresh optimizer with the run's settings, and their name for checkpoints.
    public let makeOptimizer: () -> Optimizer
    public let optimizerName: String
    /// The optimizer step the run ends at (counted from the first step, resumed or not).
    public let totalSteps: Int
}
