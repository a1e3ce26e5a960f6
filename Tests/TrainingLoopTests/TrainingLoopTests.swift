import ChorusTesting
import Communication
import Coordination
import Foundation
import NeuralNet
import Persistence
import TrainingLoop
import XCTest

/// The loop skeleton with a scripted strategy on fake ranks: positions, step limits,
/// the learning-rate schedule, checkpoint cadence, resume, skipped steps, agreement.
final class TrainingLoopTests: XCTestCase {
    /// Runs a loop on `ranks` fake ranks; returns each rank's strategy and summary (or error).
    func run(ranks: Int = 1, _ options: LoopOptions, configure: @escaping @Sendable (ScriptedStrategy) -> Void = { _ in })
        -> [(strategy: ScriptedStrategy, result: Result<TrainingLoop.Summary, any Error>)] {
        InProcessGroup(size: ranks).run { rank in
            let strategy = ScriptedStrategy(communicator: rank, stepsPerEpoch: 3)
            configure(strategy)
            return (strategy, Result { try TrainingLoop(strategy: strategy, options: options, communicator: rank).run() })
        }
    }

    func testStepsRunInOrderUpToTheStepLimitWithAnEvaluationAfterEachEpoch() throws {
        let (strategy, result) = run(loopOptions(epochs: 5, maxSteps: 7))[0]
        let summary = try result.get()
        XCTAssertEqual(summary.steps, 7)
        XCTAssertEqual(strategy.steps.map { [$0.epoch, $0.stepInEpoch, $0.step] },
                       [[0, 0, 0], [0, 1, 1], [0, 2, 2], [1, 0, 3], [1, 1, 4], [1, 2, 5], [2, 0, 6]])
        XCTAssertEqual(strategy.log.filter { $0.hasPrefix("epoch") || $0 == "evaluate" },
                       ["epoch 0", "evaluate", "epoch 1", "evaluate", "epoch 2", "evaluate"],
                       "one evaluation per epoch begun; the model file reuses the last")
        XCTAssertEqual(strategy.log.first, "plan")
        XCTAssertEqual(strategy.log.last, "close")
        XCTAssertEqual(summary.testAccuracy, 0.25, "the classifier's accuracy on the test split")
        XCTAssertEqual(summary.samples, 7 * 8)
    }

    func testTheLearningRateWarmsUpAndScalesLinearlyWithTheRanks() throws {
        var options = loopOptions(epochs: 1)
        options.learningRatePolicy = LearningRatePolicy(scaling: .linear, warmupSteps: 2)
        let (strategy, result) = run(ranks: 2, options)[1]
        _ = try result.get()
        // Peak 0.1 x 2 ranks; warm-up over 2 steps.
        XCTAssertEqual(strategy.steps.map(\.learningRate), [0.1, 0.2, 0.2])
    }

    func testTheLoggedLossIsTheMeanOverTheGroup() throws {
        // Rank r's loss at step s is s + r: over 2 ranks, the last window (steps 2)
        // averages to 2.5.
        let results = run(ranks: 2, loopOptions(epochs: 1))
        for (_, result) in results { XCTAssertEqual(try result.get().finalLoss, 2.5) }
    }

    func testCheckpointsAreWrittenAtTheirCadenceAndOnlyTheNewestKept() throws {
        let directory = temporaryDirectory()
        var options = loopOptions(maxSteps: 7)
        options.checkpoints = CheckpointPolicy(directory: directory, every: 2, keep: 2)
        _ = try run(options)[0].result.get()
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        XCTAssertEqual(files, [Checkpoint.fileName(step: 4), Checkpoint.fileName(step: 6)])
        let newest = try Checkpoint.read(directory + "/" + files[1])
        XCTAssertEqual([newest.step, newest.epoch, newest.stepInEpoch], [6, 2, 0], "the position of the next step")
    }

    func testAResumedRunContinuesAtTheCheckpointAndEndsBitwiseAsTheUninterruptedOne() throws {
        let uninterrupted = run(loopOptions(maxSteps: 8))[0].strategy.parameters.valueArray

        let directory = temporaryDirectory()
        var first = loopOptions(maxSteps: 4)
        first.checkpoints = CheckpointPolicy(directory: directory, every: 2)
        _ = try run(first)[0].result.get()
        var second = loopOptions(maxSteps: 8)
        second.checkpoints = CheckpointPolicy(directory: directory, every: 2, resume: true)
        let (strategy, result) = run(second)[0]
        let summary = try result.get()
        XCTAssertEqual(strategy.steps.first.map { [$0.epoch, $0.stepInEpoch, $0.step] }, [1, 1, 4])
        XCTAssertEqual(summary.resumedFromStep, 4)
        XCTAssertEqual(summary.steps, 8)
        XCTAssertEqual(strategy.parameters.valueArray.map(\.bitPattern), uninterrupted.map(\.bitPattern),
                       "parameters and momentum restored exactly")
    }

    func testEveryRanksOwnStateIsCheckpointedAndRestoredToIt() throws {
        let uninterrupted = run(ranks: 2, loopOptions(maxSteps: 8)) { $0.carriesIntoLoss = true }
        let directory = temporaryDirectory()
        var first = loopOptions(maxSteps: 4)
        first.checkpoints = CheckpointPolicy(directory: directory, every: 2)
        _ = run(ranks: 2, first) { $0.carriesIntoLoss = true }
        var second = loopOptions(maxSteps: 8)
        second.checkpoints = CheckpointPolicy(directory: directory, every: 2, resume: true)
        for (rank, (strategy, result)) in run(ranks: 2, second, configure: { $0.carriesIntoLoss = true }).enumerated() {
            let summary = try result.get()
            XCTAssertEqual(summary.resumedFromStep, 4)
            XCTAssertEqual(strategy.carried, uninterrupted[rank].strategy.carried, "rank \(rank) got its own state back")
            XCTAssertEqual(summary.finalLoss, try uninterrupted[rank].result.get().finalLoss)
            XCTAssertEqual(strategy.parameters.valueArray.map(\.bitPattern),
                           uninterrupted[rank].strategy.parameters.valueArray.map(\.bitPattern))
        }
    }

