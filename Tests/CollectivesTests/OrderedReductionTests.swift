import ChorusTesting
import Collectives
import Communication
import XCTest

/// The ordered reduction is the sequential fold of every rank's terms in rank order,
/// bit for bit, at every rank count; a ring's sum is not.
final class OrderedReductionTests: XCTestCase {
    /// Terms spanning many magnitudes, so summation order shows in the last bits.
    static func terms(_ count: Int, length: Int) -> [[Double]] {
        var state: UInt64 = 8
        func next() -> UInt64 {  // SplitMix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        return (0..<count).map { _ in
            (0..<length).map { _ in (Double(next() >> 11) / 9_007_199_254_740_992.0 - 0.5) * Double(1 << Int(next() % 30)) }
        }
    }

    func testTheResultIsTheSequentialFoldAtEveryRankCount() {
        let length = 33, all = Self.terms(13, length: length)
        var sequential = [Double](repeating: 0, count: length)
        for term in all { for i in 0..<length { sequential[i] += term[i] } }
        var unordered = [Double](repeating: 0, count: length)
        for term in all.reversed() { for i in 0..<length { unordered[i] += term[i] } }
        XCTAssertNotEqual(unordered, sequential, "the terms must be order-sensitive for the test to mean anything")
        for ranks in 1...6 {
            let results = InProcessGroup(size: ranks).run { rank -> [Double] in
                let mine = all[Chunking(count: all.count, parts: ranks).range(rank.rank)]
                var buffer = [Double](repeating: 0, count: length)
                buffer.withUnsafeMutableBufferPointer { buffer in
                    orderedReduce(buffer, over: rank) { running in
                        for term in mine { for i in 0..<length { running[i] += term[i] } }
                    }
                }
                return buffer
            }
            for (r, result) in results.enumerated() { XCTAssertEqual(result, sequential, "\(ranks) ranks, rank \(r)") }
        }
    }
}
