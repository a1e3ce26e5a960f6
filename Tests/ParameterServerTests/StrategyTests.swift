import ChorusTesting
import Communication
import Coordination
import DataParallel
import Datasets
import Foundation
import NeuralNet
import ParameterServer
import Persistence
import TrainingLoop
import XCTest

/// The parameter-server strategy in the shared loop, on fake ranks, against its
/// oracles: BSP equals synchronous data parallelism on the workers; SSP with bound 0
/// equals BSP; with one worker every mode is sequential SGD; a resumed BSP run equals
/// the uninterrupted one bit for bit.
final class StrategyTests: XCTestCase {
    static let model = ModelDescription(kind: .mlp, hidden: [12, 8], inputShape: [1, 4, 4], classes: 3)
    static let data = try! SyntheticImages.make(trainCount: 120, testCount: 30, imageShape: [1, 4, 4], classes: 3, seed: 4)

    func options(steps: Int, epochs: Int = 2, model path: String, checkpoints: CheckpointPolicy? = nil) -> LoopOptions {
        var options = LoopOptions(name: "test", dataset: .provided(Self.data), epochs: epochs, maxSteps: steps, seed: 3,
                                  optimizer: OptimizerSettings(kind: .momentum, momentum: 0.9), learningRate: 0.05)
        options.timeoutSeconds = 0
        options.threads = 1
        options.logEvery = 4
        options.outputs = Outputs(model: path)
        options.checkpoints = checkpoints
        return options
    }

    func train(ranks: Int, steps: Int?, epochs: Int = 2, checkpoints: CheckpointPolicy? = nil,
               scheduling: InProcessGroup.Scheduling = .concurrent, metrics: String? = nil,
               _ make: @escaping @Sendable (any Communicator) -> TrainingStrategy) throws -> [Safetensors.Entry] {
        let path = NSTemporaryDirectory() + "chorus-ps-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var loop = options(steps: steps ?? 0, epochs: epochs, model: path, checkpoints: checkpoints)
        loop.maxSteps = steps
        loop.outputs.metrics = metrics
        let options = loop
        let results = InProcessGroup(size: ranks, scheduling: scheduling).run { rank in
            Result { try TrainingLoop(strategy: make(rank), options: options, communicator: rank).run() }
        }
        for result in results { _ = try result.get() }
        return try Safetensors.decode(AtomicFile.read(path)).entries
    }

    func server(_ servers: Int, _ consistency: ConsistencyModel, batch: Int) -> @Sendable (any Communicator) -> TrainingStrategy {
        { ParameterServerStrategy(options: ParameterServerOptions(model: Self.model, batchPerWorker: batch, servers: servers,
                                                                  consistency: consistency), communicator: $0) }
    }

    func ddp(batch: Int) -> @Sendable (any Communicator) -> TrainingStrategy {
        { DataParallelStrategy(options: DataParallelOptions(model: Self.model, batchPerRank: batch), communicator: $0) }
    }

    func assertClose(_ a: [Safetensors.Entry], _ b: [Safetensors.Entry], tolerance: Float, _ label: String) {
        XCTAssertEqual(a.map(\.name), b.map(\.name), label)
        for (x, y) in zip(a, b) {
            let scale = max(x.values.map(abs).max() ?? 0, 1e-12)
            let worst = zip(x.values, y.values).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(label): \(x.name)")
        }
    }

    func testBSPEqualsDataParallelOnTheWorkers() throws {
        for workers in [2, 3] {
            // 120 samples, batch 5 per worker: 12 or 8 steps an epoch; 14 steps cross an epoch's end.
            let reference = try train(ranks: workers, steps: 14, ddp(batch: 5))
            for servers in [1, 2] {
                let trained = try train(ranks: servers + workers, steps: 14, server(servers, .bsp, batch: 5))
                assertClose(reference, trained, tolerance: 1e-5, "BSP, \(servers) servers, \(workers) workers")
            }
        }
    }

