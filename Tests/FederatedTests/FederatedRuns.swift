import ChorusTesting
import Communication
import Datasets
@testable import Federated
import Foundation
import NeuralNet
import Persistence
import TrainingLoop
import XCTest

/// Federated runs through the shared loop on fake ranks, for the test classes that
/// train: a small MLP on 120 synthetic samples, seed 3.
protocol FederatedRuns {}

extension FederatedRuns {
    func loopOptions(rounds: Int?, lr: Float = 0.1, momentum: Float = 0, model path: String) -> LoopOptions {
        var options = LoopOptions(name: "test", dataset: .provided(StrategyTests.data), epochs: 1, maxSteps: rounds, seed: 3,
                                  optimizer: OptimizerSettings(kind: momentum > 0 ? .momentum : .sgd, momentum: momentum),
                                  learningRate: lr)
        options.timeoutSeconds = 0
        options.threads = 1
        options.logEvery = 100
        options.outputs = Outputs(model: path)
        return options
    }

    func federated(rounds: Int = 5, clients: Int = 4, fraction: Double = 1, _ adjust: (inout FederatedOptions) -> Void = { _ in })
        -> FederatedOptions {
        var options = FederatedOptions(model: StrategyTests.model, rounds: rounds)
        options.clients = clients
        options.fraction = fraction
        adjust(&options)
        return options
    }

    /// Trains on `ranks` fake ranks; the final model's values.
    func train(_ options: FederatedOptions, ranks: Int, steps: Int? = nil, lr: Float = 0.1, momentum: Float = 0,
               checkpoints: CheckpointPolicy? = nil, metrics: String? = nil) throws -> [Float] {
        let path = NSTemporaryDirectory() + "chorus-fed-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var loop = loopOptions(rounds: steps, lr: lr, momentum: momentum, model: path)
        loop.checkpoints = checkpoints
        loop.outputs.metrics = metrics
        let settings = loop
        let results = InProcessGroup(size: ranks).run { rank in
            Result { try TrainingLoop(strategy: FederatedStrategy(options: options, communicator: rank), options: settings,
                                      communicator: rank).run() }
        }
        for result in results { _ = try result.get() }
        return try Safetensors.decode(AtomicFile.read(path)).entries.flatMap(\.values)
    }
}
