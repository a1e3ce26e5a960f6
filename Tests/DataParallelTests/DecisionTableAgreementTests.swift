import ChorusTesting
import Collectives
import Communication
import XCTest
@testable import DataParallel

/// Ranks must run the same calibrated choices: different tables end every rank.
final class DecisionTableAgreementTests: XCTestCase {
    func testRanksWithDifferentDecisionTablesRefuseToStart() throws {
        let ring = AllreduceDecisionTable(rules: [.init(ranks: 2, nodes: 1, largestNode: 2, maxBytes: nil, algorithm: .ring)])
        let mpi = AllreduceDecisionTable(rules: [.init(ranks: 2, nodes: 1, largestNode: 2, maxBytes: nil, algorithm: .mpi)])
        for tables in [[ring, mpi], [ring, nil]] {
            let errors = InProcessGroup(size: 2).run { rank -> String in
                let model = try! DataParallelEngineTests.makeModel()
                var configuration = DataParallelEngineTests.configuration
                configuration.decisionTable = tables[rank.rank]
                do {
                    _ = try DataParallelEngine(parameters: model.parameters, communicator: rank, configuration: configuration)
                    return "no error"
                } catch {
                    return "\(error)"
                }
            }
            for error in errors { XCTAssertTrue(error.contains(DataParallelField.decisionTable), error) }
        }
        // The same table on every rank starts, and its choice is the engine's.
        let chosen = InProcessGroup(size: 2).run { rank -> AllreduceAlgorithm in
            let model = try! DataParallelEngineTests.makeModel()
            var configuration = DataParallelEngineTests.configuration
            configuration.decisionTable = ring
            let engine = try! DataParallelEngine(parameters: model.parameters, communicator: rank, configuration: configuration)
            defer { engine.close() }
            return engine.resolvedAlgorithm
        }
        XCTAssertEqual(chosen, [.ring, .ring])
    }
}
