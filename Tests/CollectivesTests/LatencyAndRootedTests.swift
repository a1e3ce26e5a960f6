import XCTest
@testable import Collectives
import ChorusTesting

/// Recursive doubling, broadcast and reduce on threads standing in for ranks.
final class RecursiveDoublingTests: XCTestCase {
    @Sendable static func value(_ rank: Int, _ index: Int) -> Double { Double((index * 5 + rank * 11) % 89 - 44) }

    func expectedSum(ranks: Int, count: Int) -> [Double] {
        (0..<count).map { i in (0..<ranks).reduce(0.0) { $0 + Self.value($1, i) } }
    }

    func testSumIsExactForEveryRankCountIncludingNonPowersOfTwo() {
        for ranks in 1...7 {
            for count in [0, 1, ranks + 1, 37] {
                let (results, _) = runOnFakeRanks(ranks: ranks, count: count, input: Self.value) { buffer, member in
                    recursiveDoublingAllreduce(buffer, .sum, over: member)
                }
                for (rank, result) in results.enumerated() {
                    XCTAssertEqual(result, expectedSum(ranks: ranks, count: count), "ranks \(ranks) count \(count) rank \(rank)")
                }
            }
        }
    }

    func testPowerOfTwoTakesLog2RoundsOfWholeMessagesToXorPartners() {
        let ranks = 8, count = 10
        let (_, messages) = runOnFakeRanks(ranks: ranks, count: count, input: Self.value) { buffer, member in
            recursiveDoublingAllreduce(buffer, .sum, over: member)
        }
        XCTAssertEqual(messages.count, ranks * 3)
        for message in messages {
            let distance = message.source ^ message.destination
            XCTAssertTrue([1, 2, 4].contains(distance), "\(message.source) → \(message.destination)")
            XCTAssertEqual(message.bytes, count * 8 + 8, "whole vector plus the 8-byte length header")
        }
    }

    func testSixRanksFoldTwoExtraRanksInAndOut() {
        // p = 6: p' = 4, e = 2. Ranks 0 and 2 send to 1 and 3 and get the result back;
        // the four survivors do 2 doubling rounds: 2·2 + 4·2 = 12 messages.
        let (_, messages) = runOnFakeRanks(ranks: 6, count: 3, input: Self.value) { buffer, member in
            recursiveDoublingAllreduce(buffer, .sum, over: member)
        }
        XCTAssertEqual(messages.count, 12)
        XCTAssertEqual(messages.filter { $0.source == 0 }.map(\.destination), [1])
        XCTAssertEqual(messages.filter { $0.source == 2 }.map(\.destination), [3])
    }

    func testAverageDividesByTheRankCount() {
        let (results, _) = runOnFakeRanks(ranks: 5, count: 4, input: { r, i in Double(r * 10 + i) }) { buffer, member in
            recursiveDoublingAllreduce(buffer, .average, over: member)
        }
        // Σ_r (10r + i) over 5 ranks = 100 + 5i; divided by 5: 20 + i.
        for result in results { XCTAssertEqual(result, [20, 21, 22, 23]) }
    }
}

final class RootedCollectiveTests: XCTestCase {
    func testBroadcastDeliversTheRootsBufferForTreeAndScatterAllgatherSizes() {
        let treeLimit = BroadcastTuning.treeMaximumBytes / 8
        for ranks in 1...6 {
            for root in Set([0, ranks - 1, ranks / 2]) {
                for count in [0, 1, ranks + 1, treeLimit + 7] {
                    let (results, _) = runOnFakeRanks(ranks: ranks, count: count, input: { r, i in Double(r * 1000 + i) }) { buffer, member in
                        broadcast(buffer, root: root, over: member)
                    }
                    let expected = (0..<count).map { Double(root * 1000 + $0) }
                    for result in results { XCTAssertEqual(result, expected, "ranks \(ranks) root \(root) count \(count)") }
                }
            }
        }
    }

    func testSmallBroadcastIsABinomialTreeOfPMinusOneMessages() {
        let (_, messages) = runOnFakeRanks(ranks: 6, count: 5, input: { r, _ in Double(r) }) { buffer, member in
            broadcast(buffer, root: 2, over: member)
        }
        let data = messages.filter { $0.tag == CollectiveTag.tree }
        XCTAssertEqual(data.count, 5, "every non-root receives once")
        XCTAssertEqual(Set(data.map(\.destination)), [0, 1, 3, 4, 5])
        XCTAssertEqual(data.filter { $0.source == 2 }.count, 3, "the root sends ⌈log2 6⌉ = 3 times")
    }

    func testReduceLeavesTheSumOnTheRoot() {
        for ranks in 1...6 {
            for root in Set([0, ranks - 1]) {
                let count = 3 * ranks + 2
                let (results, _) = runOnFakeRanks(ranks: ranks, count: count, input: { r, i in Double(r * 100 + i) }) { buffer, member in
                    reduce(buffer, .sum, root: root, over: member)
                }
                let expected = (0..<count).map { i in (0..<ranks).reduce(0.0) { $0 + Double($1 * 100 + i) } }
                XCTAssertEqual(results[root], expected, "ranks \(ranks) root \(root)")
            }
        }
    }
}
