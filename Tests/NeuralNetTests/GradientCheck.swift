import XCTest
@testable import NeuralNet

/// Central finite differences against backward, for a model whose loss is
/// L = Σ y·w with a fixed random w (or cross-entropy, for whole models).
///
/// Finite differences are only valid where the function is smooth between x - ε and
/// x + ε: a coordinate whose perturbation flips a ReLU or changes a max-pool winner is
/// skipped, and the number skipped is returned so a test can insist it stays small.
///
/// Every derivative is computed from float32 forward passes, so the comparison uses a
/// relative error over the whole gradient vector, ‖analytic − numeric‖ / ‖numeric‖,
/// plus a per-element bound; a wrong transpose, a missing term or a sign error moves
/// either by orders of magnitude more than the tolerance.
struct GradientChecker {
    let model: Sequential
    let input: Tensor
    let loss: (Tensor) -> (Double, Tensor)
    let epsilon: Float

    /// A weighted-sum loss: the gradient of Σ y·w is w itself.
    static func weightedSum(outputShape: [Int], seed: UInt64) -> (Tensor) -> (Double, Tensor) {
        var g = SeededGenerator(seed: seed)
        let weights = Tensor(shape: outputShape, storage: (0..<outputShape.reduce(1, *)).map { _ in g.nextFloat(bound: 1) })
        return { y in
            var total = 0.0
            for i in 0..<y.count { total += Double(y.storage[i]) * Double(weights.storage[i]) }
            return (total, weights)
        }
    }

    /// The discrete decisions of a forward pass: which ReLUs are on, which inputs
    /// win each pooling window.
    func decisions(_ tape: Sequential.Tape) -> [Int32] {
        var result: [Int32] = []
        for (layer, saved) in zip(model.layers, tape.saved) {
            if layer is ReLU { result += saved.tensors[0].storage.map { $0 > 0 ? 1 : 0 } }
            result += saved.indices
        }
        return result
    }

    /// Loss at `x`, and whether its decisions match `reference`.
    func evaluate(_ x: Tensor, reference: [Int32]) -> (loss: Double, smooth: Bool) {
        let (y, tape) = model.forward(x, training: true)
        return (loss(y).0, decisions(tape) == reference)
    }

    /// Returns the relative errors over parameters and over the input, and the
    /// fraction of coordinates skipped for crossing a kink.
    func run(parameterSample: Int? = nil, checkInput: Bool = true) -> (params: Double, input: Double, skipped: Double) {
        model.parameters.zeroGradients()
        let (y, tape) = model.forward(input, training: true)
        let reference = decisions(tape)
        let (_, dy) = loss(y)
        let dx = model.backward(dy, tape: tape, needInputGradient: checkInput)
        let analytic = model.parameters.gradientArray

        var indices = Array(0..<model.parameters.count)
        if let sample = parameterSample, sample < indices.count {
            var g = SeededGenerator(seed: 99)
            indices = (0..<sample).map { _ in Int(g.next() % UInt64(model.parameters.count)) }
        }
        var checked = 0, skipped = 0
        var numeric: [Double] = [], picked: [Double] = []
        for i in indices {
            let original = model.parameters.values[i]
            model.parameters.values[i] = original + epsilon
            let plus = evaluate(input, reference: reference)
            model.parameters.values[i] = original - epsilon
            let minus = evaluate(input, reference: reference)
            model.parameters.values[i] = original
            guard plus.smooth && minus.smooth else { skipped += 1; continue }
            checked += 1
            numeric.append((plus.loss - minus.loss) / (2 * Double(epsilon)))
            picked.append(Double(analytic[i]))
        }
        let paramError = relativeError(picked, numeric)

        var inputError = 0.0
        if checkInput, let dx {
            var numericInput: [Double] = [], pickedInput: [Double] = []
            var x = input
            for i in 0..<x.count {
                let original = x.storage[i]
                x.storage[i] = original + epsilon
                let plus = evaluate(x, reference: reference)
                x.storage[i] = original - epsilon
                let minus = evaluate(x, reference: reference)
                x.storage[i] = original
                guard plus.smooth && minus.smooth else { skipped += 1; continue }
                checked += 1
                numericInput.append((plus.loss - minus.loss) / (2 * Double(epsilon)))
                pickedInput.append(Double(dx.storage[i]))
            }
            inputError = relativeError(pickedInput, numericInput)
        }
        return (paramError, inputError, Double(skipped) / Double(max(checked + skipped, 1)))
    }

    func relativeError(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        var diff = 0.0, norm = 0.0
        for i in a.indices {
            diff += (a[i] - b[i]) * (a[i] - b[i])
            norm += max(a[i] * a[i], b[i] * b[i])
        }
        return norm == 0 ? diff.squareRoot() : (diff / norm).squareRoot()
    }
}

func randomTensor(_ shape: [Int], seed: UInt64, bound: Float = 1) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in g.nextFloat(bound: bound) })
}

/// Values at least `gap` apart in random order, so max pooling and ReLU have no
/// near-ties or near-kinks a finite-difference step could cross.
func separatedTensor(_ shape: [Int], seed: UInt64, gap: Float = 0.05) -> Tensor {
    let n = shape.reduce(1, *)
    var g = SeededGenerator(seed: seed)
    var values = (0..<n).map { Float($0) * gap - Float(n) * gap / 2 + gap / 2 }
    for i in stride(from: n - 1, to: 0, by: -1) { values.swapAt(i, Int(g.next() % UInt64(i + 1))) }
    return Tensor(shape: shape, storage: values)
}

