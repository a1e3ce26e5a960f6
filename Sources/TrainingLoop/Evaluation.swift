import Collectives
import Communication
import Datasets
import NeuralNet

/// Test accuracy (nan without test images), with the test set split across the group: rank r classifies the
/// r-th contiguous block and the correct counts are summed, so evaluating costs each
/// rank 1/p of the work and every rank gets the same answer.
public func evaluateAccuracy(_ model: any Classifier, on data: LabeledImages, over group: any Communicator,
                             batchSize: Int = 500) -> Double {
    let block = Chunking(count: data.count, parts: group.size).range(group.rank)
    var correct: Int64 = 0
    var start = block.lowerBound
    while start < block.upperBound {
        let end = min(start + batchSize, block.upperBound)
        let (images, labels) = data.batch(start..<end)
        let predicted = SoftmaxCrossEntropy.predictions(model.predict(images))
        for (p, l) in zip(predicted, labels) where p == l { correct += 1 }
        start = end
    }
    let total = group.allreduce(correct, op: .sum)
    // No test images: no accuracy (nan, written as null), not a misleading 0%.
    return data.count == 0 ? .nan : Double(total) / Double(data.count)
}

/// A model to evaluate, and the group that shares the work.
public struct EvaluationTarget {
    public let model: any Classifier
    public let group: any Communicator
    /// The whole model's parameters and name, for the model file (complete on rank 0).
    public let parameters: FlatParameters
    public let modelName: String

    public init(model: any Classifier, group: any Communicator, parameters: FlatParameters, modelName: String) {
        self.model = model
        self.group = group
        self.parameters = parameters
        self.modelName = modelName
    }
}
