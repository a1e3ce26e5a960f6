import ChorusTesting
import Communication
@testable import Federated
import NeuralNet
import XCTest

/// Masked sums against plain ones, on fake ranks: within the documented bound, with
/// and without dropped clients; the masks cancel exactly; a masked update hides
/// every coordinate.
final class SecureAggregationTests: XCTestCase {
    static let parameters = 257

    func updates(_ clients: [Int], seed: UInt64) -> [ClientUpdate] {
        clients.map { client in
            var generator = SeededGenerator(seed: seed, stream: UInt64(client))
            let delta = (0..<Self.parameters).map { _ in generator.nextFloat(bound: 0.3) }
            return ClientUpdate(client: client, samples: 20 + client * 7, delta: delta, meanLoss: 1 + Double(client) / 10,
                                steps: 1, processedSamples: 20 + client * 7)
        }
    }

    /// Both aggregators over `ranks` fake ranks, each rank holding its block of the plan.
    func aggregate(_ plan: RoundPlan, ranks: Int, seed: UInt64 = 11) -> (plain: RoundAggregate, secure: RoundAggregate) {
        let all = updates(plan.reporting, seed: seed)
        let asked = plan.asked.reduce(0) { $0 + 20 + $1 * 7 }
        let results = InProcessGroup(size: ranks).run { rank -> (RoundAggregate, RoundAggregate) in
            let mine = Array(plan.trainedBy(rank: rank.rank, of: ranks)).map { c in all.first { $0.client == c }! }
            let plain = PlainAggregator().aggregate(mine, plan: plan, askedSamples: asked, parameters: Self.parameters, over: rank)
            let secure = SecureAggregator(scheme: SecureAggregation(clipBound: 1), seed: seed)
                .aggregate(mine, plan: plan, askedSamples: asked, parameters: Self.parameters, over: rank)
            return (plain, secure)
        }
        for (p, s) in results.dropFirst() {
            XCTAssertEqual(p.weightedDelta, results[0].0.weightedDelta)
            XCTAssertEqual(s.weightedDelta, results[0].1.weightedDelta)
        }
        return results[0]
    }

    func testTheSecureSumIsThePlainSumWithinTheBound() {
        for (dropout, ranks) in [(0.0, 1), (0.0, 3), (0.4, 2), (0.4, 4)] {
            let plan = RoundPlan(round: 2, clients: 30, perRound: 9, dropout: dropout, minimumReports: 0, seed: 21)
            if dropout > 0 { XCTAssertGreaterThan(plan.dropped, 0, "the case must drop someone") }
            let (plain, secure) = aggregate(plan, ranks: ranks)
            XCTAssertEqual(secure.samples, plain.samples)
            XCTAssertGreaterThan(secure.errorBound, 0)
            XCTAssertLessThan(secure.errorBound, 1e-6)
            let n = Double(plain.samples)
            for (a, b) in zip(plain.weightedDelta, secure.weightedDelta) {
                XCTAssertLessThanOrEqual(abs(a / n - b / n), secure.errorBound, "dropout \(dropout), \(ranks) ranks")
            }
            XCTAssertEqual(secure.meanLoss, plain.meanLoss, accuracy: 1e-4)
            XCTAssertEqual(secure.clipped, 0)
        }
    }

    func testMasksCancelExactlyInTheIntegerSum() {
        let plan = RoundPlan(round: 0, clients: 12, perRound: 6, dropout: 0, minimumReports: 0, seed: 4)
        let scheme = SecureAggregation(clipBound: 1)
        let scales = scheme.scales(askedSamples: 1_000)
        var clipped = 0
        var plainSum = [Int32](repeating: 0, count: Self.parameters + 2), maskedSum = plainSum
        for update in updates(plan.reporting, seed: 1) {
            let plain = scheme.encode(update, scales: scales, clipped: &clipped)
            var masked = plain
            SecureAggregation.mask(&masked, client: update.client, asked: plan.asked, round: 0, seed: 4)
            // Every coordinate of a single client's vector is hidden.
            XCTAssertTrue(zip(plain, masked).allSatisfy { $0 != $1 }, "client \(update.client)")
            for i in plainSum.indices {
                plainSum[i] = plainSum[i] &+ plain[i]
                maskedSum[i] = maskedSum[i] &+ masked[i]
            }
        }
        XCTAssertEqual(maskedSum, plainSum)
    }

    func testWithoutRemovingTheDroppedMasksTheSumIsGarbage() {
        let plan = RoundPlan(round: 1, clients: 20, perRound: 8, dropout: 0.5, minimumReports: 0, seed: 2)
        XCTAssertGreaterThan(plan.dropped, 0)
        XCTAssertFalse(plan.reporting.isEmpty)
        let scheme = SecureAggregation(clipBound: 1)
        let scales = scheme.scales(askedSamples: 1_000)
        var clipped = 0, sum = [Int32](repeating: 0, count: Self.parameters + 2), plainSum = sum
        for update in updates(plan.reporting, seed: 3) {
            let plain = scheme.encode(update, scales: scales, clipped: &clipped)
            var masked = plain
            SecureAggregation.mask(&masked, client: update.client, asked: plan.asked, round: 1, seed: 2)
            for i in sum.indices {
                sum[i] = sum[i] &+ masked[i]
                plainSum[i] = plainSum[i] &+ plain[i]
            }
        }
        XCTAssertNotEqual(sum, plainSum)
        sum.withUnsafeMutableBufferPointer { SecureAggregation.removeDroppedMasks($0, plan: plan, seed: 2) }
        XCTAssertEqual(sum, plainSum)
    }

    func testUpdatesBeyondTheBoundAreClippedAndCounted() {
        let scheme = SecureAggregation(clipBound: 0.1)
        var clipped = 0
        let update = ClientUpdate(client: 0, samples: 10, delta: [0.05, 0.5, -2, .nan], meanLoss: 1, steps: 1, processedSamples: 10)
        let scales = scheme.scales(askedSamples: 10)
        let encoded = scheme.encode(update, scales: scales, clipped: &clipped)
        XCTAssertEqual(clipped, 3)
        XCTAssertEqual(Double(encoded[1]) / scales.update, 1, accuracy: 1e-6)  // 10 x 0.1
        XCTAssertEqual(Double(encoded[2]) / scales.update, -1, accuracy: 1e-6)
        XCTAssertEqual(encoded[3], 0)
        XCTAssertEqual(encoded[4], 10)
    }
}
