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

    /// Releases what `start` created. Collective; the loop calls it on success and
    /// on a failure every rank has agreed on.
    func close()
}

/// What the loop knows before a strategy plans.
public struct TrainingSetup {
    public let communicator: any Communicator
    public let data: DatasetSplits
    public let seed: UInt64
}

/// What a strategy tells the loop about the run it will do.
public struct StrategyPlan {
    /// Settings every rank must share, compared before anything is communicated (the
    /// loop adds the model, the data, the optimizer and its own settings).
    public var configuration: [ConfigurationField]
    /// Optimizer steps per pass over the data.
    public var stepsPerEpoch: Int
    /// The model's name and size, for the first line of the log and the metrics.
    public var model: String
    public var parameterCount: Int
    /// Samples all ranks together process per optimizer step.
    public var globalBatch: Int
    /// How many one-rank batches an optimizer step averages: the factor of the linear
    /// learning-rate scaling rule.
    public var linearScalingFactor: Int
    /// How the logged loss is combined across ranks.
    public var lossReporting: LossReporting
    /// Lines describing the layout, printed after the first.
    public var description: [String]

    public init(configuration: [ConfigurationField], stepsPerEpoch: Int, model: String, parameterCount: Int,
                globalBatch: Int, linearScalingFactor: Int, lossReporting: LossReporting, description: [String]) {
        self.configuration = configuration
        self.stepsPerEpoch = stepsPerEpoch
        self.model = model
        self.parameterCount = parameterCount
        self.globalBatch = globalBatch
        self.linearScalingFactor = linearScalingFactor
        self.lossReporting = lossReporting
        self.description = description
    }
}

/// How the loss of a log window is combined across ranks before it is printed.
public enum LossReporting {
    /// Summed over the group and divided by `contributors`: one small all-reduce per
    /// log line, not per step (the group's ranks log in lockstep).
    case mean(over: any Communicator, contributors: Int)
    /// This rank's own loss: asynchronous trainers must not need every rank in
    /// lockstep just to print a line.
    case local
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
}

/// Where a step is.
public struct StepContext {
    public let epoch: Int
    /// The step's index in its epoch.
    public let stepInEpoch: Int
    /// Optimizer steps completed before this one.
    public let step: Int
    /// The scheduled learning rate of this step.
    public let learningRate: Float
}

/// What one optimizer step did.
public struct StepOutcome {
    /// This rank's contribution to the step's loss (see `LossReporting`).
    public var loss: Double
    /// The update was skipped (non-finite gradients under the skip policy).
    public var skipped: Bool

    public init(loss: Double, skipped: Bool = false) {
        self.loss = loss
        self.skipped = skipped
    }
}

/// A model to evaluate, and the group that shares the work.
public struct EvaluationTarget {
    public let model: any Classifier
    public let group: any Communicator
    /// The whole model's parameters and name, for the model file (complete on rank 0).
    public let parameters: FlatParameters
    public let modelName: String

    public init(model: any Classifier, group: any Communicator, parameters: FlatParameters, modelName: String) {
        self.model = model
        self.group = group
        self.parameters = parameters
        self.modelName = modelName
    }
}

/// What one rank's checkpoints hold and where they go.
public struct CheckpointScope {
    /// This rank's checkpoint directory (a pipeline stage has its own).
    public let directory: String
    /// Whether this rank writes them (one rank per directory).
    public let writes: Bool
    public let parameters: FlatParameters
    /// The tensors this rank's checkpoints hold.
    public let slots: [ParameterSlot]
    public let optimizer: Optimizer
    /// What a resuming run must match (model, ranks, global batch, ...).
    public let layout: [String: String]
    /// Who resumed, for the log ("every stage"), or nil.
    public let subject: String?

    public init(directory: String, writes: Bool, parameters: FlatParameters, slots: [ParameterSlot], optimizer: Optimizer,
                layout: [String: String], subject: String? = nil) {
        self.directory = directory
        self.writes = writes
        self.parameters = parameters
        self.slots = slots
        self.optimizer = optimizer
        self.layout = layout
        self.subject = subject
    }
}
