import XCTest
@testable import PipelineSchedules

final class ScheduleTests: XCTestCase {
    func testEveryScheduleValidatesForUpToEightStagesAndSixteenMicrobatches() throws {
        for kind in ScheduleKind.allCases {
            for stages in 1...8 {
                for microbatches in 1...16 {
                    let schedule = PipelineSchedule(kind, stages: stages, microbatches: microbatches)
                    XCTAssertNoThrow(try schedule.validate(), "\(kind) S=\(stages) M=\(microbatches)")
                }
            }
        }
    }

    func testOneFOneBHoldsAtMostSMicrobatchesOnStageZeroWhileGPipeHoldsM() {
        for stages in 1...8 {
            for microbatches in 1...16 {
                let gpipe = PipelineSchedule(.gpipe, stages: stages, microbatches: microbatches)
                let oneF = PipelineSchedule(.oneFOneB, stages: stages, microbatches: microbatches)
                XCTAssertEqual(gpipe.peakStoredMicrobatches(stage: 0), microbatches)
                XCTAssertEqual(oneF.peakStoredMicrobatches(stage: 0), min(stages, microbatches))
                XCTAssertEqual(oneF.peakStoredMicrobatches(stage: stages - 1), 1, "the last stage backwards at once")
            }
        }
    }

    func testSimulatedBubbleEqualsTheFormula() throws {
        for kind in ScheduleKind.allCases {
            for (stages, microbatches) in [(3, 1), (3, 4), (4, 8), (2, 16), (5, 3)] {
                let schedule = PipelineSchedule(kind, stages: stages, microbatches: microbatches)
                let slots = try schedule.simulate()
                let end = slots.flatMap { $0 }.map { $0.start + $0.duration }.max()!
                let busy = slots.flatMap { $0 }.reduce(0) { $0 + $1.duration }
                let bubble = 1 - Double(busy) / Double(end * stages)
                XCTAssertEqual(bubble, schedule.theoreticalBubble, accuracy: 1e-12, "\(kind) S=\(stages) M=\(microbatches)")
            }
        }
    }

    func testTheValidatorCatchesAMissingSendAndADeadlock() {
        let good = PipelineSchedule(.gpipe, stages: 2, microbatches: 2)
        var programs = good.actions
        programs[0].removeAll { $0 == .sendActivation(1) }
        XCTAssertThrowsError(try PipelineSchedule(copying: good, actions: programs).validate())
        // Stage 1 waits for a gradient it must itself produce first: a cycle.
        var cyclic = good.actions
        cyclic[0] = [.forward(0), .receiveGradient(0), .sendActivation(0), .backward(0), .forward(1), .sendActivation(1),
                     .receiveGradient(1), .backward(1)]
        XCTAssertThrowsError(try PipelineSchedule(copying: good, actions: cyclic).validate()) { error in
            XCTAssertTrue("\(error)".contains("deadlock"), "\(error)")
        }
    }

    func testGridOfGPipe() {
        let grid = PipelineSchedule(.gpipe, stages: 2, microbatches: 2).grid()
        XCTAssertTrue(grid.contains("stage 0 | F0 F1  .  . B0 B1"), grid)
        XCTAssertTrue(grid.contains("stage 1 |  . F0 F1 B0 B1  ."), grid)
    }

    /// With every stage's forward and backward taking the same time, the simulated
    /// idle fraction is the formula's.
    func testEqualStagesGiveTheFormula() throws {
        for kind in ScheduleKind.allCases {
            for stages in 1...4 {
                for microbatches in 1...8 {
                    let schedule = PipelineSchedule(kind, stages: stages, microbatches: microbatches)
                    let ones = [Double](repeating: 1, count: stages)
                    XCTAssertEqual(try schedule.bubble(forward: ones, backward: ones), schedule.theoreticalBubble, accuracy: 1e-12,
                                   "\(kind) S \(stages) M \(microbatches)")
                }
            }
        }
    }

    /// Unequal stages, worked by hand: GPipe, S = 2, M = 2, stage 1 twice as slow.
    /// Stage 0 runs F0 [0,1] F1 [1,2]; stage 1 F0 [1,3] F1 [3,5] B0 [5,7] B1 [7,9];
    /// stage 0 then B0 [7,8] B1 [9,10]. Work 12 of 2 x 10: idle 0.4, where the
    /// formula says 1/3.
    func testUnequalStagesWaitOnTheSlowest() throws {
        let schedule = PipelineSchedule(.gpipe, stages: 2, microbatches: 2)
        XCTAssertEqual(try schedule.makespan(forward: [1, 2], backward: [1, 2]), 10)
        XCTAssertEqual(try schedule.bubble(forward: [1, 2], backward: [1, 2]), 0.4, accuracy: 1e-12)
        XCTAssertEqual(schedule.theoreticalBubble, 1.0 / 3, accuracy: 1e-12)
    }
}

final class StagePartitionTests: XCTestCase {
    func testBalancesTheMostExpensiveStage() throws {
        let partition = try StagePartition(balancing: [4, 1, 1, 1, 1, 4], stages: 3)
        XCTAssertEqual(partition.ranges, [0..<1, 1..<5, 5..<6])
        XCTAssertEqual(try StagePartition(balancing: [1, 1, 1, 1], stages: 4).ranges, [0..<1, 1..<2, 2..<3, 3..<4])
        XCTAssertEqual(try StagePartition(balancing: [5, 5, 5], stages: 1).ranges, [0..<3])
    }

    func testMoreStagesThanLayersIsAnError() {
        XCTAssertThrowsError(try StagePartition(balancing: [1, 1], stages: 3)) { error in
            XCTAssertTrue("\(error)".contains("need at least 3 layers"), "\(error)")
        }
    }

    func testExplicitSplitsMustBeIncreasingAndInRange() throws {
        XCTAssertEqual(try StagePartition(starts: [2, 5], layerCount: 7).ranges, [0..<2, 2..<5, 5..<7])
        XCTAssertThrowsError(try StagePartition(starts: [5, 2], layerCount: 7))
        XCTAssertThrowsError(try StagePartition(starts: [0, 3], layerCount: 7))
        XCTAssertThrowsError(try StagePartition(starts: [3, 7], layerCount: 7))
    }
}
