/// Updates parameters from their (already averaged) gradients. Every optimizer here
/// follows the update rule of its PyTorch namesake, so hyper-parameters carry over.
public protocol Optimizer: AnyObject {
    /// The rate of the next step; schedules set it before each step.
    var learningRate: Float { get set }
    func step(values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>)
    /// Everything the next steps depend on besides the parameters (momentum buffers,
    /// moments, step count), by name: what a checkpoint must hold for a resumed run to
    /// continue bitwise as if never stopped. Empty before the first step.
    var state: [String: [Float]] { get }
    /// Restores `state` as returned by `state`; throws if it does not fit.
    func restore(_ state: [String: [Float]], parameterCount: Int) throws
}

/// Optimizer state that does not fit (another optimizer's, or another model's).
public struct OptimizerStateError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension Optimizer {
    /// Checks that `state` has exactly `names`, each of `count` elements (or none at all).
    func buffers(_ state: [String: [Float]], _ names: [String], count: Int) throws -> [[Float]]? {
        if state.isEmpty { return nil }
        guard Set(state.keys) == Set(names) else {
            throw OptimizerStateError("optimizer state holds \(state.keys.sorted()), this optimizer needs \(names)")
        }
        for name in names where state[name]!.count != count && name != "step" {
            throw OptimizerStateError("optimizer state \(name) has \(state[name]!.count) values, the model has \(count) parameters")
        }
        return names.map { state[$0]! }
    }

    /// The lengths a step relies on: the loops below run over raw buffers, where a
    /// wrong length would write past them instead of failing.
    func checkStep(_ values: UnsafeMutableBufferPointer<Float>, _ gradients: UnsafeMutableBufferPointer<Float>,
                   state: [Float]) {
        require(values.count == gradients.count, "\(values.count) parameters but \(gradients.count) gradients")
        require(state.isEmpty || state.count == values.count,
                     "optimizer state for \(state.count) parameters stepped with \(values.count)")
    }
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
        require(!nesterov || momentum > 0, "Nesterov momentum needs a momentum above 0")
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public var state: [String: [Float]] { velocity.isEmpty ? [:] : ["momentum_buffer": velocity] }

    public func restore(_ state: [String: [Float]], parameterCount: Int) throws {
        velocity = try buffers(state, momentum == 0 ? [] : ["momentum_buffer"], count: parameterCount)?.first ?? []
    }

    public func step(values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>) {
        checkStep(values, gradients, state: velocity)
        let lr = learningRate, mu = momentum, wd = weightDecay, n = values.count
        guard mu != 0 else {
            for i in 0..<n { values[i] -= lr * (gradients[i] + wd * values[i]) }
            return
        }
        let first = velocity.isEmpty
        if first { velocity = [Float](repeating: 0, count: n) }
        let nesterov = self.nesterov
        velocity.withUnsafeMutableBufferPointer { b in
            // Called with constants, so each call is a loop without the two tests,
            // which kept the one loop from vectorising (4% of a LeNet step).
            @inline(__always) func sweep(first: Bool, nesterov: Bool) {
                for i in 0..<n {
                    let g = gradients[i] + wd * values[i]
                    b[i] = first ? g : mu * b[i] + g
                    values[i] -= lr * (nesterov ? g + mu * b[i] : b[i])
                }
            }
            switch (first, nesterov) {
            case (true, true): sweep(first: true, nesterov: true)
            case (true, false): sweep(first: true, nesterov: false)
            case (false, true): sweep(first: false, nesterov: true)
            case (false, false): sweep(first: false, nesterov: false)
            }
        }
    }
}
