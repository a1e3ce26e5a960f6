import ChorusTesting
import Communication
import Datasets
@testable import Federated
import Foundation
import NeuralNet
import Persistence
import TrainingLoop
import XCTest

/// Federated training in the shared loop, on fake ranks, against its oracles: FedSGD
/// with every client is full-batch gradient descent on the union; a run is the same
/// at any rank count; secure aggregation equals plain aggregation within its bound; a
/// resumed run equals the uninterrupted one bit for bit.
final class StrategyTests: XCTestCase, FederatedRuns {
    static let model = ModelDescription(kind: .mlp, hidden: [12], inputShape: [1, 4, 4], classes: 3)
    static let data = try! SyntheticImages.make(trainCount: 120, testCount: 30, imageShape: [1, 4, 4], classes: 3, seed: 4)

    /// The oracle: one process, full-batch gradient descent on the whole training set.
    func fullBatchGradientDescent(steps: Int, lr: Float) throws -> [Float] {
        let model = try Self.model.build(seed: 3)
        let optimizer = OptimizerSettings(kind: .sgd, momentum: 0).make(learningRate: lr)
        let loss = SoftmaxCrossEntropyLoss()
        for _ in 0..<steps {
            model.parameters.zeroGradients()
            let (images, labels) = Self.data.train.batch(0..<Self.data.train.count)
            let (logits, tape) = model.forward(images, training: true)
            model.backward(loss.lossAndGradient(logits: logits, labels: labels).gradient, tape: tape)
            optimizer.step(values: model.parameters.values, gradients: model.parameters.gradients)
        }
        return model.parameters.valueArray
    }

    func assertClose(_ a: [Float], _ b: [Float], tolerance: Float, _ label: String) {
        XCTAssertEqual(a.count, b.count, label)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, tolerance, label)
    }

    func testFedSGDWithEveryClientIsFullBatchGradientDescent() throws {
        let oracle = try fullBatchGradientDescent(steps: 5, lr: 0.5)
        let initial = try Self.model.build(seed: 3).parameters.valueArray
        XCTAssertGreaterThan(zip(oracle, initial).map { abs($0 - $1) }.max()!, 0.01, "the oracle must move")
        for ranks in [1, 2, 3] {
            let trained = try train(federated { $0.algorithm = .fedsgd }, ranks: ranks, lr: 0.5)
            assertClose(trained, oracle, tolerance: 1e-4, "FedSGD at \(ranks) ranks")
        }
        // Unequal shares too: the sample weights make the average the union's gradient.
        let skewed = federated { $0.algorithm = .fedsgd; $0.partition = .dirichlet(alpha: 0.3) }
        assertClose(try train(skewed, ranks: 2, lr: 0.5), oracle, tolerance: 1e-4, "FedSGD on a Dirichlet partition")
    }

    func testARunIsTheSameAtAnyRankCount() throws {
        let options = federated(rounds: 4, clients: 10, fraction: 0.5) {
            $0.partition = .shards(perClient: 2)
            $0.localEpochs = 2
            $0.localBatch = 5
            $0.dropout = 0.2
            $0.serverMomentum = 0.5
        }
        let one = try train(options, ranks: 1, momentum: 0.9)
        for ranks in [2, 3] {
            XCTAssertEqual(try train(options, ranks: ranks, momentum: 0.9), one, "\(ranks) ranks")
        }
        var serving = options
        serving.serverRankOnly = true
        XCTAssertEqual(try train(serving, ranks: 3, momentum: 0.9), one, "a serving-only rank 0")
    }

    func testSecureAggregationEqualsPlainWithinItsBound() throws {
        for dropout in [0.0, 0.3] {
            let plain = federated(rounds: 3, clients: 8, fraction: 0.75) { $0.dropout = dropout; $0.localBatch = 6 }
            var secure = plain
            secure.secureAggregation = SecureAggregation(clipBound: 1)
            let a = try train(plain, ranks: 2), b = try train(secure, ranks: 3)
            XCTAssertNotEqual(a, b, "fixed point is not float: some difference is expected")
            assertClose(a, b, tolerance: 1e-5, "secure against plain, dropout \(dropout)")
        }
    }

    func testAResumedRunEqualsTheUninterruptedOne() throws {
        let directory = NSTemporaryDirectory() + "chorus-fed-ckpt-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let options = federated(rounds: 6, clients: 6, fraction: 0.5) { $0.serverMomentum = 0.9; $0.dropout = 0.2 }
        let whole = try train(options, ranks: 2)
        let policy = CheckpointPolicy(directory: directory, every: 3, keep: 2, resume: true)
        _ = try train(options, ranks: 2, steps: 3, checkpoints: policy)
        XCTAssertEqual(try train(options, ranks: 3, checkpoints: policy), whole)
    }

    func testARoundWithoutReportsKeepsTheModel() throws {
        // Seed 3, 2 clients, 1 asked with dropout 0.9: the first round's client drops.
        let plan = RoundPlan(round: 0, clients: 2, perRound: 1, dropout: 0.9, minimumReports: 0, seed: 3)
        XCTAssertTrue(plan.reporting.isEmpty, "the scripted round must lose its client")
        let options = federated(rounds: 1, clients: 2, fraction: 0.5) { $0.dropout = 0.9 }
        let metrics = NSTemporaryDirectory() + "chorus-fed-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: metrics) }
        XCTAssertEqual(try train(options, ranks: 2, metrics: metrics), try Self.model.build(seed: 3).parameters.valueArray)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: metrics))) as! [String: Any]
        XCTAssertEqual(json["empty_rounds"] as? Int, 1)
        XCTAssertEqual(json["dropped_clients"] as? Int, 1)
    }

    func testDropoutIsCountedInTheMetrics() throws {
        let metrics = NSTemporaryDirectory() + "chorus-fed-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: metrics) }
        let options = federated(rounds: 8, clients: 10, fraction: 0.5) { $0.dropout = 0.5 }
        _ = try train(options, ranks: 2, metrics: metrics)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: metrics))) as! [String: Any]
        let plans = (0..<8).map { RoundPlan(round: $0, clients: 10, perRound: 5, dropout: 0.5, minimumReports: 0, seed: 3) }
        XCTAssertEqual(json["dropped_clients"] as? Int, plans.map(\.dropped).reduce(0, +))
        XCTAssertGreaterThan(json["dropped_clients"] as? Int ?? 0, 0)
        XCTAssertEqual(json["clients_reported"] as? Int, plans.map(\.reporting.count).reduce(0, +))
        XCTAssertEqual(json["bytes_up"] as? Int, plans.map(\.reporting.count).reduce(0, +) * 4 * (16 * 12 + 12 + 12 * 3 + 3))
    }

    func testBadSettingsAreErrorsOnEveryRank() {
        let cases: [(FederatedOptions, String)] = [
            (federated(fraction: 0), "the fraction of clients per round must be in (0, 1] (got 0.0)"),
            (federated { $0.proximal = 0.1 }, "a proximal term (mu) needs the fedprox algorithm (got fedavg)"),
            (federated(clients: 121), "121 clients need at least 121 training samples; the set has 120"),
        ]
        for (options, message) in cases {
            XCTAssertThrowsError(try train(options, ranks: 2)) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
    }
}
