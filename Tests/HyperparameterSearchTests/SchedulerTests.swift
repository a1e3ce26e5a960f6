@testable import HyperparameterSearch
import XCTest

/// The schedulers on scripted scores, in the style of Ray Tune's scheduler tests:
/// trials report fixed score curves and every decision is asserted.
final class SchedulerTests: XCTestCase {
    func testMilestonesFollowGraceAndReductionFactor() throws {
        XCTAssertEqual(ASHAScheduler.milestones(grace: 1, max: 9, eta: 3), [1, 3, 9])
        XCTAssertEqual(ASHAScheduler.milestones(grace: 1, max: 10, eta: 3), [1, 3, 9, 10])
        XCTAssertEqual(ASHAScheduler.milestones(grace: 2, max: 2, eta: 3), [2])
        XCTAssertThrowsError(try ASHAScheduler(order: [1], graceEpochs: 0, maxEpochs: 3, reductionFactor: 3))
        XCTAssertThrowsError(try ASHAScheduler(order: [1], graceEpochs: 4, maxEpochs: 3, reductionFactor: 3))
        XCTAssertThrowsError(try ASHAScheduler(order: [1], graceEpochs: 1, maxEpochs: 3, reductionFactor: 1))
    }

    /// One group, nine trials, the earlier the better (score 1 - id/10): a trial is
    /// promoted as soon as it is in the top third of its rung, before any new trial;
    /// the others pause (and end stopped).
    func testASHAPromotesTheTopThirdBeforeNewTrials() throws {
        XCTAssertEqual(try ashaLog(scores: { 1 - Double($0) / 10 }), [
            .train(trial: 1, rung: 0), .train(trial: 2, rung: 0), .train(trial: 3, rung: 0),
            .train(trial: 1, rung: 1),  // 3 reported at rung 0: the top ⌊3/3⌋ = 1 is trial 1
            .train(trial: 4, rung: 0), .train(trial: 5, rung: 0), .train(trial: 6, rung: 0),
            .train(trial: 2, rung: 1),  // 6 reported: the top 2 are 1 (promoted) and 2
            .train(trial: 7, rung: 0), .train(trial: 8, rung: 0), .train(trial: 9, rung: 0),
            .train(trial: 3, rung: 1),  // 9 reported: the top 3
            .train(trial: 1, rung: 2),  // rung 1 has 3: its best goes to the last rung
            .finish,
        ])
        // Rising scores: every newcomer is the best of its rung and goes straight up.
        XCTAssertEqual(try ashaLog(scores: { Double($0) / 10 }).prefix(9), [
            .train(trial: 1, rung: 0), .train(trial: 2, rung: 0), .train(trial: 3, rung: 0), .train(trial: 3, rung: 1),
            .train(trial: 4, rung: 0), .train(trial: 4, rung: 1), .train(trial: 5, rung: 0), .train(trial: 5, rung: 1),
            .train(trial: 5, rung: 2),  // rung 1 holds 3, 4, 5: the top third is 5
        ])
    }

    /// The decisions of ASHA (grace 1, max 9, eta 3) over trials 1-9 on one group,
    /// each rung of trial t scoring `scores(t)`.
    func ashaLog(scores: (Int) -> Double) throws -> [SchedulerDecision] {
        let asha = try ASHAScheduler(order: Array(1...9), graceEpochs: 1, maxEpochs: 9, reductionFactor: 3)
        XCTAssertEqual((0..<3).map { asha.epochs(rung: $0) }, [1, 3, 9])
        var log: [SchedulerDecision] = []
        while log.count < 100 {
            let decision = asha.next()
            log.append(decision)
            guard case .train(let trial, let rung) = decision else { break }
            asha.report(trial: trial, rung: rung, score: scores(trial))
        }
        return log
    }

    /// Two trials running at once: with no new trial and nothing promotable yet, a
    /// free group waits; it finishes only when nothing runs.
    func testASHAWaitsWhileTrialsRunAndFinishesWhenNoneDo() throws {
        let asha = try ASHAScheduler(order: [1, 2], graceEpochs: 1, maxEpochs: 2, reductionFactor: 2)
        XCTAssertEqual(asha.next(), .train(trial: 1, rung: 0))
        XCTAssertEqual(asha.next(), .train(trial: 2, rung: 0))
        asha.report(trial: 1, rung: 0, score: 0.2)
        XCTAssertEqual(asha.next(), .wait)  // 1 of 1 reported: the top ⌊1/2⌋ is empty, 2 still runs
        asha.report(trial: 2, rung: 0, score: 0.9)
        XCTAssertEqual(asha.next(), .train(trial: 2, rung: 1))
        XCTAssertEqual(asha.next(), .wait)
        asha.report(trial: 2, rung: 1, score: 0.95)
        XCTAssertEqual(asha.next(), .finish)
    }

