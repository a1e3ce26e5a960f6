import XCTest
import Collectives
import CommunicationHooks
import DataParallel
@testable import GradientCompression

/// Every compressor on fake ranks: the same bits on every rank, close to the mean
/// where it should be, and PowerSGD's and top-k's error-feedback identities.
final class CompressionHookTests: XCTestCase {
    /// Odd sizes, a matrix too small to compress, a vector, a column, an empty tensor
    /// and one matrix PowerSGD compresses at every rank it is asked for.
    static let shapes = [[7, 5], [5], [3, 1], [0], [13, 11]]

    static let compressors: [(String, Compression)] = [
        ("none", .none), ("fp16", .float16), ("bf16", .bfloat16), ("powersgd:1", powerSGD(rank: 1)),
        ("powersgd:2", powerSGD(rank: 2)), ("powersgd:2 without feedback", powerSGD(rank: 2, errorFeedback: false, warmStart: false)),
        ("topk:0.1", topK(0.1)), ("topk:1", topK(1)),
    ]

    func testEveryCompressorGivesEveryRankTheSameBitsAtTwoThreeAndFiveRanks() {
        for ranks in [2, 3, 5] {
            for (name, compression) in Self.compressors {
                let harness = HookHarness(ranks: ranks, shapes: Self.shapes)
                let records = harness.run(steps: 3, hook: hookFactory(compression), gradient: pseudoRandomGradient)
                for step in 0..<3 {
                    let first = records[0][step].output.map(\.bitPattern)
                    for rank in 1..<ranks {
                        XCTAssertEqual(records[rank][step].output.map(\.bitPattern), first, "\(name) at \(ranks) ranks, step \(step + 1)")
                    }
                    XCTAssertTrue(records[0][step].output.allSatisfy(\.isFinite), "\(name) at \(ranks) ranks")
                }
            }
        }
    }

    /// The same through each message algorithm (a node per rank: ring, recursive
    /// doubling; two nodes of two or three: hierarchical), where every rank reduces
    /// its own share and then receives the others'.
    func testEveryCompressorGivesEveryRankTheSameBitsThroughEveryAlgorithm() {
        for (ranks, nodeSize, algorithm) in [(3, 1, AllreduceAlgorithm.ring), (5, 1, .recursiveDoubling), (5, 2, .hierarchical),
                                             (4, 2, .hierarchical)] {
            for (name, compression) in Self.compressors {
                var harness = HookHarness(ranks: ranks, shapes: Self.shapes)
                harness.nodeSize = nodeSize
                harness.algorithm = algorithm
                let records = harness.run(steps: 2, hook: hookFactory(compression), gradient: pseudoRandomGradient)
                for step in 0..<2 {
                    for rank in 1..<ranks {
                        XCTAssertEqual(records[rank][step].output.map(\.bitPattern), records[0][step].output.map(\.bitPattern),
                                       "\(name), \(algorithm) at \(ranks) ranks, step \(step + 1)")
                    }
                }
            }
        }
    }

