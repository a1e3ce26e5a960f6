import ChorusTesting
import Communication
import Datasets
import Foundation
@testable import HyperparameterSearch
import NeuralNet
import TrainingLoop
import XCTest

/// A trainable whose score is a function of the trial and of the fold's data (so a
/// wrong fold or trial shows), which sleeps a scripted time per trial (so groups
/// finish out of order) and counts what it ran.
final class ScriptedTrainable: SearchTrainable, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var runs: [(trial: Int, epochs: Int?, group: Int)] = []
    let failing: Set<Int>

    init(failing: Set<Int> = []) { self.failing = failing }

    func validate(_ trial: Trial) throws {
        if trial.value(of: "lr") == "bad" { throw TrialSettingsError(message: "--lr must be a positive number (got bad)") }
    }

    func train(_ trial: Trial, on data: DatasetSplits, over group: any Communicator, plan: TrialRunPlan) throws
        -> TrainingLoop.Summary {
        if group.rank == 0 {
            lock.lock()
            runs.append((trial.id, plan.epochs, group.size))
            lock.unlock()
        }
        usleep(UInt32(1000 * (trial.id % 3 + 1)))
        if failing.contains(trial.id) { throw TrialSettingsError(message: "loss is nan at step 3") }
        let lr = Double(trial.value(of: "lr") ?? "0") ?? 0
        let labels = data.test.labels.reduce(0) { $0 + Int($1) }
        var summary = TrainingLoop.Summary()
        summary.testAccuracy = (Double(labels % 97) / 97 + lr + Double(plan.epochs ?? 1)) / 10
        summary.samples = data.train.count
        // Every rank of the group must agree, as a real trial's would.
        _ = group.allreduce(Int64(1), op: .sum)
        return summary
    }
}

struct TrialSettingsError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

final class SearchTests: XCTestCase {
    static let data = try! SyntheticImages.make(trainCount: 240, testCount: 30, imageShape: [1, 4, 4], classes: 3, seed: 4)

    static func trials(_ values: [String] = ["0.01", "0.02", "0.03", "0.04", "0.05", "0.06", "0.07"]) -> [Trial] {
        HyperparameterSearch.trials(configurations: values.map { [Setting("lr", $0)] }, defaults: [Setting("lr", "0.05")])
    }

    func search(ranks: Int, perTrial: Int = 1, trials: [Trial] = trials(), options change: (inout SearchOptions) -> Void = { _ in },
                trainable: ScriptedTrainable = ScriptedTrainable()) throws -> SearchOutcome {
        var options = SearchOptions()
        options.ranksPerTrial = perTrial
        options.validation = .crossValidation(folds: 3)
        options.refit = false
        change(&options)
        let settings = options
        let outcomes = try InProcessGroup(size: ranks).run { rank in
            try HyperparameterSearch(trials: trials, options: settings, trainable: trainable, data: Self.data, world: rank).run()
        }
        return outcomes[0]
    }

    func path() -> String { NSTemporaryDirectory() + "chorus-tune-\(UUID().uuidString).csv" }

