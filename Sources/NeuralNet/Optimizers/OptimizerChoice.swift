/// The optimizers a command line can name, with their hyper-parameters.
public enum OptimizerKind: String, CaseIterable, Sendable {
    /// Plain SGD: p ← p − lr·g.
    case sgd
    /// SGD with heavy-ball momentum (`momentum`, PyTorch's convention).
    case momentum
    /// SGD with Nesterov momentum.
    case nesterov
    case adam
    /// Adam with decoupled weight decay.
    case adamw
    case adagrad
    case rmsprop
}

public struct OptimizerSettings: Sendable, Equatable {
    public var kind: OptimizerKind
    public var momentum: Float
    public var weightDecay: Float
    public var beta1: Float
    public var beta2: Float
    /// nil: the optimizer's PyTorch default (1e-8 for Adam/RMSprop, 1e-10 for Adagrad).
    public var epsilon: Float?

    public init(kind: OptimizerKind, momentum: Float = 0.9, weightDecay: Float = 0, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float? = nil) {
        self.kind = kind
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public func make(learningRate: Float) -> Optimizer {
        switch kind {
        case .sgd: SGD(learningRate: learningRate, weightDecay: weightDecay)
        case .momentum: SGD(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
        case .nesterov: SGD(learningRate: learningRate, momentum: momentum, nesterov: true, weightDecay: weightDecay)
        case .adam: Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon ?? 1e-8,
                         weightDecay: weightDecay)
        case .adamw: Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon ?? 1e-8,
                          weightDecay: weightDecay, decoupledWeightDecay: true)
        case .adagrad: Adagrad(learningRate: learningRate, epsilon: epsilon ?? 1e-10, weightDecay: weightDecay)
        case .rmsprop: RMSprop(learningRate: learningRate, epsilon: epsilon ?? 1e-8, weightDecay: weightDecay)
        }
    }

    /// `adam(β1 0.9, β2 0.999, wd 0)`-style text for logs.
    public var description: String {
        switch kind {
        case .sgd: "sgd(wd \(weightDecay))"
        case .momentum, .nesterov: "\(kind.rawValue)(μ \(momentum), wd \(weightDecay))"
        case .adam, .adamw: "\(kind.rawValue)(β1 \(beta1), β2 \(beta2), wd \(weightDecay))"
        case .adagrad, .rmsprop: "\(kind.rawValue)(wd \(weightDecay))"
        }
    }
}
