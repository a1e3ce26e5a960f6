import XCTest
@testable import NeuralNet

/// Linear's two forward orientations, X·Wᵀ and (W·Xᵀ)ᵀ, give the same bits, and the
/// definition's values.
final class LinearOrientationTests: XCTestCase {
    func testBothOrientationsGiveTheSameBitsAndTheDefinition() throws {
        for (batch, inputs, outputs) in [(16, 1024, 1024), (64, 1024, 1536), (1, 1024, 10), (5, 2048, 33), (7, 300, 17)] {
            let layer = Linear("fc", inputs: inputs, outputs: outputs)
            let model = try Sequential([layer], inputShape: [inputs], seed: 5)
            // A bias far from zero, so adding it first or last would round differently.
            for j in 0..<outputs { model.parameters.values[outputs * inputs + j] = Float(j % 7) + 0.3 }
            let x = randomTensor([batch, inputs], seed: UInt64(batch))
            let direct = layer.affine(x, weightOnLeft: false), swapped = layer.affine(x, weightOnLeft: true)
            XCTAssertEqual(direct.shape, [batch, outputs])
            XCTAssertEqual(direct.storage, swapped.storage, "\(batch) x \(inputs) -> \(outputs)")
            let w = Array(model.parameters.values)
            for row in [0, batch - 1] {
                for j in [0, outputs / 2, outputs - 1] {
                    var sum = Double(w[outputs * inputs + j])
                    for i in 0..<inputs { sum += Double(x.storage[row * inputs + i]) * Double(w[j * inputs + i]) }
                    XCTAssertEqual(Double(direct.storage[row * outputs + j]), sum, accuracy: 1e-4 * max(1, abs(sum)))
                }
            }
        }
        XCTAssertTrue(Linear.weightOnLeft(batch: 16, inputs: 1024))
        XCTAssertFalse(Linear.weightOnLeft(batch: 256, inputs: 1024))
        XCTAssertFalse(Linear.weightOnLeft(batch: 16, inputs: 784))
    }
}
