import ChorusTesting
import Datasets
@testable import Federated
import Foundation
import NeuralNet
import XCTest

/// Slow clients and the round deadline: the simulated clock against hand-computed
/// times, FedAvg dropping the late and FedProx keeping their partial work, and runs
/// that stay the same at any rank count.
final class StragglerTests: XCTestCase {
    /// 10 clients of 12 samples, E = 2, B = 5: steps of 5, 5 and 2 samples per epoch;
    /// a mean-size client at normal speed needs 2.0 for its work.
    func timing(slow: SlowClients? = SlowClients(fraction: 0.3, slowdown: 3), deadline: Double?, partial: Bool,
                seed: UInt64 = 1) -> ClientTiming {
        ClientTiming(sizes: Array(repeating: 12, count: 10), epochs: 2, batch: 5, slow: slow, deadline: deadline,
                     keepsPartialWork: partial, seed: seed)
    }

    func testTheSlowClientsAreASeededFixedShare() {
        let a = timing(deadline: nil, partial: false)
        XCTAssertEqual(a.slowClients, 3)
        XCTAssertEqual(a.slowdowns, timing(deadline: nil, partial: false).slowdowns)
        XCTAssertNotEqual(a.slowdowns, timing(deadline: nil, partial: false, seed: 2).slowdowns)
        XCTAssertEqual(timing(slow: nil, deadline: nil, partial: false).slowClients, 0)
        // Any share above 0 makes a client slow, even one that rounds to none.
        XCTAssertEqual(timing(slow: SlowClients(fraction: 0.01, slowdown: 2), deadline: nil, partial: false).slowClients, 1)
    }

    func testTheClockCountsSamplesTimesTheSlowdown() {
        let t = timing(deadline: 3, partial: true)
        let slow = t.slowdowns.firstIndex(of: 3)!, fast = t.slowdowns.firstIndex(of: 1)!
        XCTAssertEqual(t.time(client: fast), 2.0, accuracy: 1e-12)
        XCTAssertEqual(t.time(client: slow), 6.0, accuracy: 1e-12)
        XCTAssertEqual(t.time(client: slow, steps: 1), 1.25, accuracy: 1e-12)
        XCTAssertEqual(t.time(client: slow, steps: 4), 4.25, accuracy: 1e-12)
        XCTAssertEqual(t.work(client: fast), .complete(time: 2.0))
        // 12 samples x 3 / 12 = 3.0 fits exactly: the first epoch's three steps.
        XCTAssertEqual(t.work(client: slow), .partial(steps: 3))
        XCTAssertEqual(t.processedSamples(client: slow), 12)
        XCTAssertEqual(t.processedSamples(client: fast), 24)
        XCTAssertEqual(timing(deadline: 3, partial: false).work(client: slow), .late)
        // A deadline shorter than one step leaves nothing to keep.
        XCTAssertEqual(timing(deadline: 1, partial: true).work(client: slow), .late)
        // A deadline the slow clients meet changes nothing.
        XCTAssertEqual(timing(deadline: 6, partial: false).work(client: slow), .complete(time: 6.0))
    }

    func testTheRoundWaitsForTheLastClientOrTheDeadline() {
        let t = timing(deadline: 3, partial: false), lenient = timing(deadline: 10, partial: false)
        let slow = t.slowdowns.firstIndex(of: 3)!, fast = t.slowdowns.firstIndex(of: 1)!
        func plan(_ clients: [Int], _ timing: ClientTiming) -> RoundPlan {
            // Every client asked (fraction 1); the plan's own late clients.
            RoundPlan(round: 0, clients: 10, perRound: 10, dropout: 0, minimumReports: 0, seed: 1) {
                !clients.contains($0) || timing.work(client: $0) == .late
            }
        }
        XCTAssertEqual(t.roundTime(plan([fast], t)), 3, "a client was dropped: the server waited for the deadline")
        XCTAssertEqual(lenient.roundTime(plan(Array(0..<10), lenient)), 6, accuracy: 1e-12)
        let withSlow = plan(Array(0..<10), t)
        XCTAssertEqual(withSlow.late.sorted(), (0..<10).filter { t.slowdowns[$0] > 1 })
        XCTAssertFalse(withSlow.reporting.contains(slow))
        XCTAssertEqual(t.roundTime(withSlow), 3, "slow clients missed it: the server waited for the deadline")
        let partial = timing(deadline: 3, partial: true)
        XCTAssertEqual(partial.roundTime(plan(Array(0..<10), partial)), 3, "FedProx's partial clients report at the deadline")
    }

