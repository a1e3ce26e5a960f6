import Coordination
import NeuralNet

/// What the loop needs to run any strategy, in the library's terms (the command
/// line maps its flags onto these).
public struct LoopOptions: Sendable {
    /// The run's name in logs and metrics (the tool: "ddp-train").
    public var name: String
    public var dataset: DatasetChoice
    /// Passes over the training data.
    public var epochs: Int
    /// Stop after this many optimizer steps in total (nil: run all epochs).
    public var maxSteps: Int?
    /// Seed of initialisation, data order and synthetic data.
    public var seed: UInt64
    public var optimizer: OptimizerSettings
    /// Peak learning rate, before linear scaling.
    public var learningRate: Float
    public var learningRatePolicy = LearningRatePolicy()
    /// Optimizer steps per progress line.
    public var logEvery = 50
    /// Also evaluate every this many steps (0: only after each epoch), for a finer
    /// accuracy curve (time to accuracy) than one point per epoch.
    public var evaluateEvery = 0
    /// OpenBLAS threads per rank (nil: the node's cores divided by its ranks).
    public var threads: Int?
    public var checkpoints: CheckpointPolicy?
    public var outputs = Outputs()
    /// End the job when a wait on other ranks lasts longer than this (0: never).
    public var timeoutSeconds = Watchdog.defaultTimeoutSeconds
    /// How the timeout is named in stall reports (the command line names its flag).
    public var describeTimeout: @Sendable (Double) -> String = { "limit \(Int($0)) s" }
    public var nonFiniteGradients = NonFiniteGradientPolicy.stop

    public init(name: String, dataset: DatasetChoice, epochs: Int, maxSteps: Int? = nil, seed: UInt64,
                optimizer: OptimizerSettings, learningRate: Float) {
        self.name = name
        self.dataset = dataset
        self.epochs = epochs
        self.maxSteps = maxSteps
        self.seed = seed
        self.optimizer = optimizer
        self.learningRate = learningRate
    }
}

/// Periodic checkpoints, and resuming from them.
public struct CheckpointPolicy: Sendable, Equatable {
    public var directory: String
    /// Write one every this many optimizer steps (0: never, only resume).
    public var every: Int
    /// Keep the newest this many.
    public var keep: Int
    /// Continue from the newest checkpoint every rank can read (from the start if there is none).
    public var resume: Bool
    /// Also write one after the last step (a search's trial paused at a rung, to
    /// continue from when it is promoted).
    public var atEnd: Bool

    public init(directory: String, every: Int = 0, keep: Int = 3, resume: Bool = false, atEnd: Bool = false) {
        self.directory = directory
        self.every = every
        self.keep = keep
        self.resume = resume
        self.atEnd = atEnd
    }

    /// Whether a checkpoint is written once `done` of `totalSteps` steps are done.
    public func isDue(afterStep done: Int, totalSteps: Int) -> Bool {
        (every > 0 && done % every == 0) || (atEnd && done == totalSteps)
    }
}

/// Files written at the end of a run (each atomically, by rank 0).
public struct Outputs: Sendable, Equatable {
    /// The trained model (safetensors).
    public var model: String?
    /// Run metrics (JSON).
    public var metrics: String?
    /// A Chrome trace-event timeline of every rank (JSON).
    public var trace: String?
    /// A strategy's own files, by name (a federated run's rounds CSV): checked with
    /// the others before anything trains.
    public var strategyFiles: [String: String] = [:]

    public init(model: String? = nil, metrics: String? = nil, trace: String? = nil) {
        self.model = model
        self.metrics = metrics
        self.trace = trace
    }
}
