import Foundation

/// Adam (torch.optim.Adam) and, with `decoupledWeightDecay`, AdamW (torch.optim.AdamW):
///
///     Adam:  g ← g + wd·p                      AdamW:  p ← p − lr·wd·p
///     m ← β1·m + (1−β1)·g
///     v ← β2·v + (1−β2)·g²
///     p ← p − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε)
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    public let decoupledWeightDecay: Bool
    private var firstMoment: [Float] = []
    private var secondMoment: [Float] = []
    private var t = 0

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0, decoupledWeightDecay: Bool = false) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
    }

    /// The step count is stored as a float: exact up to 2^24 steps.
    public var state: [String: [Float]] {
        t == 0 ? [:] : ["exp_avg": firstMoment, "exp_avg_sq": secondMoment, "step": [Float(t)]]
    }

    public func restore(_ state: [String: [Float]], parameterCount: Int) throws {
        guard let b = try buffers(state, ["exp_avg", "exp_avg_sq", "step"], count: parameterCount) else { return }
        (firstMoment, secondMoment, t) = (b[0], b[1], Int(b[2].first ?? 0))
    }

    public func step(values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>) {
        checkStep(values, gradients, state: firstMoment)
        let n = values.count
        if firstMoment.isEmpty {
            firstMoment = [Float](repeating: 0, count: n)
            secondMoment = [Float](repeating: 0, count: n)
        }
        t += 1
        // Bias corrections in double: β^t underflows slowly and 1 − β^t loses digits in float.
        let correction1 = Float(1 - pow(Double(beta1), Double(t)))
        let correction2Root = Float((1 - pow(Double(beta2), Double(t))).squareRoot())
        let stepSize = learningRate / correction1
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon
        let l2 = decoupledWeightDecay ? 0 : weightDecay
        let shrink = decoupledWeightDecay ? 1 - lr * weightDecay : 1
        firstMoment.withUnsafeMutableBufferPointer { m in
            secondMoment.withUnsafeMutableBufferPointer { v in
                for i in 0..<n {
                    let g = gradients[i] + l2 * values[i]
                    m[i] = b1 * m[i] + (1 - b1) * g
                    v[i] = b2 * v[i] + (1 - b2) * g * g
                    let denominator = v[i].squareRoot() / correction2Root + eps
                    values[i] = values[i] * shrink - stepSize * m[i] / denominator
                }
            }
        }
    }
}
