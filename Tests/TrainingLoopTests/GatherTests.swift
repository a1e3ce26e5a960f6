import ChorusTesting
import Communication
import Coordination
import XCTest

/// Checkpoint state goes to the writer only: every rank's bytes, in rank order, at
/// the root, and nothing elsewhere.
final class GatherTests: XCTestCase {
    func testTheRootReceivesEveryRanksBytesInRankOrderAndTheOthersNothing() {
        for (ranks, root) in [(1, 0), (3, 0), (4, 2)] {
            let results = InProcessGroup(size: ranks).run { member in
                member.gatherBytes([UInt8](repeating: UInt8(member.rank), count: member.rank * 3), root: root)
            }
            for (rank, result) in results.enumerated() {
                if rank == root {
                    XCTAssertEqual(result, (0..<ranks).map { [UInt8](repeating: UInt8($0), count: $0 * 3) }, "\(ranks) ranks")
                } else {
                    XCTAssertNil(result)
                }
            }
        }
    }
}
