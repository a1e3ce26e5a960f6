/// Adagrad (torch.optim.Adagrad, no learning-rate decay, accumulator starting at 0):
///
///     g ← g + wd·p
///     s ← s + g²
///     p ← p − lr · g / (sqrt(s) + ε)
public final class Adagrad: Optimizer {
    public var learningRate: Float
    public let epsilon: Float
    public let weightDecay: Float
    private var sumOfSquares: [Float] = []

    public init(learningRate: Float, epsilon: Float = 1e-10, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public var state: [String: [Float]] { sumOfSquares.isEmpty ? [:] : ["sum": sumOfSquares] }

    public func restore(_ state: [String: [Float]], parameterCount: Int) throws {
        sumOfSquares = try buffers(state, ["sum"], count: parameterCount)?.first ?? []
    }

    public func step(values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>) {
        checkStep(values, gradients, state: sumOfSquares)
        let n = values.count, lr = learningRate, eps = epsilon, wd = weightDecay
        if sumOfSquares.isEmpty { sumOfSquares = [Float](repeating: 0, count: n) }
        sumOfSquares.withUnsafeMutableBufferPointer { s in
            for i in 0..<n {
                let g = gradients[i] + wd * values[i]
                s[i] += g * g
                values[i] -= lr * g / (s[i].squareRoot() + eps)
            }
        }
    }
}

/// RMSprop (torch.optim.RMSprop, not centred, no momentum):
///
///     g ← g + wd·p
///     s ← α·s + (1−α)·g²
///     p ← p − lr · g / (sqrt(s) + ε)
public final class RMSprop: Optimizer {
    public var learningRate: Float
    public let alpha: Float
    public let epsilon: Float
    public let weightDecay: Float
    private var meanSquare: [Float] = []

    public init(learningRate: Float, alpha: Float = 0.99, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.alpha = alpha
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public var state: [String: [Float]] { meanSquare.isEmpty ? [:] : ["square_avg": meanSquare] }

    public func restore(_ state: [String: [Float]], parameterCount: Int) throws {
        meanSquare = try buffers(state, ["square_avg"], count: parameterCount)?.first ?? []
    }

    public func step(values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>) {
        checkStep(values, gradients, state: meanSquare)
        let n = values.count, lr = learningRate, a = alpha, eps = epsilon, wd = weightDecay
        if meanSquare.isEmpty { meanSquare = [Float](repeating: 0, count: n) }
        meanSquare.withUnsafeMutableBufferPointer { s in
            for i in 0..<n {
                let g = gradients[i] + wd * values[i]
                s[i] = a * s[i] + (1 - a) * g * g
                values[i] -= lr * g / (s[i].squareRoot() + eps)
            }
        }
    }
}
