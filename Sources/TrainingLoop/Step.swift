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
