import NeuralNet
@testable import Federated
import XCTest

/// The partitions: every sample held by one client at most, seeded, and each scheme's
/// shape asserted on its label histograms.
final class PartitionTests: XCTestCase {
    /// 10 classes of 600 samples, interleaved (0, 1, ..., 9, 0, 1, ...).
    static let labels = (0..<6_000).map { UInt8($0 % 10) }

    func partition(_ scheme: PartitionScheme, clients: Int = 100, seed: UInt64 = 7) throws -> ClientPartition {
        try ClientPartition(labels: Self.labels, classes: 10, clients: clients, scheme: scheme, seed: seed)
    }

    func assertDisjoint(_ partition: ClientPartition, complete: Bool, _ label: String) {
        let all = partition.clients.flatMap { $0 }
        XCTAssertEqual(Set(all).count, all.count, "\(label): a sample held twice")
        if complete { XCTAssertEqual(all.count, Self.labels.count, "\(label): samples left out") }
        XCTAssertTrue(all.allSatisfy { (0..<Self.labels.count).contains($0) }, label)
        XCTAssertTrue(partition.clients.allSatisfy { !$0.isEmpty }, "\(label): an empty client")
    }

    func testEverySchemeHoldsEachSampleOnceAndIsAFunctionOfTheSeed() throws {
        for scheme in [PartitionScheme.iid, .shards(perClient: 2), .dirichlet(alpha: 0.5), .labels(perClient: 3)] {
            let a = try partition(scheme), b = try partition(scheme), c = try partition(scheme, seed: 8)
            assertDisjoint(a, complete: true, "\(scheme)")
            XCTAssertEqual(a, b, "\(scheme): not repeatable")
            XCTAssertNotEqual(a, c, "\(scheme): the seed does not matter")
        }
    }

    func testIIDSharesAreEqualAndMixed() throws {
        let p = try partition(.iid)
        XCTAssertEqual(Set(p.sizes), [60])
        let histogram = p.histogram(labels: Self.labels, classes: 10)
        // 60 samples drawn from 10 balanced classes: nearly every client sees most labels.
        XCTAssertGreaterThan(histogram.map { $0.filter { $0 > 0 }.count }.reduce(0, +), 100 * 8)
    }

    func testShardsGiveEachClientExactlySShardsOfOneLabelEach() throws {
        for s in [1, 2, 3] {
            let p = try partition(.shards(perClient: s), clients: 50)
            // 6,000 samples in 50·s shards of 120/s: each shard one label (600 per label).
            XCTAssertEqual(Set(p.sizes), [120], "shards:\(s)")
            for counts in p.histogram(labels: Self.labels, classes: 10) {
                let held = counts.filter { $0 > 0 }
                XCTAssertLessThanOrEqual(held.count, s, "shards:\(s)")
                XCTAssertTrue(held.allSatisfy { $0 % (120 / s) == 0 }, "shards:\(s): \(counts) is not whole shards")
            }
        }
        // With two shards per client most clients hold two labels (a few draw two of one label).
        let held = try partition(.shards(perClient: 2)).histogram(labels: Self.labels, classes: 10).map { $0.filter { $0 > 0 }.count }
        XCTAssertGreaterThan(held.filter { $0 == 2 }.count, 70)
    }

    /// The mean share of a client's most common label.
    func dominance(_ p: ClientPartition) -> Double {
        let histogram = p.histogram(labels: Self.labels, classes: 10)
        return histogram.map { Double($0.max()!) / Double($0.reduce(0, +)) }.reduce(0, +) / Double(histogram.count)
    }

    func testDirichletGoesFromIIDToConcentratedAsAlphaFalls() throws {
        let wide = try partition(.dirichlet(alpha: 1_000), clients: 20)
        let narrow = try partition(.dirichlet(alpha: 0.05), clients: 20)
        // 300 samples per client from 10 balanced classes: the top label near 10%.
        XCTAssertLessThan(dominance(wide), 0.2)
        XCTAssertGreaterThan(dominance(narrow), 0.6)
        for counts in wide.histogram(labels: Self.labels, classes: 10) {
            for c in counts { XCTAssertEqual(Double(c) / Double(counts.reduce(0, +)), 0.1, accuracy: 0.06) }
        }
        XCTAssertTrue(narrow.sizes.allSatisfy { $0 >= 10 }, "the minimum client size: \(narrow.sizes)")
    }

    func testLabelsGiveEachClientExactlyLLabelsSplitEvenly() throws {
        for l in [1, 2, 5] {
            let p = try partition(.labels(perClient: l), clients: 30)
            assertDisjoint(p, complete: true, "labels:\(l)")
            for counts in p.histogram(labels: Self.labels, classes: 10) {
                XCTAssertEqual(counts.filter { $0 > 0 }.count, l, "labels:\(l): \(counts)")
            }
        }
        // Fewer clients than labels: the labels no client holds are left out.
        let few = try partition(.labels(perClient: 2), clients: 3)
        assertDisjoint(few, complete: false, "labels:2 over 3 clients")
    }

    func testImpossiblePartitionsAreErrors() {
        XCTAssertThrowsError(try partition(.iid, clients: 6_001)) {
            XCTAssertEqual("\($0)", "6001 clients need at least 6001 training samples; the set has 6000")
        }
        XCTAssertThrowsError(try partition(.shards(perClient: 100), clients: 100)) {
            XCTAssertTrue("\($0)".contains("cuts 10000 shards from 6000 samples"), "\($0)")
        }
        XCTAssertThrowsError(try partition(.labels(perClient: 11), clients: 10)) {
            XCTAssertTrue("\($0)".contains("between 1 and the 10 classes"), "\($0)")
        }
        XCTAssertThrowsError(try partition(.dirichlet(alpha: 0), clients: 10))
    }

    func testTheDescriptionIsAHistogramPerClient() throws {
        let p = try partition(.shards(perClient: 2), clients: 4)
        let text = PartitionDescription(partition: p, labels: Self.labels, classes: 10, scheme: .shards(perClient: 2)).text
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 2 + 4)
        XCTAssertTrue(lines[0].hasPrefix("# shards:2: 4 clients, 6000 of 6000 samples assigned, 1500-1500 per client"), "\(lines[0])")
        XCTAssertEqual(lines[1], "client,samples,labels,label_0,label_1,label_2,label_3,label_4,label_5,label_6,label_7,label_8,label_9")
        for (k, line) in lines.dropFirst(2).enumerated() {
            let fields = line.split(separator: ",").map { Int($0)! }
            XCTAssertEqual(fields[0], k)
            XCTAssertEqual(fields[1], fields[3...].reduce(0, +))
        }
    }
}