    /// What must hold of each compressor's first step against the exact mean.
    func testEachCompressorIsAsCloseToTheMeanAsItsFormatAllows() {
        let ranks = 3, harness = HookHarness(ranks: ranks, shapes: Self.shapes)
        let count = harness.count
        let mean = (0..<count).map { i in (0..<ranks).map { Double(pseudoRandomGradient($0, 1, i)) }.reduce(0, +) / Double(ranks) }
        func output(_ compression: Compression) -> [Float] {
            harness.run(steps: 1, hook: hookFactory(compression), gradient: pseudoRandomGradient)[0][0].output
        }
        func largestError(_ values: [Float], in range: Range<Int>) -> Double {
            range.map { abs(Double(values[$0]) - mean[$0]) }.max() ?? 0
        }
        let all = 0..<count
        XCTAssertLessThan(largestError(output(.none), in: all), 1e-6)
        // |mean| < 1: float16 rounds to 2^-11 relative, bfloat16 to 2^-8, once per rank's addition.
        XCTAssertLessThan(largestError(output(.float16), in: all), Double(ranks) * 0x1p-11)
        XCTAssertLessThan(largestError(output(.bfloat16), in: all), Double(ranks) * 0x1p-8)
        XCTAssertGreaterThan(largestError(output(.bfloat16), in: all), 1e-6, "bfloat16 rounding must show")
        XCTAssertLessThan(largestError(output(topK(1)), in: all), 1e-6, "keeping every entry is the plain mean")
        // PowerSGD sends the small tensors as they are: exact there, approximate in the 13 x 11 matrix.
        let uncompressed = 0..<(35 + 5 + 3)
        let powered = output(powerSGD(rank: 2))
        XCTAssertLessThan(largestError(powered, in: uncompressed), 1e-6)
        XCTAssertGreaterThan(largestError(powered, in: uncompressed.upperBound..<count), 1e-3, "a rank-2 approximation of noise")
        // Top-k at 10%: each rank sends ⌈0.1 · 186⌉ = 19 entries; the rest are zero before averaging.
        let sparse = output(topK(0.1))
        XCTAssertLessThanOrEqual(sparse.filter { $0 != 0 }.count, 19 * ranks)
        XCTAssertGreaterThanOrEqual(sparse.filter { $0 != 0 }.count, 19)
    }

    /// PowerSGD's identity, checked in float64 at rank 2 over three steps: each rank's
    /// input (gradient plus residual) is its contribution plus its new residual, the
    /// contributions are of rank 2 and lie in the aggregate's column space, and the
    /// aggregate is their mean.
    func testPowerSGDContributionPlusResidualIsTheInputAndTheMeanOfContributionsIsTheResult() {
        let ranks = 3, rows = 16, columns = 12
        let harness = HookHarness(ranks: ranks, shapes: [[rows, columns]])
        let records = harness.run(steps: 3, hook: hookFactory(powerSGD(rank: 2)), gradient: pseudoRandomGradient)
        var residuals = [[Double]](repeating: [Double](repeating: 0, count: rows * columns), count: ranks)
        for step in 0..<3 {
            let aggregate = records[0][step].output.map(Double.init)
            let basis = orthonormalColumns(aggregate, rows: rows, columns: columns)
            XCTAssertEqual(basis.count, 2, "the aggregate has rank 2")
            var meanContribution = [Double](repeating: 0, count: rows * columns)
            for rank in 0..<ranks {
                let input = zip(records[rank][step].input.map(Double.init), residuals[rank]).map(+)
                let residual = records[rank][step].state["residual.0"]!.map(Double.init)
                let contribution = zip(input, residual).map(-)
                for i in contribution.indices { meanContribution[i] += contribution[i] / Double(ranks) }
                // In the column space of P̂: nothing is left after projecting onto it.
                let leftover = projectOut(contribution, basis: basis, rows: rows, columns: columns)
                XCTAssertLessThan(norm(leftover), 1e-5 * norm(contribution), "rank \(rank) step \(step + 1)")
                residuals[rank] = residual
            }
            XCTAssertLessThan(norm(zip(meanContribution, aggregate).map(-)), 1e-5 * norm(aggregate), "step \(step + 1)")
        }
    }

