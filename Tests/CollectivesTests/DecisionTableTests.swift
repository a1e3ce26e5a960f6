import ChorusTesting
import Communication
import XCTest
@testable import Collectives

/// The calibrated decision table: parsed and written back, first matching rule wins,
/// uncovered layouts and sizes fall back to the built-in rules, and `auto` on fake
/// ranks runs what the table says.
final class DecisionTableTests: XCTestCase {
    static let text = """
        # measured somewhere
        ranks,nodes,largest_node,max_bytes,algorithm
        2,1,2,65535,recursive-doubling
        2,1,2,16777215,mpi
        2,1,2,inf,shared-memory
        3,1,3,inf,ring
        """

    func situation(_ bytes: Int, ranks: Int = 2, nodes: Int = 1, largestNode: Int = 2) -> AllreducePolicy.Situation {
        AllreducePolicy.Situation(bytes: bytes, ranks: ranks, nodes: nodes, largestNode: largestNode, sharedMemory: true)
    }

    func testTheFirstRuleCoveringTheLayoutAndSizeWins() throws {
        let table = try AllreduceDecisionTable(text: Self.text)
        XCTAssertEqual(table.rules.count, 4)
        XCTAssertEqual(table.choose(situation(4)), .recursiveDoubling)
        XCTAssertEqual(table.choose(situation(65535)), .recursiveDoubling)
        XCTAssertEqual(table.choose(situation(65536)), .mpi)
        XCTAssertEqual(table.choose(situation(8 << 20)), .mpi)
        XCTAssertEqual(table.choose(situation(16 << 20)), .sharedMemory)
        XCTAssertEqual(table.choose(situation(1 << 30)), .sharedMemory)
        XCTAssertEqual(table.choose(situation(4, ranks: 3, largestNode: 3)), .ring)
        XCTAssertNil(table.choose(situation(4, ranks: 4, largestNode: 4)), "no rule for 4 ranks")
        XCTAssertNil(table.choose(situation(4, ranks: 2, nodes: 2, largestNode: 1)), "no rule for 2 nodes")
    }

    func testUncoveredSituationsAndImpossibleChoicesFallBackToTheRules() throws {
        let table = try AllreduceDecisionTable(text: Self.text)
        XCTAssertEqual(AllreducePolicy.choose(bytes: 1 << 20, ranks: 2, nodes: 1, largestNode: 2, sharedMemory: true, table: table), .mpi)
        XCTAssertEqual(AllreducePolicy.choose(bytes: 1 << 20, ranks: 4, nodes: 1, largestNode: 4, sharedMemory: true, table: table),
                       .sharedMemory, "4 ranks: the built-in rules")
        XCTAssertEqual(AllreducePolicy.choose(bytes: 1 << 20, ranks: 2, nodes: 1, largestNode: 2, sharedMemory: true, table: table,
                                              transportReduces: false), .sharedMemory, "MPI cannot add 16-bit floats")
        XCTAssertEqual(AllreducePolicy.choose(bytes: 32 << 20, ranks: 2, nodes: 1, largestNode: 2, sharedMemory: false, table: table),
                       .ring, "no shared window")
    }

    func testTheTextRoundTripsAndTheDigestIgnoresComments() throws {
        let table = try AllreduceDecisionTable(text: Self.text)
        XCTAssertEqual(try AllreduceDecisionTable(text: Self.text.replacingOccurrences(of: "\n", with: "\r\n")), table,
                       "a file with Windows line ends")
        let again = try AllreduceDecisionTable(text: table.text)
        XCTAssertEqual(again, table)
        XCTAssertEqual(try AllreduceDecisionTable(text: Self.text.replacingOccurrences(of: "# measured somewhere", with: "# elsewhere")).digest,
                       table.digest)
        XCTAssertNotEqual(try AllreduceDecisionTable(text: Self.text.replacingOccurrences(of: "16777215,mpi", with: "16777215,ring")).digest,
                          table.digest)
        XCTAssertEqual(table.digest.count, 16)
    }

