import XCTest
@testable import NeuralNet

/// The vectorised 2x2 pooling against the obvious loop, on widths that use the vector
/// path with and without an overlapping tail, and on data full of ties.
final class MaxPoolTests: XCTestCase {
    func naive(_ x: Tensor) -> (values: [Float], winners: [Int32]) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var values: [Float] = [], winners: [Int32] = []
        for plane in 0..<(n * c) {
            for oy in 0..<(h / 2) {
                for ox in 0..<(w / 2) {
                    var best = plane * h * w + 2 * oy * w + 2 * ox
                    for at in [best + 1, best + w, best + w + 1] where x.storage[at] > x.storage[best] { best = at }
                    values.append(x.storage[best])
                    winners.append(Int32(best))
                }
            }
        }
        return (values, winners)
    }

    func testMatchesTheObviousLoopIncludingTiesAndOddWidths() throws {
        var generator = SeededGenerator(seed: 3, stream: 1)
        for shape in [[2, 3, 28, 28], [1, 2, 10, 10], [1, 2, 9, 19], [1, 1, 4, 32], [2, 1, 6, 34]] {
            // Values from a small set, so many windows hold equal maxima.
            let count = shape.reduce(1, *)
            let x = Tensor(shape: shape, storage: (0..<count).map { _ in Float(Int(generator.nextFloat(bound: 2.5))) })
            let pool = MaxPool2d("pool", kernel: 2)
            let (y, saved) = pool.forward(x, training: true)
            let expected = naive(x)
            XCTAssertEqual(y.storage, expected.values, "values for \(shape)")
            XCTAssertEqual(saved.indices, expected.winners, "first maximum wins for \(shape)")
        }
    }
}
