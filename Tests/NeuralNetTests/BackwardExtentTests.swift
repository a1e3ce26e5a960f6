import XCTest
@testable import NeuralNet

/// Which layers a backward runs and which input gradients it computes, and the
/// training cost that pipeline partitioning weighs.
final class BackwardExtentTests: XCTestCase {
    /// A parameter-free layer that passes gradients through and records its backward calls.
    final class Probe: Layer {
        let name: String
        var calls: [Bool] = []
        init(_ name: String) { self.name = name }
        func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }
        func forward(_ input: Tensor, training: Bool) -> (output: Tensor, saved: Saved) { (input, Saved()) }
        func backward(_ gradOutput: Tensor, saved: Saved, needInputGradient: Bool) -> Tensor? {
            calls.append(needInputGradient)
            return needInputGradient ? gradOutput : nil
        }
    }

    func testLayersBelowTheFirstWithParametersGetNoGradient() throws {
        let below = Probe("below"), between = Probe("between"), top = Probe("top")
        let model = try Sequential([below, Flatten(), Linear("fc1", inputs: 12, outputs: 5), between,
                                    Linear("fc2", inputs: 5, outputs: 3), top], inputShape: [3, 4], seed: 7)
        let x = randomTensor([2, 3, 4], seed: 1), dy = randomTensor([2, 3], seed: 2)
        let (_, tape) = model.forward(x, training: true)
        var done: [Int] = []
        XCTAssertNil(model.backward(dy, tape: tape) { done.append($0) })
        XCTAssertEqual(below.calls, [], "nothing below fc1 needs a gradient")
        XCTAssertEqual(between.calls, [true])
        XCTAssertEqual(top.calls, [true])
        XCTAssertEqual(done, [5, 4, 3, 2, 1, 0], "every layer is reported done, the skipped ones too")
        let skipping = Array(model.parameters.gradients)

        // Asked for the input gradient, every layer runs and the parameter gradients are the same bits.
        model.parameters.zeroGradients()
        let dx = try XCTUnwrap(model.backward(dy, tape: tape, needInputGradient: true))
        XCTAssertEqual(dx.shape, [2, 3, 4])
        XCTAssertEqual(below.calls, [true])
        XCTAssertEqual(Array(model.parameters.gradients), skipping)
    }

    func testAStageBelowOthersComputesItsInputGradientOnlyWhenAsked() throws {
        let head = Probe("head")
        let model = try Sequential([Linear("fc1", inputs: 4, outputs: 4), head, Linear("fc2", inputs: 4, outputs: 2)],
                                   inputShape: [4], seed: 3)
        let (_, tape) = model.forward(randomTensor([2, 4], seed: 4), training: true)
        // The stage of layers 1..<3: its first layer with parameters is fc2, so the probe below it is skipped.
        XCTAssertNil(model.backward(randomTensor([2, 2], seed: 5), saved: Array(tape.saved[1...]), layers: 1..<3,
                                    needInputGradient: false))
        XCTAssertEqual(head.calls, [])
        let dx = model.backward(randomTensor([2, 2], seed: 5), saved: Array(tape.saved[1...]), layers: 1..<3,
                                needInputGradient: true)
        XCTAssertEqual(dx?.shape, [2, 4])
        XCTAssertEqual(head.calls, [true])
    }

    func testTrainingCostCountsTheGradientsEachLayerComputes() throws {
        let model = try ModelDescription(kind: .mlp, hidden: [6]).build(seed: 1)
        // flatten, fc1 784->6 (forward and weight gradient, no input gradient), relu1, fc2 6->10 (all three).
        let expected: [Double] = [784, 2 * 784 * 6 + 6, 2 * 6, 3 * 6 * 10 + 2 * 10]
        XCTAssertEqual(model.trainingMACs(), expected)
    }
}
