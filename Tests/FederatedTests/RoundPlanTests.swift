@testable import Federated
import XCTest

final class RoundPlanTests: XCTestCase {
    func testAskedClientsAreDistinctSeededAndChangeByRound() {
        let a = RoundPlan(round: 3, clients: 100, perRound: 10, dropout: 0, minimumReports: 0, seed: 1)
        XCTAssertEqual(a, RoundPlan(round: 3, clients: 100, perRound: 10, dropout: 0, minimumReports: 0, seed: 1))
        XCTAssertEqual(Set(a.asked).count, 10)
        XCTAssertEqual(a.reporting, a.asked.sorted())
        XCTAssertNotEqual(a.asked, RoundPlan(round: 4, clients: 100, perRound: 10, dropout: 0, minimumReports: 0, seed: 1).asked)
        XCTAssertNotEqual(a.asked, RoundPlan(round: 3, clients: 100, perRound: 10, dropout: 0, minimumReports: 0, seed: 2).asked)
        // Over many rounds every client is asked about as often.
        var asked = [Int](repeating: 0, count: 100)
        for round in 0..<2_000 {
            for c in RoundPlan(round: round, clients: 100, perRound: 10, dropout: 0, minimumReports: 0, seed: 1).asked { asked[c] += 1 }
        }
        XCTAssertTrue(asked.allSatisfy { (140...260).contains($0) }, "\(asked.min()!)-\(asked.max()!)")
    }

    func testDropoutIsPerClientAndRoundAtTheRate() {
        var dropped = 0, asked = 0
        for round in 0..<500 {
            let plan = RoundPlan(round: round, clients: 50, perRound: 10, dropout: 0.3, minimumReports: 0, seed: 9)
            XCTAssertEqual(plan.asked.count, 10)
            XCTAssertTrue(Set(plan.reporting).isSubset(of: plan.asked))
            dropped += plan.dropped
            asked += plan.asked.count
            for client in plan.asked {
                XCTAssertEqual(plan.reporting.contains(client), !RoundPlan.drops(client: client, round: round, probability: 0.3, seed: 9))
            }
        }
        XCTAssertEqual(Double(dropped) / Double(asked), 0.3, accuracy: 0.03)
    }

    func testAMinimumOfReportsAsksMoreClients() {
        var waited = 0
        for round in 0..<200 {
            let plan = RoundPlan(round: round, clients: 40, perRound: 4, dropout: 0.5, minimumReports: 4, seed: 3)
            XCTAssertGreaterThanOrEqual(plan.reporting.count, 4)
            XCTAssertGreaterThanOrEqual(plan.asked.count, 4)
            // It stops asking as soon as the minimum is met.
            if plan.asked.count > 4 {
                waited += 1
                XCTAssertEqual(plan.reporting.count, 4)
                XCTAssertFalse(RoundPlan.drops(client: plan.asked.last!, round: round, probability: 0.5, seed: 3))
            }
            // The first four asked are those of the same round without the minimum.
            XCTAssertEqual(Array(plan.asked.prefix(4)),
                           RoundPlan(round: round, clients: 40, perRound: 4, dropout: 0.5, minimumReports: 0, seed: 3).asked)
        }
        XCTAssertGreaterThan(waited, 100)
    }

    func testTheRanksBlocksAreTheReportingClientsInOrder() {
        let plan = RoundPlan(round: 0, clients: 30, perRound: 11, dropout: 0.2, minimumReports: 0, seed: 5)
        for ranks in 1...6 {
            let blocks = (0..<ranks).map { plan.trainedBy(rank: $0, of: ranks) }
            XCTAssertEqual(blocks.flatMap { $0 }, plan.reporting, "\(ranks) ranks")
            XCTAssertLessThanOrEqual(blocks.map(\.count).max()! - blocks.map(\.count).min()!, 1)
        }
    }
}
