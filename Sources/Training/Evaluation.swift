import ChorusMPI
import Collectives
import Datasets
import NeuralNet

/// Test accuracy, with the test set split across the ranks: rank r classifies the
/// r-th contiguous block and the correct counts are summed, so evaluating costs each
/// rank 1/p of the work and every rank gets the same answer.
public func evaluateAccuracy(_ model: Sequential, on data: LabeledImages, world: Communicator,
                             batchSize: Int = 500) -> Double {
    let block = Chunking(count: data.count, parts: world.size).range(world.rank)
    var correct: Int64 = 0
    var start = block.lowerBound
    while start < block.upperBound {
        let end = min(start + batchSize, block.upperBound)
        let (images, labels) = data.batch(start..<end)
        let predicted = SoftmaxCrossEntropy.predictions(model.predict(images))
        for (p, l) in zip(predicted, labels) where p == l { correct += 1 }
        start = end
    }
    let total = world.mpiAllreduce(correct, op: .sum)
    return data.count == 0 ? 0 : Double(total) / Double(data.count)
}
