#if canImport(Glibc)
import Glibc
#endif

/// Mean softmax cross-entropy over a batch of logits, fused with its gradient.
public enum SoftmaxCrossEntropy {
    /// Returns the mean loss (accumulated in Double) and dLoss/dLogits =
    /// (softmax(logits) - onehot(label)) / batch.
    public static func lossAndGradient(logits: Tensor, labels: [Int32]) -> (loss: Double, gradient: Tensor) {
        let batch = logits.batch, classes = logits.itemCount
        require(labels.count == batch, "\(labels.count) labels for a batch of \(batch)")
        var total = 0.0
        let gradient = Tensor(shape: logits.shape) { g in
            logits.storage.withUnsafeBufferPointer { z in
                let scale = 1 / Float(batch)
                for row in 0..<batch {
                    let logit = z.baseAddress! + row * classes, grad = g.baseAddress! + row * classes
                    var maxLogit = -Float.infinity
                    for j in 0..<classes { maxLogit = max(maxLogit, logit[j]) }
                    var sum: Float = 0
                    for j in 0..<classes {
                        grad[j] = expf(logit[j] - maxLogit)
                        sum += grad[j]
                    }
                    let label = Int(labels[row])
                    // The gradient row is written at the label: one outside it would write the next row.
                    require(label >= 0 && label < classes, "label \(label) outside the model's \(classes) classes")
                    total += Double(logf(sum)) - Double(logit[label] - maxLogit)
                    for j in 0..<classes { grad[j] = grad[j] / sum * scale }
                    grad[label] -= scale
                }
            }
        }
        return (total / Double(max(batch, 1)), gradient)
    }

    /// Mean loss only.
    public static func loss(logits: Tensor, labels: [Int32]) -> Double {
        lossAndGradient(logits: logits, labels: labels).loss
    }

    /// Index of the largest logit of each item.
    public static func predictions(_ logits: Tensor) -> [Int32] {
        let classes = logits.itemCount
        return (0..<logits.batch).map { row in
            var best = 0
            for j in 1..<classes where logits.storage[row * classes + j] > logits.storage[row * classes + best] { best = j }
            return Int32(best)
        }
    }
}

/// A training loss over a batch of model outputs and integer labels: the mean loss
/// and its gradient with respect to the outputs.
public protocol LossFunction: Sendable {
    func lossAndGradient(logits: Tensor, labels: [Int32]) -> (loss: Double, gradient: Tensor)
}

/// Mean softmax cross-entropy (PyTorch's `CrossEntropyLoss`): the default loss.
public struct SoftmaxCrossEntropyLoss: LossFunction {
    public init() {}

    public func lossAndGradient(logits: Tensor, labels: [Int32]) -> (loss: Double, gradient: Tensor) {
        SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels)
    }
}