    func testResumeWithoutCheckpointsStartsFromTheBeginning() throws {
        var options = loopOptions(maxSteps: 2)
        options.checkpoints = CheckpointPolicy(directory: temporaryDirectory(), resume: true)
        let (strategy, result) = run(options)[0]
        XCTAssertEqual(try result.get().resumedFromStep, 0)
        XCTAssertEqual(strategy.steps.first?.step, 0)
    }

    func testSkippedStepsAreCountedAndLeaveTheParametersAlone() throws {
        var options = loopOptions(maxSteps: 5)
        options.nonFiniteGradients = .skip
        let (strategy, result) = run(options) { $0.nanSteps = [1, 3] }[0]
        XCTAssertEqual(try result.get().skippedSteps, 2)
        // A skipped step is as if it had not been taken: no update, no optimizer state.
        let omitted = run(loopOptions(maxSteps: 5)) { $0.omittedSteps = [1, 3] }[0].strategy.parameters.valueArray
        XCTAssertEqual(strategy.parameters.valueArray, omitted)
        XCTAssertTrue(omitted.allSatisfy(\.isFinite))
    }

    func testRanksWithDifferentGradientsAgreeToSkipWhenOneFindsANonFiniteValue() throws {
        var options = loopOptions(maxSteps: 4)
        options.nonFiniteGradients = .skip
        let results = run(ranks: 3, options) { strategy in
            strategy.nanSteps = [1]
            strategy.nanRank = 2
            strategy.agreeOnScreen = true
        }
        let omitted = run(ranks: 3, loopOptions(maxSteps: 4)) { $0.omittedSteps = [1] }
        for (rank, (strategy, result)) in results.enumerated() {
            XCTAssertEqual(try result.get().skippedSteps, 1, "every rank skipped step 2, not only rank 2")
            XCTAssertEqual(strategy.parameters.valueArray, omitted[rank].strategy.parameters.valueArray)
        }
    }

    func testANonFiniteGradientOnOneRankStopsEveryRankNamingTheTensor() {
        let results = run(ranks: 3, loopOptions(maxSteps: 5)) { strategy in
            strategy.nanSteps = [2]
            strategy.nanRank = 1
            strategy.agreeOnScreen = true
        }
        for (rank, (strategy, result)) in results.enumerated() {
            XCTAssertEqual(strategy.steps.count, 3, "rank \(rank) stopped at step 3 with the others")
            guard case .failure(let error as GroupFailure) = result else { return XCTFail("rank \(rank): \(result)") }
            XCTAssertEqual(error.failingRank, 1)
            if rank == 1 {
                XCTAssertEqual((error.error as? NonFiniteGradient)?.tensor, "layer.w")
                XCTAssertEqual((error.error as? NonFiniteGradient)?.step, 3)
            } else {
                XCTAssertNil(error.error, "only the rank that found it knows the details")
            }
        }
    }

    func testRanksStartedDifferentlyStopBeforeTrainingNamingTheField() {
        let results = run(ranks: 3, loopOptions()) { strategy in
            if strategy.communicator.rank == 2 { strategy.scriptName = "other" }
        }
        for (strategy, result) in results {
            guard case .failure(let error as ConfigurationMismatch) = result else { return XCTFail("\(result)") }
            XCTAssertEqual(error.field, "the script")
            XCTAssertEqual([error.firstRank, error.otherRank], [0, 2])
            XCTAssertEqual(error.otherValue, "other")
            XCTAssertFalse(strategy.log.contains("start"), "nothing was communicated")
        }
    }

    func testAPlanThatFailsOnOneRankEndsEveryRankWithThatRanksError() {
        struct Broken: Error {}
        let results = run(ranks: 3, loopOptions()) { $0.planFailure = (2, Broken()) }
        for (rank, (_, result)) in results.enumerated() {
            guard case .failure(let error as GroupFailure) = result else { return XCTFail("\(result)") }
            XCTAssertEqual(error.failingRank, 2)
            XCTAssertEqual(error.error is Broken, rank == 2)
        }
    }

    func testTheMetricsFileHoldsTheCommonKeysAndTheStrategysOwn() throws {
        let path = temporaryDirectory() + "/metrics.json"
        var options = loopOptions(maxSteps: 4)
        options.outputs = Outputs(metrics: path)
        _ = try run(ranks: 2, options)[0].result.get()
        let object = try JSONSerialization.jsonObject(with: Data(AtomicFile.read(path))) as! [String: Any]
        for key in ["tool", "ranks", "model", "parameters", "dataset", "epochs", "steps", "global_batch", "optimizer",
                    "learning_rate", "seed", "samples_per_sec", "step_seconds", "test_accuracy", "final_loss",
                    "skipped_nonfinite_steps", "resumed_from_step", "train_seconds", "wall_seconds", "scripted_steps"] {
            XCTAssertNotNil(object[key], key)
        }
        XCTAssertEqual(object["steps"] as? Int, 4)
        XCTAssertEqual(object["ranks"] as? Int, 2)
        XCTAssertEqual(object["global_batch"] as? Int, 16)
    }
}