    func testLateClientsMakeAMinimumOfReportsAskMore() {
        let t = ClientTiming(sizes: Array(repeating: 12, count: 40), epochs: 1, batch: 0,
                             slow: SlowClients(fraction: 0.5, slowdown: 4), deadline: 2, keepsPartialWork: false, seed: 5)
        for round in 0..<50 {
            let plan = RoundPlan(round: round, clients: 40, perRound: 4, dropout: 0, minimumReports: 4, seed: 5) {
                t.work(client: $0) == .late
            }
            XCTAssertEqual(plan.reporting.count, 4)
            XCTAssertEqual(plan.asked.count, 4 + plan.late.count)
            XCTAssertTrue(plan.late.allSatisfy { t.slowdowns[$0] == 4 })
        }
    }

    /// Partial work is the first steps of the whole: a client stopped after its first
    /// epoch's steps ends where a client with E = 1 does.
    func testPartialWorkIsThePrefixOfTheFullTraining() throws {
        let data = StrategyTests.data.train
        let samples = Array(0..<12)
        func run(epochs: Int, limit: Int?) throws -> [Float] {
            let model = try StrategyTests.model.build(seed: 3)
            let trainer = LocalTrainer(workspace: try StrategyTests.model.build(seed: 3), data: data,
                                       loss: SoftmaxCrossEntropyLoss(), epochs: epochs, batch: 5, proximal: 0.01, seed: 9)
            let optimizer = OptimizerSettings(kind: .sgd, momentum: 0).make(learningRate: 0.1)
            let update = trainer.train(client: 2, samples: samples, from: model.parameters.values, round: 1,
                                       optimizer: optimizer, stepLimit: limit)
            XCTAssertEqual(update.steps, limit ?? 3 * epochs)
            // The clock counts the samples the trainer processed (deadline 3 at slowdown 3: one epoch's 12).
            let timing = ClientTiming(sizes: [12, 12, 12], epochs: epochs, batch: 5, slow: SlowClients(fraction: 1, slowdown: 3),
                                      deadline: limit == nil ? nil : 3, keepsPartialWork: true, seed: 1)
            XCTAssertEqual(update.processedSamples, timing.processedSamples(client: 2))
            return update.delta
        }
        XCTAssertEqual(try run(epochs: 2, limit: 3), try run(epochs: 1, limit: nil))
        XCTAssertNotEqual(try run(epochs: 2, limit: 3), try run(epochs: 2, limit: nil))
    }
}

/// The same through the shared loop on fake ranks.
final class StragglerStrategyTests: XCTestCase, FederatedRuns {

    func options(_ algorithm: FederatedAlgorithm, deadline: Double?, slowdown: Double = 3) -> FederatedOptions {
        federated(rounds: 4, clients: 10, fraction: 0.5) {
            $0.algorithm = algorithm
            $0.localEpochs = 2
            $0.localBatch = 5
            if algorithm == .fedprox { $0.proximal = 0.01 }
            $0.slowClients = SlowClients(fraction: 0.4, slowdown: slowdown)
            $0.roundDeadline = deadline
        }
    }

