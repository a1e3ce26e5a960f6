/// Updates parameters from their (already averaged) gradients. Every optimizer here
/// follows the update rule of its PyTorch namesake, so hyper-parameters carry over.
public protocol Optimizer: AnyObject {
    /// The rate of the next step; schedules set it before each step.
    var learningRate: Float { get set }
    func step(values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>)
}

/// Stochastic gradient descent, optionally with momentum or Nesterov momentum and L2
/// weight decay (torch.optim.SGD, dampening 0):
///
///     g ← g + wd·p
///     b ← μ·b + g              (b starts at g on the first step)
///     p ← p − lr·b             (heavy ball)
///     p ← p − lr·(g + μ·b)     (Nesterov)
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    private var velocity: [Float] = []

    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        precondition(!nesterov || momentum > 0, "Nesterov momentum needs a momentum above 0")
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public func step(values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>) {
        let lr = learningRate, mu = momentum, wd = weightDecay, n = values.count
        guard mu != 0 else {
            for i in 0..<n { values[i] -= lr * (gradients[i] + wd * values[i]) }
            return
        }
        let first = velocity.isEmpty
        if first { velocity = [Float](repeating: 0, count: n) }
        velocity.withUnsafeMutableBufferPointer { b in
            for i in 0..<n {
                let g = gradients[i] + wd * values[i]
                b[i] = first ? g : mu * b[i] + g
                values[i] -= lr * (nesterov ? g + mu * b[i] : b[i])
            }
        }
    }
}