    func testBadTablesNameTheLine() {
        for (text, message) in [("2,1,2,64,ring,extra", "line 1 ('2,1,2,64,ring,extra'): a rule has 5 fields"),
                                ("ranks,nodes,largest_node,max_bytes,algorithm\n2,1,2,64,fastest", "line 2 ('2,1,2,64,fastest'): unknown algorithm 'fastest'"),
                                ("2,1,2,64,auto", "unknown algorithm 'auto'"),
                                ("2,3,1,64,ring", "a possible layout"),
                                ("3,2,3,64,ring", "a possible layout"),
                                ("2,1,2,-1,ring", "max_bytes must be a byte count or inf"),
                                ("# only a comment", "the table has no rules")] {
            XCTAssertThrowsError(try AllreduceDecisionTable(text: text)) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }

    func testWinnersBecomeOneRulePerRunOfSizes() {
        let rules = AllreduceDecisionTable.rules(ranks: 2, nodes: 1, largestNode: 2, winners: [
            (1024, .recursiveDoubling), (2048, .recursiveDoubling), (4096, .mpi), (8192, .mpi), (16384, .sharedMemory),
        ])
        XCTAssertEqual(rules.map(\.algorithm), [.recursiveDoubling, .mpi, .sharedMemory])
        // Boundaries at the geometric mean of the neighbours: sqrt(2048 x 4096), sqrt(8192 x 16384).
        XCTAssertEqual(rules.map(\.maxBytes), [2896, 11585, 16384], "the last rule ends at the largest size measured")
        let table = AllreduceDecisionTable(rules: rules)
        XCTAssertEqual(table.choose(situation(2896)), .recursiveDoubling)
        XCTAssertEqual(table.choose(situation(2897)), .mpi)
        XCTAssertEqual(table.choose(situation(16384)), .sharedMemory)
        XCTAssertNil(table.choose(situation(16385)), "beyond what was measured: the built-in rules")
    }

    func testRecalibratingOneLayoutKeepsTheOthers() throws {
        let table = try AllreduceDecisionTable(text: Self.text)
        let new = table.replacing(ranks: 2, nodes: 1, largestNode: 2,
                                  with: [.init(ranks: 2, nodes: 1, largestNode: 2, maxBytes: nil, algorithm: .ring)], comments: [])
        XCTAssertEqual(new.rules.map(\.algorithm), [.ring, .ring])
        XCTAssertEqual(new.rules.map(\.ranks), [3, 2])
    }

    /// `auto` on fake ranks: the table's choice is what runs, and the sums are right.
    func testAutoRunsWhatTheTableSays() throws {
        let table = try AllreduceDecisionTable(text: Self.text)
        let results = InProcessGroup(size: 2).run { rank -> [AllreduceAlgorithm] in
            let reducer = Allreducer(world: rank, decisionTable: table)
            defer { reducer.release() }
            var sums = [Float](repeating: Float(rank.rank + 1), count: 64 << 10)
            sums.withUnsafeMutableBufferPointer { reducer.allreduce($0) }
            XCTAssertTrue(sums.allSatisfy { $0 == 3 })
            return [4, 1 << 20, 32 << 20].map { reducer.resolve(.auto, bytes: $0) }
        }
        for chosen in results { XCTAssertEqual(chosen, [.recursiveDoubling, .mpi, .sharedMemory]) }
        let plain = InProcessGroup(size: 2).run { rank -> AllreduceAlgorithm in
            let reducer = Allreducer(world: rank)
            defer { reducer.release() }
            return reducer.resolve(.auto, bytes: 1 << 20)
        }
        XCTAssertEqual(plain, [.sharedMemory, .sharedMemory], "without a table: the built-in rules")
        // 16-bit floats, which MPI cannot add: the table's mpi gives way to the rules.
        let halves = InProcessGroup(size: 2).run { rank -> [Float16] in
            let reducer = Allreducer(world: rank, decisionTable: table)
            defer { reducer.release() }
            var values = [Float16](repeating: Float16(Float(rank.rank + 1)), count: 1 << 19)
            values.withUnsafeMutableBufferPointer { reducer.allreduce($0) }
            return Array(values.prefix(4))
        }
        for values in halves { XCTAssertEqual(values, [3, 3, 3, 3]) }
    }
}
