import Datasets
import NeuralNet

extension TrainingSetup {
    /// The model every strategy trains, built from the run's seed (the same parameters
    /// on every rank), after checking that it takes the data's images and that the
    /// node's memory holds it and a batch of `batch` for each of the node's ranks.
    /// Local: a failure here is agreed by the loop like any other in `plan`.
    public func buildModel(_ model: ModelDescription, batch: Int) throws -> Sequential {
        guard data.train.imageShape == model.inputShape else {
            throw InputShapeMismatch(dataset: data.name, imageShape: data.train.imageShape, modelInput: model.inputShape)
        }
        try MemoryBudget.check(MemoryBudget.bytes(for: model.footprint(), items: batch),
                               for: "the model \(model) and a batch of \(batch)", ranksOnNode: ranksOnNode)
        return try model.build(seed: seed)
    }
}