    func testSSPWithBoundZeroEqualsBSP() throws {
        let bsp = try train(ranks: 5, steps: 10, server(2, .bsp, batch: 4))
        let ssp = try train(ranks: 5, steps: 10, server(2, .ssp(staleness: 0), batch: 4))
        assertClose(bsp, ssp, tolerance: 0, "SSP 0 against BSP")
        // Not vacuous: a stale run ends elsewhere.
        let asp = try train(ranks: 5, steps: 10, server(2, .asp, batch: 4))
        XCTAssertNotEqual(bsp.map(\.values), asp.map(\.values))
    }

    func testEveryModeWithOneWorkerIsSequentialTraining() throws {
        let reference = try train(ranks: 1, steps: 9, ddp(batch: 6))
        for consistency in [ConsistencyModel.bsp, .ssp(staleness: 3), .asp] {
            assertClose(reference, try train(ranks: 3, steps: 9, server(2, consistency, batch: 6)), tolerance: 1e-6, "\(consistency)")
        }
    }

    func testAResumedBSPRunIsBitwiseTheUninterruptedOne() throws {
        let directory = NSTemporaryDirectory() + "chorus-ps-checkpoints-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let whole = try train(ranks: 4, steps: 16, server(2, .bsp, batch: 5))
        _ = try train(ranks: 4, steps: 7, checkpoints: CheckpointPolicy(directory: directory, every: 3), server(2, .bsp, batch: 5))
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/server-1"))
        let resumed = try train(ranks: 4, steps: 16, checkpoints: CheckpointPolicy(directory: directory, every: 3, resume: true),
                                server(2, .bsp, batch: 5))
        assertClose(whole, resumed, tolerance: 0, "resumed from step 6")
    }

    /// Workers learn the global step only from replies, so one may still be steps
    /// behind when the servers pause it for a synchronisation point (an epoch's end,
    /// a checkpoint): seeded interleavings put ranks in many such orders, and every
    /// run must end, keep its bound, and count every push.
    func testEveryModeReachesEverySynchronisationPointOnSeededInterleavings() throws {
        let directory = NSTemporaryDirectory() + "chorus-ps-interleavings-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (index, consistency) in [ConsistencyModel.asp, .ssp(staleness: 1), .bsp].enumerated() {
            for seed in 0..<6 as Range<UInt64> {
                let metrics = directory + "-\(index)-\(seed).json"
                defer { try? FileManager.default.removeItem(atPath: metrics) }
                // 3 workers x 5: 8 steps an epoch, 3 epochs; checkpoints every 5 steps.
                _ = try train(ranks: 5, steps: nil, epochs: 3,
                              checkpoints: CheckpointPolicy(directory: directory + "-\(index)-\(seed)", every: 5),
                              scheduling: .stepped(.seeded(seed)), metrics: metrics, server(2, consistency, batch: 5))
                try? FileManager.default.removeItem(atPath: directory + "-\(index)-\(seed)")
                let written = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: metrics))) as! [String: Any]
                let iterations = written["worker_iterations"] as! [Int], pushes = written["pushes"] as! Int
                let label = "\(consistency), seed \(seed)"
                XCTAssertEqual(iterations.reduce(0, +), pushes, label)
                XCTAssertGreaterThanOrEqual(pushes, 24 * 3, label)
                XCTAssertEqual((written["staleness_histogram"] as! [Int]).reduce(0, +), pushes, label)
                if let bound = consistency.bound {
                    XCTAssertLessThanOrEqual(written["max_staleness"] as! Int, bound, label)
                    XCTAssertLessThanOrEqual(iterations.max()! - iterations.min()!, bound, label)
                }
            }
        }
    }

    func testRolesThatDoNotFitAreRefused() {
        var loop = options(steps: 2, model: "")
        loop.outputs = Outputs()
        let make = server(2, .bsp, batch: 4), options = loop
        let results = InProcessGroup(size: 2).run { rank in
            Result { try TrainingLoop(strategy: make(rank), options: options, communicator: rank).run() }
        }
        for result in results { XCTAssertThrowsError(try result.get()) }
        XCTAssertThrowsError(try results[0].get()) { error in
            XCTAssertEqual("\((error as? GroupFailure)?.error.map { "\($0)" } ?? "")",
                           "2 servers on 2 ranks leave no worker: run at least 3 ranks, or fewer servers")
        }
    }
}
