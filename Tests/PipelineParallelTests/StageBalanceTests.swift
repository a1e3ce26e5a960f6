import NeuralNet
import PipelineSchedules
import XCTest

/// Stages are balanced on what a training step costs, not on the forward alone.
final class StageBalanceTests: XCTestCase {
    func testAnMLPSplitsWhereItsTrainingWorkHalves() throws {
        // Per item, fc1 + fc2 cost 2·784·1024 + 3·1024² multiply-adds to train (fc1
        // computes no input gradient), fc3 + fc4 3·1024·1536 + 3·1536·10: equal within 0.3%.
        let model = try ModelDescription(kind: .mlp, hidden: [1024, 1024, 1536]).build(seed: 1)
        let costs = model.trainingMACs()
        let ranges = try StagePartition(balancing: costs, stages: 2).ranges
        XCTAssertEqual(ranges, [0..<5, 5..<8])
        let work = ranges.map { $0.reduce(0) { $0 + costs[$1] } }
        XCTAssertEqual(work[0] / work[1], 1, accuracy: 0.003)
    }

    func testTheBackwardMovesTheSplit() throws {
        // Forwards of fc1..fc4: 0.80, 0.52, 0.26, 0.005 M. Balanced on them, three
        // stages are [flatten | fc1 | fc2..fc4] (the most a stage does: fc1's 0.80 M),
        // which trains at the pace of fc2..fc4's 2.37 M. Training work (1.61, 1.57,
        // 0.79 M) gives each Linear up to fc2 a stage of its own: 1.61 M at most.
        let model = try ModelDescription(kind: .mlp, hidden: [1024, 512, 512]).build(seed: 1)
        XCTAssertEqual(try StagePartition(balancing: model.trainingMACs(), stages: 3).ranges, [0..<2, 2..<4, 4..<8])
    }
}
