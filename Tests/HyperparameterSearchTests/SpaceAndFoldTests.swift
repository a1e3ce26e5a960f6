@testable import HyperparameterSearch
import Datasets
import Foundation
import XCTest

final class SpaceAndFoldTests: XCTestCase {
    func testGridIsTheCartesianProductInOrder() throws {
        let space = SearchSpace(grid: [GridDimension(name: "lr", values: ["0.1", "0.2"]),
                                       GridDimension(name: "momentum", values: ["0", "0.9", "0.99"])])
        let points = try space.configurations(seed: 1)
        XCTAssertEqual(points.count, 6)
        XCTAssertEqual(points[0], [Setting("lr", "0.1"), Setting("momentum", "0")])
        XCTAssertEqual(points[5], [Setting("lr", "0.2"), Setting("momentum", "0.99")])
        XCTAssertEqual(Set(points.map { $0.map(\.value).joined(separator: " ") }).count, 6)
    }

    func testRandomDrawsAreSeededAndInRange() throws {
        let space = SearchSpace(samples: 200, distributions: [
            Distribution(name: "lr", shape: .logUniform(low: 1e-4, high: 1e-1, integer: false)),
            Distribution(name: "batch-size", shape: .uniform(low: 16, high: 64, integer: true)),
            Distribution(name: "optimizer", shape: .choice(["sgd", "adam"])),
        ])
        let a = try space.configurations(seed: 7), b = try space.configurations(seed: 7), c = try space.configurations(seed: 8)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        let rates = a.map { Double($0[0].value)! }, batches = a.map { Int($0[1].value)! }
        XCTAssertTrue(rates.allSatisfy { $0 >= 1e-4 * 0.9999 && $0 <= 0.1 * 1.0001 })
        // log-uniform: about a third of the draws in each decade
        XCTAssertGreaterThan(rates.filter { $0 < 1e-3 }.count, 40)
        XCTAssertTrue(batches.allSatisfy { (16...64).contains($0) })
        XCTAssertEqual(Set(batches).isSuperset(of: [16, 64]), true)
        XCTAssertEqual(Set(a.map { $0[2].value }), ["sgd", "adam"])
        // Every real is written as a Float that reads back exactly.
        XCTAssertTrue(a.allSatisfy { "\(Float($0[0].value)!)" == $0[0].value })
    }

    func testBadSpacesAreErrors() {
        XCTAssertThrowsError(try SearchSpace().configurations(seed: 1)) { XCTAssertEqual($0 as? SearchSpaceError, .empty) }
        XCTAssertThrowsError(try SearchSpace(grid: [GridDimension(name: "lr", values: [])]).configurations(seed: 1))
        XCTAssertThrowsError(try SearchSpace(grid: [GridDimension(name: "lr", values: ["1"]), GridDimension(name: "lr", values: ["2"])])
            .configurations(seed: 1)) { XCTAssertEqual($0 as? SearchSpaceError, .repeatedName("lr")) }
        XCTAssertThrowsError(try SearchSpace(distributions: [Distribution(name: "lr", shape: .choice(["1"]))]).configurations(seed: 1))
        XCTAssertThrowsError(try SearchSpace(samples: 3, distributions: [
            Distribution(name: "lr", shape: .logUniform(low: 0, high: 1, integer: false))]).configurations(seed: 1))
    }

    /// Folds are disjoint, cover the training set, and hold every class in the same
    /// proportion (counts per class differ by at most one between folds).
    func testStratifiedFoldsAreDisjointCoveringAndStratified() throws {
        var generator = SystemRandomNumberGenerator()
        let labels = (0..<1003).map { _ in UInt8.random(in: 0..<7, using: &generator) }
        for k in [2, 3, 5] {
            let splits = try ValidationScheme.crossValidation(folds: k).splits(labels: labels, classes: 7, seed: 3)
            XCTAssertEqual(splits.count, k)
            let validation = splits.flatMap(\.validation)
            XCTAssertEqual(validation.count, labels.count)
            XCTAssertEqual(Set(validation), Set(labels.indices))
            for split in splits {
                XCTAssertTrue(Set(split.train).isDisjoint(with: split.validation))
                XCTAssertEqual(split.train.count + split.validation.count, labels.count)
            }
            let sizes = splits.map(\.validation.count)
            XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1)
            for c in 0..<7 {
                let perFold = splits.map { $0.validation.filter { labels[$0] == c }.count }
                XCTAssertLessThanOrEqual(perFold.max()! - perFold.min()!, 1, "class \(c) with \(k) folds: \(perFold)")
            }
        }
        XCTAssertEqual(try ValidationScheme.crossValidation(folds: 3).splits(labels: labels, classes: 7, seed: 3),
                       try ValidationScheme.crossValidation(folds: 3).splits(labels: labels, classes: 7, seed: 3))
        XCTAssertThrowsError(try ValidationScheme.crossValidation(folds: 1).splits(labels: labels, classes: 7, seed: 3))
        let holdout = try ValidationScheme.holdout(fraction: 0.1).splits(labels: labels, classes: 7, seed: 3)[0]
        XCTAssertEqual(Double(holdout.validation.count), 100.3, accuracy: 7)
        XCTAssertTrue(Set(holdout.train).isDisjoint(with: holdout.validation))
    }

    func testResultsFileRoundTripsAndRefusesAnotherSearch() throws {
        let trials = [Trial(id: 0, parameters: [Setting("hidden", "64,32")], isDefault: true),
                      Trial(id: 1, parameters: [Setting("hidden", "8")])]
        var ok = TrialRecord(trial: trials[0], status: .ok)
        ok.rungScores = [[0.1, 0.2], [0.30000000000000004, 0.7]]
        ok.trainSeconds = 1.5
        var failed = TrialRecord(trial: trials[1], status: .failed)
        failed.message = "loss is \"nan\", at step 3"
        let path = NSTemporaryDirectory() + "chorus-results-\(UUID().uuidString).csv"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = ResultsFile(path: path, names: ["hidden"], folds: 2)
        try file.write([failed, ok])
        let read = try file.read(matching: trials)
        XCTAssertEqual(read, [ok, failed])
        XCTAssertEqual([ok, failed].ranks(), [0: 1, 1: 2])
        let other = [Trial(id: 0, parameters: [Setting("hidden", "64")]), trials[1]]
        XCTAssertThrowsError(try file.read(matching: other)) { XCTAssertTrue("\($0)".contains("another search")) }
    }
}
