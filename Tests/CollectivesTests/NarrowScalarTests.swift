import XCTest
@testable import Collectives
import ChorusTesting
import Communication

final class BFloat16Tests: XCTestCase {
    func testRoundsToNearestEvenAndKeepsSpecialValues() {
        XCTAssertEqual(BFloat16(1).bitPattern, 0x3F80)
        XCTAssertEqual(BFloat16(1).float, 1)
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even neighbour, 1.
        XCTAssertEqual(BFloat16(1 + 0x1p-8).float, 1)
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6.
        XCTAssertEqual(BFloat16(1 + 3 * 0x1p-8).float, 1 + 0x1p-6)
        // Just above halfway rounds up.
        XCTAssertEqual(BFloat16(1 + 0x1p-8 + 0x1p-20).float, 1 + 0x1p-7)
        XCTAssertEqual(BFloat16(-2.5).float, -2.5)
        XCTAssertTrue(BFloat16(Float.nan).float.isNaN)
        XCTAssertEqual(BFloat16(Float.infinity).float, .infinity)
        XCTAssertEqual(BFloat16(-Float.infinity).float, -.infinity)
        // The largest float rounds up past the largest finite bfloat16: infinity.
        XCTAssertEqual(BFloat16(Float.greatestFiniteMagnitude).float, .infinity)
        // Float32's range is kept: 1e-30 stays nonzero, where float16 flushes it.
        XCTAssertEqual(BFloat16(1e-30).float, 1e-30, accuracy: 1e-32)
        XCTAssertEqual(Float16(Float(1e-30)), 0)
    }

    func testEveryBFloat16RoundTripsThroughFloat() {
        for bits in UInt16.min...UInt16.max {
            let value = BFloat16(bitPattern: bits)
            if value.float.isNaN { continue }
            XCTAssertEqual(BFloat16(value.float).bitPattern, bits)
        }
    }
}

final class NarrowAllreduceTests: XCTestCase {
    /// The ring and recursive doubling on float16 and bfloat16 at 1..6 ranks, odd
    /// sizes and empty buffers: integer inputs whose partial sums are exact in the
    /// narrow type must sum exactly, with the narrow type on the wire (half the bytes
    /// of float32).
    func testRingAndRecursiveDoublingSumNarrowTypesExactlyWithHalfTheBytes() {
        for ranks in 1...6 {
            for count in [0, 1, ranks + 1, 257] {
                check(Float16.self, ranks: ranks, count: count, magnitude: 48, widen: Float.init, narrow: Float16.init)
                check(BFloat16.self, ranks: ranks, count: count, magnitude: 8, widen: \.float, narrow: BFloat16.init)
            }
        }
    }

    private func check<T: CollectiveScalar>(_: T.Type, ranks: Int, count: Int, magnitude: Int,
                                            widen: @escaping @Sendable (T) -> Float, narrow: @escaping @Sendable (Float) -> T) {
        @Sendable func input(_ rank: Int, _ i: Int) -> Float { Float((i * 7 + rank * 13) % (2 * magnitude + 1) - magnitude) }
        let expected = (0..<count).map { i in (0..<ranks).reduce(Float(0)) { $0 + input($1, i) } }
        for algorithm in ["ring", "recursive-doubling"] {
            let group = InProcessGroup(size: ranks)
            let results = group.run { member in
                var buffer = (0..<count).map { narrow(input(member.rank, $0)) }
                buffer.withUnsafeMutableBufferPointer {
                    if algorithm == "ring" { ringAllreduce($0, .sum, over: member) } else { recursiveDoublingAllreduce($0, .sum, over: member) }
                }
                return buffer.map(widen)
            }
            for (rank, result) in results.enumerated() {
                XCTAssertEqual(result, expected, "\(T.scalarKind) \(algorithm) ranks \(ranks) count \(count) rank \(rank)")
            }
            if algorithm == "ring" && ranks > 1 && count >= ranks {
                let ringBytes = group.messages.filter { $0.tag == CollectiveTag.ring }.map(\.bytes).reduce(0, +)
                // 2(p-1)/p of the buffer per rank, at 2 bytes per element.
                XCTAssertEqual(ringBytes, ranks * 2 * (ranks - 1) * count * 2 / ranks, accuracy: ranks * 2 * (ranks - 1) * 2,
                               "\(T.scalarKind) ring bytes at \(ranks) ranks")
            }
        }
    }
}

