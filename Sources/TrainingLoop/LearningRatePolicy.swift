import NeuralNet

/// How the learning rate is set per step.
public struct LearningRatePolicy: Sendable, Equatable {
    public enum Scaling: String, Sendable, CaseIterable {
        /// The learning rate as given.
        case none
        /// The linear scaling rule (Goyal et al.; Horovod's advice): the given rate is
        /// for one rank's batch, multiplied by ranks × accumulation steps, i.e. by how
        /// many such batches one optimizer step averages.
        case linear
    }

    public var scaling: Scaling = .none
    public var warmupSteps = 0
    public var decay: LearningRateSchedule.Decay = .constant

    public init(scaling: Scaling = .none, warmupSteps: Int = 0, decay: LearningRateSchedule.Decay = .constant) {
        self.scaling = scaling
        self.warmupSteps = warmupSteps
        self.decay = decay
    }
}