    /// A mean gradient of exactly rank R (ranks share the left factor) is reduced
    /// exactly, from a random start, in one step.
    func testAnExactlyRankRMeanIsReducedExactly() {
        for rank in [1, 2, 4] {
            // Large enough that every rank asked for is worth compressing: 1,200 ≥ 2 · 70 · 4.
            let ranks = 3, rows = 40, columns = 30
            let harness = HookHarness(ranks: ranks, shapes: [[rows, columns]])
            @Sendable func factor(_ seed: Int, _ i: Int) -> Float { pseudoRandomGradient(seed, 0, i) }
            let gradient: @Sendable (Int, Int, Int) -> Float = { r, _, index in
                let i = index / columns, j = index % columns
                return (0..<rank).reduce(Float(0)) { $0 + factor(99, i * rank + $1) * factor(r, j * rank + $1) }
            }
            let output = harness.run(steps: 1, hook: hookFactory(powerSGD(rank: rank)), gradient: gradient)[0][0].output
            for i in 0..<(rows * columns) {
                let mean = (0..<ranks).map { Double(gradient($0, 1, i)) }.reduce(0, +) / Double(ranks)
                XCTAssertEqual(Double(output[i]), mean, accuracy: 1e-5, "rank \(rank) element \(i)")
            }
        }
    }

    func testTopKContributionPlusResidualIsTheInputExactly() {
        let ranks = 3, harness = HookHarness(ranks: ranks, shapes: [[40, 5]])
        let records = harness.run(steps: 3, hook: hookFactory(topK(0.05)), gradient: pseudoRandomGradient)
        var residuals = [[Float]](repeating: [Float](repeating: 0, count: 200), count: ranks)
        for step in 0..<3 {
            var sum = [Float](repeating: 0, count: 200)
            for rank in 0..<ranks {
                let input = zip(records[rank][step].input, residuals[rank]).map(+)
                let residual = records[rank][step].state["residual.0"]!
                let sent = zip(input, residual).map(-)
                // What was sent is exactly the input where the residual is zero, and nothing elsewhere.
                for i in 0..<200 { XCTAssertTrue(residual[i] == 0 ? sent[i] == input[i] : sent[i] == 0) }
                XCTAssertEqual(sent.filter { $0 != 0 }.count, 10, "⌈5% of 200⌉ entries")
                for i in 0..<200 { sum[i] += sent[i] }
                residuals[rank] = residual
            }
            for i in 0..<200 { XCTAssertEqual(records[0][step].output[i], sum[i] * (1 / Float(ranks)), "summed in rank order") }
        }
    }

    func testBeforeItsStartStepPowerSGDIsBitwisePlainAveraging() {
        let harness = HookHarness(ranks: 3, shapes: Self.shapes)
        let plain = harness.run(steps: 3, hook: hookFactory(.none), gradient: pseudoRandomGradient)
        let powered = harness.run(steps: 3, hook: hookFactory(powerSGD(rank: 2, startStep: 2)), gradient: pseudoRandomGradient)
        for step in 0..<2 { XCTAssertEqual(powered[1][step].output.map(\.bitPattern), plain[1][step].output.map(\.bitPattern)) }
        XCTAssertNotEqual(powered[1][2].output, plain[1][2].output, "compression starts at step 3")
    }

    /// Saving a hook's state after step 2 and restoring it into a new hook continues
    /// bitwise as the uninterrupted hook does: residuals, Q and the step count.
    func testRestoredStateContinuesBitwise() {
        for (name, compression) in [("powersgd:2", powerSGD(rank: 2, startStep: 1)), ("topk:0.1", topK(0.1))] {
            let harness = HookHarness(ranks: 3, shapes: Self.shapes)
            let whole = harness.run(steps: 4, hook: hookFactory(compression), gradient: pseudoRandomGradient)
            let states = (0..<3).map { whole[$0][1].state }
            let resumed = harness.run(steps: 2, hook: hookFactory(compression), restoring: states, firstStep: 3,
                                      gradient: pseudoRandomGradient)
            for rank in 0..<3 {
                for step in 0..<2 {
                    XCTAssertEqual(resumed[rank][step].output.map(\.bitPattern), whole[rank][step + 2].output.map(\.bitPattern),
                                   "\(name) rank \(rank) step \(step + 3)")
                }
            }
        }
    }