/// The C kernels against Swift's own (IEEE, round to nearest even) conversions: every
/// value once in the vector part of a call and once in its scalar tail, so the F16C
/// and the software paths are both checked.
final class HalfPrecisionKernelTests: XCTestCase {
    func narrowed<T: NarrowFloat>(_ value: Float, _: T.Type) -> (vector: T, tail: T) {
        let input = [Float](repeating: value, count: 9)
        var output = [T](repeating: .one, count: 9)
        input.withUnsafeBufferPointer { x in output.withUnsafeMutableBufferPointer { T.narrow(x, into: $0, scale: 1) } }
        return (output[0], output[8])
    }

    /// Every float16, the midpoints between neighbours (ties), a float ulp either side
    /// of them, the overflow threshold and the subnormal range.
    var probes: [Float] {
        var values: [Float] = []
        for bits in UInt16(0)...UInt16(0x7BFF) {
            let low = Float(Float16(bitPattern: bits)), high = Float(Float16(bitPattern: bits + 1))
            let middle = (low + high) / 2
            values += [low, -low, middle, -middle, middle.nextUp, middle.nextDown]
        }
        values += [65504, 65519, 65520, 65521, 1e6, .infinity, -.infinity, 0x1p-25, Float(0x1p-25).nextUp, 0x1p-26, 1e-30, -0.0]
        return values
    }

    func testFloat16NarrowingMatchesSwiftBitForBitInBothPaths() {
        for value in probes {
            let (vector, tail) = narrowed(value, Float16.self)
            XCTAssertEqual(vector.bitPattern, Float16(value).bitPattern, "F16C path, \(value)")
            XCTAssertEqual(tail.bitPattern, Float16(value).bitPattern, "software path, \(value)")
        }
        XCTAssertTrue(narrowed(.nan, Float16.self).vector.isNaN)
        XCTAssertTrue(narrowed(.nan, Float16.self).tail.isNaN)
    }

    func testBFloat16NarrowingMatchesTheSwiftType() {
        for value in probes + [3.4e38, 1e-40] {
            let (vector, tail) = narrowed(value, BFloat16.self)
            XCTAssertEqual(vector.bitPattern, BFloat16(value).bitPattern, "\(value)")
            XCTAssertEqual(tail.bitPattern, BFloat16(value).bitPattern, "\(value)")
        }
    }

    func testWideningIsExactForEveryBitPattern() {
        let halves = (UInt16.min...UInt16.max).map { Float16(bitPattern: $0) }
        var widened = [Float](repeating: 0, count: halves.count)
        halves.withUnsafeBufferPointer { x in widened.withUnsafeMutableBufferPointer { Float16.widen(x, into: $0) } }
        for (half, float) in zip(halves, widened) where !half.isNaN {
            XCTAssertEqual(float.bitPattern, Float(half).bitPattern, "\(half.bitPattern)")
        }
        let brains = (UInt16.min...UInt16.max).map { BFloat16(bitPattern: $0) }
        brains.withUnsafeBufferPointer { x in widened.withUnsafeMutableBufferPointer { BFloat16.widen(x, into: $0) } }
        for (brain, float) in zip(brains, widened) { XCTAssertEqual(float.bitPattern, brain.float.bitPattern) }
    }

    /// The sum kernel: float32 addition, then one rounding (odd length: both paths).
    func testSumOfTwoHalvesIsTheRoundedFloatSum() {
        // Reproducible values across ±100 with every fraction float16 has there.
        let n = 1001
        let a = (0..<n).map { i in Float16(Float((i &* 7919) % 20_011 - 10_005) / 100.03) }
        let b = (0..<n).map { i in Float16(Float((i &* 104_729) % 19_997 - 9_998) / 99.97) }
        var out = [Float16](repeating: 0, count: n)
        a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in out.withUnsafeMutableBufferPointer {
            Float16.sum(x, y, into: $0, scale: 0.25)
        } } }
        for i in 0..<n { XCTAssertEqual(out[i].bitPattern, Float16((Float(a[i]) + Float(b[i])) * 0.25).bitPattern, "\(i)") }
    }
}

