/// Updates parameters from their (already averaged) gradients.
public protocol Optimizer: AnyObject {
    func step(values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>)
}

/// Stochastic gradient descent with optional momentum, with PyTorch's convention:
///
///     v ← μ·v + g        (v starts at g on the first step)
///     p ← p - lr·v
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    private var velocity: [Float] = []

    public init(learningRate: Float, momentum: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
    }

    public func step(values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>) {
        let lr = learningRate
        guard momentum != 0 else {
            for i in 0..<values.count { values[i] -= lr * gradients[i] }
            return
        }
        if velocity.isEmpty {
            velocity = Array(gradients)
        } else {
            velocity.withUnsafeMutableBufferPointer { v in
                for i in 0..<v.count { v[i] = momentum * v[i] + gradients[i] }
            }
        }
        velocity.withUnsafeBufferPointer { v in
            for i in 0..<values.count { values[i] -= lr * v[i] }
        }
    }
}
