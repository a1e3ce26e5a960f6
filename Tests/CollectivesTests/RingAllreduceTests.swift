import XCTest
@testable import Collectives
import ChorusTesting

final class ChunkingTests: XCTestCase {
    func testChunksCoverTheBufferWithoutGapsAndDifferByAtMostOne() {
        for count in [0, 1, 2, 5, 7, 64, 1001] {
            for parts in 1...7 {
                let chunking = Chunking(count: count, parts: parts)
                let ranges = (0..<parts).map(chunking.range)
                XCTAssertEqual(ranges.first?.lowerBound, 0)
                XCTAssertEqual(ranges.last?.upperBound, count)
                for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                let sizes = ranges.map(\.count)
                XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "count \(count) parts \(parts)")
                XCTAssertEqual(chunking.largest, sizes.max()!)
            }
        }
    }
}

final class RingAllreduceTests: XCTestCase {
    /// Runs the ring on `ranks` threads; rank r contributes `input(r, i)` at index i.
    /// Ring messages only (the neighbour length check is counted separately).
    func runRing(ranks: Int, count: Int, reduction: Reduction = .sum, segmentBytes: Int = RingSchedule.defaultSegmentBytes,
                 input: @escaping @Sendable (Int, Int) -> Double) -> (results: [[Double]], messages: [InProcessGroup.Message]) {
        let (results, messages) = runOnFakeRanks(ranks: ranks, count: count, input: input) { buffer, member in
            ringAllreduce(buffer, reduction, over: member, segmentBytes: segmentBytes)
        }
        return (results, messages.filter { $0.tag == CollectiveTag.ring })
    }

    @Sendable static func integerValue(_ rank: Int, _ index: Int) -> Double {
        Double((index * 7 + rank * 13) % 97 - 48)
    }

    func testSumMatchesSerialSumForEdgeSizesAndRankCounts() {
        for ranks in 1...6 {
            for count in [0, 1, ranks - 1, ranks, ranks + 1, 17, 1000] where count >= 0 {
                let (results, _) = runRing(ranks: ranks, count: count, input: Self.integerValue)
                let expected: [Double] = (0..<count).map { i in
                    (0..<ranks).reduce(0.0) { sum, r in sum + Self.integerValue(r, i) }
                }
                for (rank, result) in results.enumerated() {
                    XCTAssertEqual(result, expected, "ranks \(ranks) count \(count) rank \(rank)")
                }
            }
        }
    }

    func testAverageDividesByTheRankCount() {
        let (results, _) = runRing(ranks: 4, count: 10, reduction: .average) { r, i in Double(r * 10 + i) }
        // Σ_r (10r + i) over 4 ranks = 60 + 4i; divided by 4: 15 + i.
        XCTAssertEqual(results[2], (0..<10).map { i in Double(15 + i) })
    }

    func testTrafficIsTwoTimesPMinusOneMessagesToTheRightNeighbour() {
        let ranks = 5, count = 103
        let (_, messages) = runRing(ranks: ranks, count: count) { r, i in Double(r + i) }
        XCTAssertEqual(messages.count, ranks * 2 * (ranks - 1))
        for message in messages {
            XCTAssertEqual(message.destination, (message.source + 1) % ranks, "ring order")
        }
        // Each rank sends 2(p-1)/p of the buffer (up to the uneven last chunk).
        for rank in 0..<ranks {
            let sent = messages.filter { $0.source == rank }.reduce(0) { $0 + $1.bytes }
            let ideal = 2.0 * Double(ranks - 1) / Double(ranks) * Double(count * 8)
            XCTAssertEqual(Double(sent), ideal, accuracy: Double(2 * (ranks - 1) * 8))
        }
    }

    func testSegmentsPipelineEachChunkAndStillSumExactly() {
        // 103 doubles over 5 ranks: chunks of 21 elements (168 bytes); 16-byte segments
        // cut each into 11 segments (the last ones shorter).
        let ranks = 5, count = 103
        let (results, messages) = runRing(ranks: ranks, count: count, segmentBytes: 16, input: Self.integerValue)
        let expected: [Double] = (0..<count).map { i in (0..<ranks).reduce(0.0) { $0 + Self.integerValue($1, i) } }
        for result in results { XCTAssertEqual(result, expected) }
        XCTAssertEqual(messages.count, ranks * 2 * (ranks - 1) * 11)
        XCTAssertTrue(messages.allSatisfy { $0.bytes <= 16 })
        XCTAssertTrue(messages.allSatisfy { $0.destination == ($0.source + 1) % ranks })
    }

    func testNeighboursCompareLengthsWithOneSmallMessageEachWay() {
        let (_, messages) = runOnFakeRanks(ranks: 4, count: 10, input: Self.integerValue) { buffer, member in
            ringAllreduce(buffer, .sum, over: member)
        }
        let checks = messages.filter { $0.tag == CollectiveTag.lengthCheck }
        XCTAssertEqual(checks.count, 4 * 2)
        XCTAssertTrue(checks.allSatisfy { $0.bytes == 8 })
    }

    func testReduceScatterLeavesRankROwningChunkRAndAllgatherRestoresTheRest() {
        for ranks in 1...6 {
            let count = 4 * ranks + 3
            let expected: [Double] = (0..<count).map { i in (0..<ranks).reduce(0.0) { $0 + Self.integerValue($1, i) } }
            let chunks = Chunking(count: count, parts: ranks)
            let (results, _) = runOnFakeRanks(ranks: ranks, count: count, input: Self.integerValue) { buffer, member in
                let mine = ringReduceScatter(buffer, .sum, over: member)
                XCTAssertEqual(mine, chunks.range(member.rank))
                XCTAssertEqual(Array(buffer[mine]), Array(expected[mine]), "ranks \(ranks) rank \(member.rank)")
                ringAllgather(buffer, over: member)
            }
            for result in results { XCTAssertEqual(result, expected, "ranks \(ranks)") }
        }
    }

    func testSingleRankSendsNothing() {
        let (results, messages) = runRing(ranks: 1, count: 8) { _, i in Double(i) }
        XCTAssertEqual(results[0], (0..<8).map(Double.init))
        XCTAssertTrue(messages.isEmpty)
    }

    func testEmptyBufferSendsNothing() {
        let (_, messages) = runRing(ranks: 3, count: 0) { _, _ in 0 }
        XCTAssertTrue(messages.isEmpty)
    }
}

/// Runs `body` on `ranks` threads standing in for ranks; rank r's buffer starts as
/// `input(r, i)`. Returns every rank's buffer afterwards and all messages sent.
func runOnFakeRanks(ranks: Int, count: Int, input: @escaping @Sendable (Int, Int) -> Double,
                    _ body: @escaping @Sendable (UnsafeMutableBufferPointer<Double>, InProcessCommunicator) -> Void)
    -> (results: [[Double]], messages: [InProcessGroup.Message]) {
    let group = InProcessGroup(size: ranks)
    let results = group.run { member in
        var buffer = (0..<count).map { input(member.rank, $0) }
        buffer.withUnsafeMutableBufferPointer { body($0, member) }
        return buffer
    }
    return (results, group.messages)
}
