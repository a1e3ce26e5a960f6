import XCTest
@testable import Collectives

final class AllreducePolicyTests: XCTestCase {
    func choose(_ bytes: Int, ranks: Int = 8, nodes: Int, largestNode: Int, sharedMemory: Bool = true) -> AllreduceAlgorithm {
        AllreducePolicy.choose(bytes: bytes, ranks: ranks, nodes: nodes, largestNode: largestNode, sharedMemory: sharedMemory)
    }

    func testOneNodeUsesSharedMemoryAtEverySize() {
        for bytes in [0, 4, 4 << 10, 1 << 20, 64 << 20] {
            XCTAssertEqual(choose(bytes, nodes: 1, largestNode: 8), .sharedMemory, "\(bytes) bytes")
        }
    }

    func testTwoRanksOfOneNodeUseTheTransportFromTwoToSixteenMiB() {
        XCTAssertEqual(choose((2 << 20) - 4, ranks: 2, nodes: 1, largestNode: 2), .sharedMemory)
        XCTAssertEqual(choose(2 << 20, ranks: 2, nodes: 1, largestNode: 2), .mpi)
        XCTAssertEqual(choose(16 << 20, ranks: 2, nodes: 1, largestNode: 2), .mpi)
        XCTAssertEqual(choose((16 << 20) + 4, ranks: 2, nodes: 1, largestNode: 2), .sharedMemory)
        XCTAssertEqual(choose(4 << 20, ranks: 3, nodes: 1, largestNode: 3), .sharedMemory, "3 ranks: the window")
        XCTAssertEqual(AllreducePolicy.choose(bytes: 4 << 20, ranks: 2, nodes: 1, largestNode: 2, sharedMemory: true,
                                              transportReduces: false), .sharedMemory, "16-bit floats: MPI cannot add them")
    }

    func testSeveralNodesWithSeveralRanksUseHierarchical() {
        XCTAssertEqual(choose(4, nodes: 4, largestNode: 2), .hierarchical)
        XCTAssertEqual(choose(64 << 20, nodes: 3, largestNode: 2), .hierarchical)
    }

    func testOneRankPerNodeIsRecursiveDoublingBelowTheThresholdAndRingFromIt() {
        let threshold = AllreducePolicy.smallMessageBytes
        XCTAssertEqual(choose(threshold - 4, nodes: 8, largestNode: 1), .recursiveDoubling)
        XCTAssertEqual(choose(threshold, nodes: 8, largestNode: 1), .ring)
    }

    func testWithoutSharedMemoryOneNodeFallsThroughToMessages() {
        XCTAssertEqual(choose(4, nodes: 1, largestNode: 8, sharedMemory: false), .recursiveDoubling)
        XCTAssertEqual(choose(16 << 20, nodes: 1, largestNode: 8, sharedMemory: false), .ring)
    }

    func testEveryRuleNamesItsCondition() {
        XCTAssertEqual(AllreducePolicy.rules.last?.algorithm, .ring, "the last rule is the catch-all")
        XCTAssertTrue(AllreducePolicy.rules.allSatisfy { !$0.condition.isEmpty })
    }
}
