import Communication
import Coordination

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
    /// What a step is called in the log ("round" for federated training).
    public var stepName = "step"
    /// Whether the run is epochs of steps. A run of rounds is not: it is one pass of
    /// `stepsPerEpoch` rounds, logged and evaluated by round.
    public var countsEpochs = true

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