    /// The default configuration runs to the last rung whatever its score.
    func testTheDefaultIsPromotedWhateverItsScore() throws {
        let asha = try ASHAScheduler(order: [0, 1, 2], graceEpochs: 1, maxEpochs: 3, reductionFactor: 3, exempt: 0)
        XCTAssertEqual(asha.next(), .train(trial: 0, rung: 0))
        asha.report(trial: 0, rung: 0, score: 0.01)
        XCTAssertEqual(asha.next(), .train(trial: 0, rung: 1))
    }

    /// A failed trial reports no score: it is never promoted and does not count in its rung.
    func testFailedTrialsAreNeitherCountedNorPromoted() throws {
        let asha = try ASHAScheduler(order: [1, 2, 3], graceEpochs: 1, maxEpochs: 3, reductionFactor: 2)
        for trial in 1...3 { XCTAssertEqual(asha.next(), .train(trial: trial, rung: 0)) }
        asha.report(trial: 1, rung: 0, score: nil)
        asha.report(trial: 2, rung: 0, score: 0.5)
        XCTAssertEqual(asha.next(), .wait)  // one score in the rung: ⌊1/2⌋ = 0 promotable
        asha.report(trial: 3, rung: 0, score: 0.4)
        XCTAssertEqual(asha.next(), .train(trial: 2, rung: 1))
    }

    /// Restored rung histories count as reported and promoted, so a resumed search
    /// does not run them again.
    func testRestoredTrialsAreNotRunAgain() throws {
        let asha = try ASHAScheduler(order: [1, 2, 3], graceEpochs: 1, maxEpochs: 3, reductionFactor: 3)
        asha.restore(trial: 1, rungScores: [0.9, 0.95], failed: false)
        asha.restore(trial: 2, rungScores: [0.5], failed: false)
        XCTAssertEqual(asha.next(), .train(trial: 3, rung: 0))
        let fifo = FIFOScheduler(order: [1, 2, 3])
        fifo.restore(trial: 2, rungScores: [0.5], failed: false)
        XCTAssertEqual(fifo.next(), .train(trial: 1, rung: 0))
        XCTAssertEqual(fifo.next(), .train(trial: 3, rung: 0))
        XCTAssertEqual(fifo.next(), .finish)
    }

    /// The coordinator's board on a scripted interleaving of two groups: a group
    /// told to wait is woken by the report that makes a promotion.
    func testBoardParksAGroupUntilAReportMakesWork() throws {
        let trials = (1...2).map { Trial(id: $0, parameters: [Setting("lr", "0.\($0)")]) }
        let asha = try ASHAScheduler(order: [1, 2], graceEpochs: 1, maxEpochs: 2, reductionFactor: 2)
        let board = SearchBoard(trials: trials, scheduler: asha, restored: [], results: nil, groups: 2, log: { _ in })
        func report(_ trial: Int, _ rung: Int, _ score: Double) -> WorkReport {
            WorkReport(trial: trial, rung: rung, foldScores: [score], message: "", seconds: 1, samples: 10)
        }
        func trained(_ replies: [(group: Int, assignment: Assignment)]) -> [String] {
            replies.map { group, assignment in
                if case .train(let work) = assignment { return "g\(group):t\(work.trial.id)r\(work.rung)" }
                return "g\(group):finish"
            }
        }
        XCTAssertEqual(trained(try board.handle(WorkRequest(group: 0, report: nil))), ["g0:t1r0"])
        XCTAssertEqual(trained(try board.handle(WorkRequest(group: 1, report: nil))), ["g1:t2r0"])
        XCTAssertEqual(trained(try board.handle(WorkRequest(group: 0, report: report(1, 0, 0.3)))), [])
        XCTAssertEqual(board.parked, [0])
        // Trial 2's report makes it promotable: the parked group 0 takes it, group 1 waits.
        XCTAssertEqual(trained(try board.handle(WorkRequest(group: 1, report: report(2, 0, 0.8)))), ["g0:t2r1"])
        XCTAssertEqual(board.parked, [1])
        XCTAssertEqual(trained(try board.handle(WorkRequest(group: 0, report: report(2, 1, 0.9)))), ["g1:finish", "g0:finish"])
        XCTAssertTrue(board.isFinished)
        XCTAssertEqual(board.records[2]?.status, .ok)
        XCTAssertEqual(board.records[2]?.rungScores, [[0.8], [0.9]])
        XCTAssertEqual(board.records[1]?.status, .stopped)
        XCTAssertEqual(board.records[2]?.epochs, 2)
    }
}
