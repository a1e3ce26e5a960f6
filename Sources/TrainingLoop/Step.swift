/// Where a step is.
public struct StepContext {
    public let epoch: Int
    /// The step's index in its epoch.
    public let stepInEpoch: Int
    /// Optimizer steps completed before this one.
    public let step: Int
    /// The scheduled learning rate of this step.
    public let learningRate: Float
    /// The loop communicates over its ranks after this step (a checkpoint, an
    /// epoch's evaluation, the end of the run, a progress line whose loss is
    /// reduced): a strategy whose ranks run asynchronously must bring them to rest
    /// by the step's end. Synchronous strategies are at rest after every step anyway.
    public let synchronizes: Bool

    public init(epoch: Int, stepInEpoch: Int, step: Int, learningRate: Float, synchronizes: Bool) {
        self.epoch = epoch
        self.stepInEpoch = stepInEpoch
        self.step = step
        self.learningRate = learningRate
        self.synchronizes = synchronizes
    }
}

/// What one optimizer step did.
public struct StepOutcome {
    /// This rank's contribution to the step's loss (see `LossReporting`).
    public var loss: Double
    /// Samples the step trained on, over all ranks (nil: the plan's global batch).
    public var samples: Int?
    /// The update was skipped (non-finite gradients under the skip policy).
    public var skipped: Bool

    public init(loss: Double, samples: Int? = nil, skipped: Bool = false) {
        self.loss = loss
        self.samples = samples
        self.skipped = skipped
    }
}