final class GradientCheckTests: XCTestCase {
    let tolerance = 2e-3

    func check(_ layers: [Layer], input: Tensor, epsilon: Float = 1e-2, checkInput: Bool = true,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try Sequential(layers, inputShape: Array(input.shape.dropFirst()), seed: 7)
        let outShape = [input.batch] + model.outputShape
        let checker = GradientChecker(model: model, input: input,
                                      loss: GradientChecker.weightedSum(outputShape: outShape, seed: 3), epsilon: epsilon)
        let (paramError, inputError, skipped) = checker.run(checkInput: checkInput)
        XCTAssertLessThan(paramError, tolerance, "parameter gradient", file: file, line: line)
        XCTAssertLessThan(inputError, tolerance, "input gradient", file: file, line: line)
        XCTAssertLessThan(skipped, 0.05, "too many coordinates on a kink to check", file: file, line: line)
    }

    func testLinear() throws {
        try check([Linear("fc", inputs: 7, outputs: 5)], input: randomTensor([3, 7], seed: 1))
    }

    func testConv2dPadded() throws {
        try check([Conv2d("conv", inChannels: 2, outChannels: 3, kernel: 3, padding: 1)],
                  input: randomTensor([2, 2, 6, 5], seed: 2))
    }

    func testConv2dStridedUnpadded() throws {
        try check([Conv2d("conv", inChannels: 3, outChannels: 2, kernel: 3, stride: 2)],
                  input: randomTensor([2, 3, 7, 8], seed: 3))
    }

    func testConv2dStridedPadded() throws {
        try check([Conv2d("conv", inChannels: 1, outChannels: 4, kernel: 5, stride: 2, padding: 2)],
                  input: randomTensor([2, 1, 9, 9], seed: 4))
    }

    func testMaxPool() throws {
        try check([MaxPool2d(kernel: 2)], input: separatedTensor([2, 3, 6, 6], seed: 5))
    }

    func testMaxPoolOverlappingWindows() throws {
        try check([MaxPool2d(kernel: 3, stride: 2)], input: separatedTensor([1, 2, 7, 7], seed: 6))
    }

    func testReLU() throws {
        try check([ReLU()], input: separatedTensor([3, 10], seed: 7))
    }

    func testFlatten() throws {
        try check([Flatten(), Linear("fc", inputs: 12, outputs: 3)], input: randomTensor([2, 3, 2, 2], seed: 8))
    }

    func testDropoutIsDifferentiableForItsMask() throws {
        // The mask is drawn anew each forward pass, so check the layer through a fixed
        // mask: a generator that never drops makes it the identity, whose gradient is exact.
        try check([Dropout(rate: 0), Linear("fc", inputs: 6, outputs: 2)], input: randomTensor([2, 6], seed: 9))
    }

    func testSoftmaxCrossEntropy() throws {
        let logits = randomTensor([4, 5], seed: 10, bound: 3)
        let labels: [Int32] = [0, 3, 4, 1]
        let (_, grad) = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels)
        let eps: Float = 1e-2
        for i in 0..<logits.count {
            var plus = logits, minus = logits
            plus.storage[i] += eps
            minus.storage[i] -= eps
            let numeric = (SoftmaxCrossEntropy.loss(logits: plus, labels: labels)
                           - SoftmaxCrossEntropy.loss(logits: minus, labels: labels)) / Double(2 * eps)
            XCTAssertEqual(Double(grad.storage[i]), numeric, accuracy: 1e-4)
        }
    }

    func testWholeLeNetWithCrossEntropy() throws {
        let model = try ModelDescription(kind: .lenet).build(seed: 11)
        let input = randomTensor([2, 1, 28, 28], seed: 12, bound: 1)
        let labels: [Int32] = [3, 8]
        let checker = GradientChecker(model: model, input: input,
                                      loss: { SoftmaxCrossEntropy.lossAndGradient(logits: $0, labels: labels) },
                                      epsilon: 1e-3)
        let (paramError, _, skipped) = checker.run(parameterSample: 300, checkInput: false)
        XCTAssertLessThan(paramError, 1e-2)
        XCTAssertLessThan(skipped, 0.05)
    }

    func testWholeMLP() throws {
        let model = try ModelDescription(kind: .mlp, hidden: [16, 8], inputShape: [1, 4, 4]).build(seed: 13)
        let input = randomTensor([3, 1, 4, 4], seed: 14)
        let labels: [Int32] = [1, 9, 4]
        let checker = GradientChecker(model: model, input: input,
                                      loss: { SoftmaxCrossEntropy.lossAndGradient(logits: $0, labels: labels) },
                                      epsilon: 1e-3)
        let (paramError, inputError, skipped) = checker.run()
        XCTAssertLessThan(paramError, 1e-2)
        XCTAssertLessThan(inputError, 1e-2)
        // Every input perturbation reaches every hidden unit, so kinks are met more often.
        XCTAssertLessThan(skipped, 0.10)
    }
}
