import Datasets
import NeuralNet

/// What a client sends back after its local training: its sample count, how far it
/// moved from the global model, and its mean training loss.
struct ClientUpdate {
    let client: Int
    let samples: Int
    /// w_k − w_global, per parameter.
    let delta: [Float]
    let meanLoss: Double
    let steps: Int
    /// Samples passed through forward and backward: samples x local epochs.
    let processedSamples: Int
}

/// A client's local training in one round, on a model of its own that serves every
/// client in turn: start from the global model, run `epochs` passes over the client's
/// samples in batches of `batch` (all of them in one batch when 0: FedSGD's B = ∞),
/// shuffled from the run seed, the round and the client (so a client trains the same
/// wherever it runs), with a fresh optimizer (a client keeps no state between its
/// rounds). FedProx adds the gradient of (mu/2)·|w − w_global|², mu·(w − w_global),
/// to every step's. A client cut short by the round's deadline stops after `stepLimit`
/// steps (FedProx's partial work).
final class LocalTrainer {
    let workspace: Sequential
    let data: LabeledImages
    let loss: any LossFunction
    let epochs: Int
    let batch: Int
    let proximal: Float
    let seed: UInt64

    init(workspace: Sequential, data: LabeledImages, loss: any LossFunction, epochs: Int, batch: Int, proximal: Float,
         seed: UInt64) {
        self.workspace = workspace
        self.data = data
        self.loss = loss
        self.epochs = epochs
        self.batch = batch
        self.proximal = proximal
        self.seed = seed
    }

    func train(client: Int, samples: [Int], from global: UnsafeMutableBufferPointer<Float>, round: Int,
               optimizer: Optimizer, stepLimit: Int? = nil) -> ClientUpdate {
        let parameters = workspace.parameters
        _ = parameters.values.update(fromContentsOf: global)
        let batchSize = batch == 0 ? samples.count : batch
        var lossSum = 0.0, steps = 0, processed = 0
        let limit = stepLimit ?? Int.max
        epochs: for epoch in 0..<epochs {
            var generator = SeededGenerator(seed: seed ^ (UInt64(round) &* 0x9E37_79B9_7F4A_7C15),
                                            stream: (UInt64(client) << 20) | UInt64(epoch))
            let order = samples.shuffled(using: &generator)
            var start = 0
            while start < order.count {
                if steps == limit { break epochs }
                let end = min(start + batchSize, order.count)
                let (images, labels) = data.batch(order[start..<end])
                parameters.zeroGradients()
                let (logits, tape) = workspace.forward(images, training: true)
                let (batchLoss, gradient) = loss.lossAndGradient(logits: logits, labels: labels)
                workspace.backward(gradient, tape: tape)
                if proximal > 0 { addProximalGradient(parameters, global) }
                optimizer.step(values: parameters.values, gradients: parameters.gradients)
                lossSum += batchLoss * Double(end - start)
                processed += end - start
                steps += 1
                start = end
            }
        }
        let delta = (0..<parameters.count).map { parameters.values[$0] - global[$0] }
        return ClientUpdate(client: client, samples: samples.count, delta: delta,
                            meanLoss: processed > 0 ? lossSum / Double(processed) : 0, steps: steps, processedSamples: processed)
    }

    private func addProximalGradient(_ parameters: FlatParameters, _ global: UnsafeMutableBufferPointer<Float>) {
        let mu = proximal
        for i in 0..<parameters.count {
            parameters.gradients[i] += mu * (parameters.values[i] - global[i])
        }
    }
}
