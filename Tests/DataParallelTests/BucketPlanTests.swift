import XCTest
@testable import NeuralNet
@testable import DataParallel

final class BucketPlanTests: XCTestCase {
    /// Slots of a model with layers of the given parameter counts (weight, bias each).
    func slots(_ layers: [(weight: Int, bias: Int)]) -> [ParameterSlot] {
        var offset = 0
        var slots: [ParameterSlot] = []
        for (index, layer) in layers.enumerated() {
            for (name, count) in [("weight", layer.weight), ("bias", layer.bias)] {
                slots.append(ParameterSlot(name: "l\(index).\(name)", shape: [count], offset: offset, layerIndex: index))
                offset += count
            }
        }
        return slots
    }

    func testBucketsCoverTheBufferInReverseOrderAsContiguousRanges() {
        let layout = slots([(1000, 10), (5000, 50), (200, 2), (3000, 30)])
        let plan = BucketPlan(slots: layout, capBytes: 16_000, firstCapBytes: 4_000)
        let total = layout.last!.offset + layout.last!.count
        XCTAssertEqual(plan.buckets.first?.range.upperBound, total, "bucket 0 holds the last layer")
        XCTAssertEqual(plan.buckets.last?.range.lowerBound, 0)
        for (a, b) in zip(plan.buckets, plan.buckets.dropFirst()) {
            XCTAssertEqual(b.range.upperBound, a.range.lowerBound, "consecutive buckets are adjacent ranges")
            XCTAssertGreaterThanOrEqual(a.readyAfterLayer, b.readyAfterLayer, "ready in plan order")
        }
    }

    func testCapsAreRespectedExceptByASingleTensorLargerThanTheCap() {
        let layout = slots([(1000, 10), (5000, 50), (200, 2), (3000, 30), (100, 1)])
        let plan = BucketPlan(slots: layout, capBytes: 8_000, firstCapBytes: 1_000)
        XCTAssertLessThanOrEqual(plan.buckets[0].range.count * 4, 1_000, "the first bucket has its own, smaller cap")
        for bucket in plan.buckets.dropFirst() where bucket.parameters.count > 1 {
            XCTAssertLessThanOrEqual(bucket.range.count * 4, 8_000)
        }
        // l1.weight (20,000 bytes) exceeds the cap: alone in its bucket.
        XCTAssertTrue(plan.buckets.contains { $0.parameters == ["l1.weight"] })
    }

    func testABucketIsReadyAfterItsEarliestLayer() {
        // A 44-byte cap holds exactly one layer's weight (40 bytes) and bias (4).
        let plan = BucketPlan(slots: slots([(10, 1), (10, 1), (10, 1)]), capBytes: 44, firstCapBytes: 44)
        // Reverse order: l2.bias, l2.weight | l1.bias, l1.weight | l0.bias, l0.weight
        XCTAssertEqual(plan.buckets.map(\.readyAfterLayer), [2, 1, 0])
        XCTAssertEqual(plan.bucketsReady(afterLayer: 1), [1])
        // Room for one more tensor but not one more layer: layers stay whole, so no
        // bucket waits for part of a layer's backward.
        XCTAssertEqual(BucketPlan(slots: slots([(10, 1), (10, 1), (10, 1)]), capBytes: 48, firstCapBytes: 48)
            .buckets.map(\.readyAfterLayer), [2, 1, 0])
        // Room for two layers: they share a bucket, ready after the earlier one.
        XCTAssertEqual(BucketPlan(slots: slots([(10, 1), (10, 1), (10, 1)]), capBytes: 88, firstCapBytes: 88)
            .buckets.map(\.readyAfterLayer), [1, 0])
    }

    func testTheSameLayoutGivesTheSamePlanAndFingerprint() {
        let layout = slots([(784 * 512, 512), (512 * 512, 512), (5120, 10)])
        let a = BucketPlan(slots: layout, capBytes: 1 << 20), b = BucketPlan(slots: layout, capBytes: 1 << 20)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.fingerprint, b.fingerprint)
        XCTAssertNotEqual(a.fingerprint, BucketPlan(slots: layout, capBytes: 2 << 20).fingerprint)
    }
}