    /// A run resumed with another length keeps the start its checkpoint resolved:
    /// compression that had begun does not stop for the new run's warm-up.
    func testAResumedRunKeepsTheStartStepItsCheckpointResolved() {
        var settings = PowerSGDSettings(rank: 2)
        settings.start = .afterFraction(0.5)
        let compression = Compression.powerSGD(settings)
        let harness = HookHarness(ranks: 2, shapes: Self.shapes)
        let first = harness.run(steps: 3, hook: { _ in let hook = compression.hook(); hook.prepare(totalSteps: 4); return hook },
                                gradient: pseudoRandomGradient)
        let longer = harness.run(steps: 1, hook: { _ in let hook = compression.hook(); hook.prepare(totalSteps: 100); return hook },
                                 restoring: (0..<2).map { first[$0][2].state }, firstStep: 4, gradient: pseudoRandomGradient)
        let plain = harness.run(steps: 1, hook: hookFactory(.none), firstStep: 4, gradient: pseudoRandomGradient)
        XCTAssertNotEqual(longer[0][0].output, plain[0][0].output, "step 4 is compressed, as in the run that wrote the state")
    }

    /// A NaN on one rank reaches every rank (so the gradient screen sees it) and
    /// leaves the residuals as they were, so the next step is clean again.
    func testANonFiniteGradientOnOneRankReachesEveryRankAndSparesTheResiduals() {
        for (name, compression) in [("powersgd:2", powerSGD(rank: 2)), ("topk:0.1", topK(0.1))] {
            let harness = HookHarness(ranks: 3, shapes: Self.shapes)
            let records = harness.run(steps: 3, hook: hookFactory(compression)) { rank, step, i in
                rank == 1 && step == 2 && i == 150 ? .nan : pseudoRandomGradient(rank, step, i)
            }
            for rank in 0..<3 {
                XCTAssertTrue(records[rank][1].output.contains { $0.isNaN }, "\(name) rank \(rank) sees the NaN")
                XCTAssertEqual(records[rank][1].state["residual.0"], records[rank][0].state["residual.0"], "\(name) rank \(rank)")
                XCTAssertTrue(records[rank][2].output.allSatisfy(\.isFinite), "\(name) rank \(rank): step 3 is clean")
            }
        }
    }

    func testStateOfAnotherHookIsRefused() {
        XCTAssertThrowsError(try powerSGD(rank: 2).hook().restore([:])) { error in
            XCTAssertTrue("\(error)".contains("holds no PowerSGD state"), "\(error)")
        }
    }
}

// MARK: float64 linear algebra for the checks

/// An orthonormal basis of the column space of a row-major matrix (Gram-Schmidt;
/// columns below 1e-9 of the largest norm are dropped as dependent).
func orthonormalColumns(_ matrix: [Double], rows: Int, columns: Int) -> [[Double]] {
    let scale = (0..<columns).map { j in norm((0..<rows).map { matrix[$0 * columns + j] }) }.max() ?? 0
    var basis: [[Double]] = []
    for j in 0..<columns {
        var column = (0..<rows).map { matrix[$0 * columns + j] }
        for b in basis {
            let dot = zip(b, column).map(*).reduce(0, +)
            column = zip(column, b).map { $0 - dot * $1 }
        }
        let length = norm(column)
        if length > 1e-6 * scale { basis.append(column.map { $0 / length }) }
    }
    return basis
}

/// Each column of `matrix` minus its projection onto the basis.
func projectOut(_ matrix: [Double], basis: [[Double]], rows: Int, columns: Int) -> [Double] {
    var result = matrix
    for j in 0..<columns {
        var column = (0..<rows).map { matrix[$0 * columns + j] }
        for b in basis {
            let dot = zip(b, column).map(*).reduce(0, +)
            column = zip(column, b).map { $0 - dot * $1 }
        }
        for i in 0..<rows { result[i * columns + j] = column[i] }
    }
    return result
}

func norm(_ values: [Double]) -> Double { values.map { $0 * $0 }.reduce(0, +).squareRoot() }
