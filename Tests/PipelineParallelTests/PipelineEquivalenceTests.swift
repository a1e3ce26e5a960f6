import ChorusTesting
import Communication
import DataParallel
import Datasets
import Foundation
import NeuralNet
import Persistence
import PipelineParallel
import PipelineSchedules
import TrainingLoop
import XCTest

/// The pipeline strategy on fake ranks ends with the parameters of the unsplit model
/// trained on the same batches, for GPipe and 1F1B, several stage and micro-batch
/// counts, and a hybrid of replicas x stages: the stage executor, its messages and the
/// replica all-reduce, without MPI.
final class PipelineEquivalenceTests: XCTestCase {
    static let model = ModelDescription(kind: .mlp, hidden: [8, 8, 6], inputShape: [1, 4, 4], classes: 3)
    static let data = try! SyntheticImages.make(trainCount: 96, testCount: 24, imageShape: [1, 4, 4], classes: 3, seed: 2)

    /// Trains on `ranks` fake ranks with the strategy `make` builds and returns the saved model's tensors.
    func train(ranks: Int, _ make: @escaping @Sendable (any Communicator) -> TrainingStrategy) throws -> [Safetensors.Entry] {
        let path = NSTemporaryDirectory() + "chorus-pipe-\(UUID().uuidString).safetensors"
        var options = LoopOptions(name: "test", dataset: .provided(Self.data), epochs: 1, maxSteps: 5, seed: 9,
                                  optimizer: OptimizerSettings(kind: .momentum, momentum: 0.9), learningRate: 0.05)
        options.timeoutSeconds = 0
        options.threads = 1
        options.logEvery = 100
        options.outputs = Outputs(model: path)
        let loop = options
        let results = InProcessGroup(size: ranks).run { rank in
            Result { try TrainingLoop(strategy: make(rank), options: loop, communicator: rank).run() }
        }
        for result in results { _ = try result.get() }
        return try Safetensors.decode(AtomicFile.read(path)).entries
    }

    func assertClose(_ a: [Safetensors.Entry], _ b: [Safetensors.Entry], _ label: String) {
        XCTAssertEqual(a.map(\.name), b.map(\.name), label)
        for (x, y) in zip(a, b) {
            let scale = max(x.values.map(abs).max() ?? 0, 1e-12)
            let worst = zip(x.values, y.values).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst / scale, 1e-5, "\(label): \(x.name)")
        }
    }

    func testPipelinesEqualTheUnsplitModel() throws {
        let reference = try train(ranks: 1) { rank in
            DataParallelStrategy(options: DataParallelOptions(model: Self.model, batchPerRank: 12), communicator: rank)
        }
        for (stages, microbatches, schedule) in [(2, 1, ScheduleKind.gpipe), (2, 3, .gpipe), (2, 4, .oneFOneB),
                                                 (3, 2, .oneFOneB), (3, 4, .gpipe)] {
            let split = try train(ranks: stages) { rank in
                PipelineStrategy(options: PipelineOptions(model: Self.model, batchSize: 12, microbatches: microbatches,
                                                          stages: stages, schedule: schedule), communicator: rank)
            }
            assertClose(split, reference, "S=\(stages) M=\(microbatches) \(schedule.rawValue)")
        }
    }

    func testReplicatedPipelinesEqualTheUnsplitModelOnTheGlobalBatch() throws {
        let reference = try train(ranks: 1) { rank in
            DataParallelStrategy(options: DataParallelOptions(model: Self.model, batchPerRank: 12), communicator: rank)
        }
        let hybrid = try train(ranks: 4) { rank in
            PipelineStrategy(options: PipelineOptions(model: Self.model, batchSize: 6, microbatches: 2, stages: 2,
                                                      schedule: .oneFOneB), communicator: rank)
        }
        assertClose(hybrid, reference, "2 replicas x 2 stages")
    }
}