    /// The results file without the columns that depend on where and when a trial ran.
    func placeless(_ path: String) throws -> [String] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let header = lines[0].split(separator: ",", omittingEmptySubsequences: false)
        let drop = Set(["train_seconds", "group"].compactMap { name in header.firstIndex { $0 == name } })
        return lines.map { line in
            line.split(separator: ",", omittingEmptySubsequences: false).enumerated().filter { !drop.contains($0.offset) }
                .map { String($0.element) }.joined(separator: ",")
        }
    }

    /// Every configuration runs exactly once whatever the number of groups, and the
    /// results are the same (times and groups apart).
    func testEveryTrialRunsOnceAndResultsDoNotDependOnTheGroups() throws {
        var files: [[String]] = []
        for (ranks, perTrial) in [(1, 1), (2, 1), (3, 1), (4, 2)] {
            let file = path()
            defer { try? FileManager.default.removeItem(atPath: file) }
            let trainable = ScriptedTrainable()
            let outcome = try search(ranks: ranks, perTrial: perTrial, options: { $0.results = file }, trainable: trainable)
            XCTAssertEqual(outcome.groups, ranks / perTrial)
            // 7 trials (the default is one of them) x 3 folds, each trial's folds together
            XCTAssertEqual(trainable.runs.map(\.trial).sorted(), (1...7).flatMap { Array(repeating: $0, count: 3) })
            XCTAssertTrue(trainable.runs.allSatisfy { $0.group == perTrial })
            XCTAssertEqual(outcome.records.count, 7)
            XCTAssertTrue(outcome.records.allSatisfy { $0.status == .ok && $0.foldScores.count == 3 })
            XCTAssertEqual(outcome.best?.trial.id, 7)
            XCTAssertEqual(outcome.defaultRecord?.trial.id, 5)
            files.append(try placeless(file))
        }
        for file in files.dropFirst() { XCTAssertEqual(file, files[0]) }
        XCTAssertEqual(files[0].count, 8)
    }

    /// A failing trial is recorded with its message and the search goes on.
    func testAFailedTrialIsRecordedAndTheSearchGoesOn() throws {
        let outcome = try search(ranks: 2, trainable: ScriptedTrainable(failing: [3]))
        let failed = outcome.records.first { $0.trial.id == 3 }!
        XCTAssertEqual(failed.status, .failed)
        XCTAssertEqual(failed.message, "loss is nan at step 3")
        XCTAssertEqual(outcome.records.filter { $0.status == .ok }.count, 6)
        XCTAssertEqual(outcome.records.ranks()[3], 7)
    }

    /// A search resumed from a results file with some rows runs only the others and
    /// ends with the same file as the uninterrupted search.
    func testResumeRunsOnlyTheMissingTrials() throws {
        let whole = path(), partial = path()
        defer { for file in [whole, partial] { try? FileManager.default.removeItem(atPath: file) } }
        _ = try search(ranks: 2, options: { $0.results = whole })
        // The file as a crash after three trials would have left it.
        let lines = try String(contentsOfFile: whole, encoding: .utf8).split(separator: "\n")
        try (lines.prefix(1) + [lines[2], lines[4], lines[6]]).joined(separator: "\n").appending("\n")
            .write(toFile: partial, atomically: true, encoding: .utf8)
        let trainable = ScriptedTrainable()
        _ = try search(ranks: 3, options: { $0.results = partial; $0.resume = true }, trainable: trainable)
        XCTAssertEqual(Set(trainable.runs.map(\.trial)), [1, 3, 5, 7])
        XCTAssertEqual(try placeless(partial), try placeless(whole))
    }

    /// ASHA over two groups: trials stop at lower rungs, the rest reach the last,
    /// promoted trials continue at the next rung's epochs, and the default runs to the end.
    func testASHAStopsSomeTrialsEarly() throws {
        let values = (1...9).map { "0.0\($0)" }
        let trainable = ScriptedTrainable()
        let outcome = try search(ranks: 2, trials: Self.trials(values),
                                 options: { $0.scheduler = .asha(graceEpochs: 1, maxEpochs: 9, reductionFactor: 3)
                                     $0.validation = .holdout(fraction: 0.2)
                                     $0.trialDirectory = NSTemporaryDirectory() + "chorus-asha-\(UUID().uuidString)" },
                                 trainable: trainable)
        XCTAssertEqual(outcome.records.count, 9)  // the default (0.05) is trial 5
        let stopped = outcome.records.filter { $0.status == .stopped }
        XCTAssertGreaterThanOrEqual(stopped.count, 5)
        XCTAssertTrue(outcome.records.filter { $0.status == .ok }.allSatisfy { $0.rung == 2 && $0.epochs == 9 })
        XCTAssertEqual(outcome.defaultRecord?.status, .ok)
        XCTAssertEqual(Set(trainable.runs.map(\.epochs)), [1, 3, 9])
        XCTAssertLessThan(trainable.runs.count, 9 * 3)
        XCTAssertEqual(outcome.best?.rung, 2)
    }

    func testBadUseIsAnErrorOnEveryRank() {
        XCTAssertThrowsError(try search(ranks: 3, perTrial: 2)) { XCTAssertTrue("\($0)".contains("do not divide")) }
        XCTAssertThrowsError(try search(ranks: 2, trials: Self.trials(["0.1", "bad"]))) {
            XCTAssertEqual("\($0)", "trial 2 (lr=bad): --lr must be a positive number (got bad)")
        }
    }

    /// The test set is never read before the refit: any test set gives the same search.
    func testTheTestSetDoesNotInfluenceTheSearch() throws {
        let a = try search(ranks: 2).records.map(\.rungScores)
        let other = try DatasetSplits(name: Self.data.name, train: Self.data.train,
                                      test: SyntheticImages.make(trainCount: 3, testCount: 7, imageShape: [1, 4, 4], classes: 3, seed: 9).test)
        var options = SearchOptions()
        options.validation = .crossValidation(folds: 3)
        options.refit = false
        let settings = options
        let b = try InProcessGroup(size: 2).run { rank in
            try HyperparameterSearch(trials: Self.trials(), options: settings, trainable: ScriptedTrainable(), data: other, world: rank).run()
        }[0].records.map(\.rungScores)
        XCTAssertEqual(a, b)
    }
}