    func metrics(_ options: FederatedOptions, ranks: Int = 2) throws -> ([Float], [String: Any]) {
        let path = NSTemporaryDirectory() + "chorus-fed-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try train(options, ranks: ranks, metrics: path)
        return (model, try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any])
    }

    func testADeadlineEveryoneMeetsChangesNothing() throws {
        var plain = options(.fedavg, deadline: nil)
        plain.slowClients = nil
        // 12 samples each, E = 2, slowdown 3: the slow clients need 6.
        XCTAssertEqual(try train(options(.fedavg, deadline: 6), ranks: 2), try train(plain, ranks: 2))
        XCTAssertEqual(try train(options(.fedavg, deadline: nil), ranks: 2), try train(plain, ranks: 2))
    }

    func testFedAvgDropsTheLateAndFedProxKeepsTheirSteps() throws {
        let (dropped, avg) = try metrics(options(.fedavg, deadline: 3))
        let partition = try ClientPartition(labels: StrategyTests.data.train.labels, classes: 3, clients: 10, scheme: .iid, seed: 3,
                                            minimumSize: 10)
        let t = ClientTiming(sizes: partition.sizes, epochs: 2, batch: 5, slow: SlowClients(fraction: 0.4, slowdown: 3),
                             deadline: 3, keepsPartialWork: false, seed: 3)
        let plans = (0..<4).map { RoundPlan(round: $0, clients: 10, perRound: 5, dropout: 0, minimumReports: 0, seed: 3) {
            t.work(client: $0) == .late
        } }
        let late = plans.map(\.late.count).reduce(0, +)
        XCTAssertGreaterThan(late, 0, "the scripted rounds must ask slow clients")
        XCTAssertEqual(avg["late_clients"] as? Int, late)
        XCTAssertEqual(avg["dropped_clients"] as? Int, late)
        XCTAssertEqual(avg["partial_clients"] as? Int, 0)
        // A round that asked a slow client waited for the deadline (3), one that did not for its fast clients (2).
        let waited = plans.map { $0.late.isEmpty ? 2.0 : 3.0 }.reduce(0, +)
        XCTAssertEqual(avg["simulated_time"] as? Double ?? 0, waited, accuracy: 1e-9)
        XCTAssertEqual(t.roundTime(plans[0]), plans[0].late.isEmpty ? 2 : 3, accuracy: 1e-12)
        // Without a deadline such a round waits for its slow clients (6).
        let (_, full) = try metrics(options(.fedavg, deadline: nil))
        XCTAssertEqual(full["simulated_time"] as? Double ?? 0, plans.map { $0.late.isEmpty ? 2.0 : 6.0 }.reduce(0, +), accuracy: 1e-9)

        let (kept, prox) = try metrics(options(.fedprox, deadline: 3))
        XCTAssertEqual(prox["late_clients"] as? Int, 0)
        XCTAssertEqual(prox["partial_clients"] as? Int, late)
        XCTAssertEqual(prox["client_samples"] as? Int, (avg["client_samples"] as? Int ?? 0) + late * 12)
        XCTAssertNotEqual(kept, dropped)
    }

    func testEveryClientLateKeepsTheModel() throws {
        var options = options(.fedavg, deadline: 1)
        options.slowClients = SlowClients(fraction: 1, slowdown: 2)
        let (model, json) = try metrics(options)
        XCTAssertEqual(model, try StrategyTests.model.build(seed: 3).parameters.valueArray)
        XCTAssertEqual(json["empty_rounds"] as? Int, 4)
    }

    func testStragglerRunsAreTheSameAtAnyRankCount() throws {
        for algorithm in [FederatedAlgorithm.fedavg, .fedprox] {
            let one = try train(options(algorithm, deadline: 3), ranks: 1)
            for ranks in [2, 3] {
                XCTAssertEqual(try train(options(algorithm, deadline: 3), ranks: ranks), one, "\(algorithm) at \(ranks) ranks")
            }
        }
    }

    func testBadStragglerSettingsAreErrors() {
        var slowdown = options(.fedavg, deadline: 3)
        slowdown.slowClients = SlowClients(fraction: 0.5, slowdown: 0.5)
        let deadline = options(.fedavg, deadline: 0)
        for (options, message) in [(slowdown, "a slow client's slowdown must be a number of at least 1 (got 0.5)"),
                                   (deadline, "the round deadline must be a positive number (got 0.0)")] {
            XCTAssertThrowsError(try train(options, ranks: 2)) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }
}
