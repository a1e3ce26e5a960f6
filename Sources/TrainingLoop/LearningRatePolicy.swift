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

extension LearningRatePolicy: CustomStringConvertible {
    /// `linear scaling, 100 warm-up steps, cosine decay`: for logs and mismatch messages.
    public var description: String {
        let decay: String = switch self.decay {
        case .constant: "constant"
        case .cosine: "cosine decay"
        case .step(let every, let gamma): "x\(gamma) every \(every) steps"
        }
        return "\(scaling == .linear ? "linear scaling" : "no scaling"), \(warmupSteps) warm-up steps, \(decay)"
    }
}
