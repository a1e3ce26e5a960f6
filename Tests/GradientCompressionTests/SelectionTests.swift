import XCTest
import NeuralNet
@testable import GradientCompression

final class SelectionTests: XCTestCase {
    /// Against sorting by (magnitude descending, index ascending), with ties, zeros and NaN.
    func testLargestMagnitudesMatchesASortWithTiesToTheLowerIndex() {
        var generator = SeededGenerator(seed: 5)
        for n in [1, 2, 3, 10, 101, 1000] {
            for trial in 0..<5 {
                // Few distinct values, so ties are common.
                var values = (0..<n).map { _ in Float(Int(generator.next() % 7) - 3) }
                if trial == 4 { values[Int(generator.next() % UInt64(n))] = .nan }
                for k in Set([0, 1, n / 3, n / 2, n - 1, n]) {
                    let expected = values.indices.sorted { a, b in
                        let x = values[a].isNaN ? Float.infinity : abs(values[a])
                        let y = values[b].isNaN ? Float.infinity : abs(values[b])
                        return x != y ? x > y : a < b
                    }.prefix(k).sorted()
                    let chosen = values.withUnsafeBufferPointer { largestMagnitudes($0, count: k) }
                    XCTAssertEqual(chosen, Array(expected), "n \(n) k \(k) trial \(trial)")
                }
            }
        }
    }

    /// Large buckets go through the sampled estimate: still exact, with ties and NaN,
    /// and when the estimate lands too high (the large entries hide between the
    /// sample's strides) through the full quickselect.
    func testLargeBucketsSelectExactlyThroughTheSampledEstimate() {
        var generator = SeededGenerator(seed: 11)
        let n = 300_007
        func reference(_ values: [Float], _ k: Int) -> [Int] {
            values.indices.sorted { a, b in
                let x = values[a].isNaN ? Float.infinity : abs(values[a])
                let y = values[b].isNaN ? Float.infinity : abs(values[b])
                return x != y ? x > y : a < b
            }.prefix(k).sorted()
        }
        var values = (0..<n).map { _ in Float(Int(generator.next() % 200) - 100) * 0.5 }
        values[12_345] = .nan
        values[54_321] = -.infinity
        for k in [1, 3_000, 30_001] {
            let chosen = values.withUnsafeBufferPointer { largestMagnitudes($0, count: k) }
            XCTAssertEqual(chosen, reference(values, k), "k \(k)")
        }
        // The sample (every 9th entry) sees only 5s, so its estimate is 5, and fewer
        // than k entries reach it: the candidates fall back to every entry.
        var hidden = (0..<n).map { _ in Float(Int(generator.next() % 100)) * 0.01 }
        let stride = n / (1 << 15)
        for i in Swift.stride(from: 0, to: n, by: stride) { hidden[i] = 5 }
        let sampled = (n + stride - 1) / stride
        for k in [sampled + 1, sampled + 5_000] {
            let chosen = hidden.withUnsafeBufferPointer { largestMagnitudes($0, count: k) }
            XCTAssertEqual(chosen, reference(hidden, k), "k \(k)")
        }
    }

    func testOrthogonalizationGivesOrthonormalColumnsAndZeroesDependentOnes() {
        var generator = SeededGenerator(seed: 9)
        let rows = 20, columns = 4
        var matrix = (0..<(rows * columns)).map { _ in generator.nextFloat(bound: 1) }
        // Column 2 a multiple of column 0: dependent once column 0 is projected out.
        for i in 0..<rows { matrix[i * columns + 2] = 3 * matrix[i * columns] }
        matrix.withUnsafeMutableBufferPointer { orthogonalizeColumns($0, rows: rows, columns: columns) }
        func column(_ j: Int) -> [Double] { (0..<rows).map { Double(matrix[$0 * columns + j]) } }
        for j in [0, 1, 3] {
            XCTAssertEqual(norm(column(j)), 1, accuracy: 1e-6)
            for k in [0, 1, 3] where k != j {
                XCTAssertEqual(zip(column(j), column(k)).map(*).reduce(0, +), 0, accuracy: 1e-6)
            }
        }
        XCTAssertLessThan(norm(column(2)), 1e-6, "a dependent column becomes zero, not NaN")
        XCTAssertTrue(matrix.allSatisfy(\.isFinite))
        var zeros = [Float](repeating: 0, count: 6)
        zeros.withUnsafeMutableBufferPointer { orthogonalizeColumns($0, rows: 3, columns: 2) }
        XCTAssertEqual(zeros, [Float](repeating: 0, count: 6))
    }
}
