import NeuralNet
@testable import ParameterServer
import XCTest

final class PartitionTests: XCTestCase {
    func slots(_ counts: [Int]) -> [ParameterSlot] {
        var offset = 0
        return counts.enumerated().map { i, count in
            defer { offset += count }
            return ParameterSlot(name: "t\(i)", shape: [count], offset: offset, layerIndex: i)
        }
    }

    func testRangesTileTheBufferAndBalanceBytes() throws {
        for counts in [[100], [150, 10, 600, 20, 3000, 40, 500], [1, 1, 1, 1, 1, 1], [7, 9_000, 13], [4_000, 4_000, 4_000]] {
            for servers in 1...min(5, counts.reduce(0, +)) {
                let partition = try ServerPartition(slots: slots(counts), servers: servers)
                let total = counts.reduce(0, +)
                XCTAssertEqual(partition.ranges.first?.lowerBound, 0)
                XCTAssertEqual(partition.ranges.last?.upperBound, total)
                for (a, b) in zip(partition.ranges, partition.ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                let share = Double(total) / Double(servers)
                for range in partition.ranges {
                    XCTAssertFalse(range.isEmpty, "\(counts) over \(servers)")
                    // A snapped cut moves a boundary by at most a tenth of a share; the
                    // rounding of an even cut by at most one value.
                    XCTAssertLessThanOrEqual(abs(Double(range.count) - share), share / 5 + 2, "\(counts) over \(servers)")
                }
            }
        }
    }

    func testCutsSnapToTensorBoundariesWhenClose() throws {
        // Even cut at 500; the boundary at 480 is within a tenth of the share (50).
        let partition = try ServerPartition(slots: slots([480, 520]), servers: 2)
        XCTAssertEqual(partition.ranges, [0..<480, 480..<1000])
        XCTAssertEqual(partition.pieces(of: 1, slots: slots([480, 520])).map(\.name), ["t1"])
    }

    func testACutInsideATensorNamesThePieces() throws {
        let model = slots([10, 1000])
        let partition = try ServerPartition(slots: model, servers: 2)
        XCTAssertEqual(partition.ranges, [0..<505, 505..<1010])
        let first = partition.pieces(of: 0, slots: model), second = partition.pieces(of: 1, slots: model)
        XCTAssertEqual(first.map(\.name), ["t0", "t1[0..<495]"])
        XCTAssertEqual(second.map(\.name), ["t1[495..<1000]"])
        XCTAssertEqual(second.map(\.offset), [0])
        XCTAssertEqual(first.map(\.offset), [0, 10])
        // Pieces lay out a server's own buffer without gaps.
        _ = FlatParameters(slots: first)
        _ = FlatParameters(slots: second)
    }

    func testMoreServersThanParametersIsAnError() {
        XCTAssertThrowsError(try ServerPartition(slots: slots([2, 1]), servers: 4)) { error in
            XCTAssertEqual("\(error)", "the model has 3 parameters, fewer than the 4 servers that would share them")
        }
    }

    func testReadRules() {
        XCTAssertTrue(ConsistencyModel.bsp.admitsRead(at: 3, slowest: 3))
        XCTAssertFalse(ConsistencyModel.bsp.admitsRead(at: 4, slowest: 3))
        XCTAssertTrue(ConsistencyModel.ssp(staleness: 2).admitsRead(at: 5, slowest: 3))
        XCTAssertFalse(ConsistencyModel.ssp(staleness: 2).admitsRead(at: 6, slowest: 3))
        XCTAssertTrue(ConsistencyModel.asp.admitsRead(at: 1_000, slowest: 0))
        var histogram = StalenessHistogram()
        for s in [0, 2, 2, 0, 1] { histogram.record(s) }
        XCTAssertEqual(histogram.counts, [2, 1, 2])
        XCTAssertEqual(histogram.maximum, 2)
    }

    func testTransientStragglersAreAFunctionOfTheSeed() {
        let stragglers = Stragglers(persistent: .init(rank: 2, factor: 3), transient: .init(probability: 0.25, factor: 4))
        let draws = (0..<4000).map { stragglers.factor(rank: 1, iteration: $0, seed: 5) }
        XCTAssertEqual(draws, (0..<4000).map { stragglers.factor(rank: 1, iteration: $0, seed: 5) })
        XCTAssertNotEqual(draws, (0..<4000).map { stragglers.factor(rank: 3, iteration: $0, seed: 5) })
        let slowed = Double(draws.filter { $0 == 4 }.count) / 4000
        XCTAssertEqual(slowed, 0.25, accuracy: 0.03)
        XCTAssertEqual(Set(draws), [1, 4])
        // The persistent straggler's factor multiplies the transient one.
        XCTAssertEqual(Set((0..<200).map { stragglers.factor(rank: 2, iteration: $0, seed: 5) }), [3, 12])
    }
}
