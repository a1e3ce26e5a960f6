import XCTest
@testable import NeuralNet

/// Conv2d against the definition, summed in Double: forward, and the weight, bias
/// and input gradients of the loss L = Σ y·w for a fixed random w.
///
/// The gradient checks prove that backward matches forward; these prove that forward
/// is a convolution at all, over the shapes where the direct kernels change path:
/// output channels below, at and past a vector of 8, fewer pixels and fewer taps than
/// a register block of 6, strides and padding.
final class ConvolutionTests: XCTestCase {
    struct Case {
        let batch, inChannels, height, width, outChannels, kernel, stride, padding: Int
    }

    static let cases: [Case] = [
        Case(batch: 3, inChannels: 1, height: 28, width: 28, outChannels: 6, kernel: 5, stride: 1, padding: 2),  // LeNet conv1
        Case(batch: 2, inChannels: 6, height: 14, width: 14, outChannels: 16, kernel: 5, stride: 1, padding: 0),  // LeNet conv2
        Case(batch: 2, inChannels: 3, height: 7, width: 9, outChannels: 17, kernel: 3, stride: 2, padding: 1),
        Case(batch: 1, inChannels: 2, height: 3, width: 4, outChannels: 9, kernel: 3, stride: 1, padding: 0),  // 2 pixels
        Case(batch: 2, inChannels: 1, height: 5, width: 6, outChannels: 8, kernel: 1, stride: 1, padding: 0),  // 1 tap
        Case(batch: 2, inChannels: 1, height: 6, width: 5, outChannels: 1, kernel: 2, stride: 3, padding: 2),
        Case(batch: 1, inChannels: 4, height: 1, width: 1, outChannels: 3, kernel: 3, stride: 1, padding: 1),  // 1 pixel
        // Pixel lanes: stride 1, at most 6 channels, rows of 16 or more (overlapping
        // last blocks, an odd number of taps).
        Case(batch: 2, inChannels: 2, height: 6, width: 21, outChannels: 5, kernel: 3, stride: 1, padding: 1),
        Case(batch: 1, inChannels: 1, height: 4, width: 18, outChannels: 1, kernel: 3, stride: 1, padding: 0),
        Case(batch: 2, inChannels: 3, height: 5, width: 40, outChannels: 6, kernel: 2, stride: 1, padding: 0),
        // Rows of 25 = 3·8 + 1: the weight gradient's vectors run 7 floats past a row's end.
        Case(batch: 2, inChannels: 2, height: 4, width: 25, outChannels: 4, kernel: 3, stride: 1, padding: 1),
        // The direct input gradient: rows of exactly 8, padding k − 1, kernel taller than dy.
        Case(batch: 2, inChannels: 6, height: 3, width: 8, outChannels: 3, kernel: 3, stride: 1, padding: 2),
        Case(batch: 1, inChannels: 1, height: 2, width: 9, outChannels: 2, kernel: 2, stride: 1, padding: 0),
    ]

    func testForwardAndGradientsMatchTheDefinition() throws {
        try checkAgainstTheDefinition()
    }

    /// The kernels for CPUs without AVX2 and FMA, which this machine would not choose.
    func testPortableKernelsMatchTheDefinition() throws {
        Conv2d.usePortableKernels(true)
        defer { Conv2d.usePortableKernels(false) }
        XCTAssertTrue(LeNetLayers().conv1.kernels(forInputShape: [64, 1, 28, 28]).forward.hasPrefix("portable"))
        try checkAgainstTheDefinition()
    }

    /// LeNet's two layers take the two layouts, and conv2 the direct input gradient;
    /// the cases above cover all of them.
    func testLeNetTakesBothLayouts() {
        let layers = LeNetLayers()
        XCTAssertTrue(layers.conv1.kernels(forInputShape: [64, 1, 28, 28]).forward.hasSuffix("pixel lanes"))
        XCTAssertTrue(layers.conv2.kernels(forInputShape: [64, 6, 14, 14]).forward.hasSuffix("channel lanes"))
        XCTAssertTrue(layers.conv2.kernels(forInputShape: [64, 6, 14, 14]).directInputGradient)
    }

    struct LeNetLayers {
        let conv1 = Conv2d("conv1", inChannels: 1, outChannels: 6, kernel: 5, padding: 2)
        let conv2 = Conv2d("conv2", inChannels: 6, outChannels: 16, kernel: 5)
    }

    func checkAgainstTheDefinition() throws {
        let paths = Self.cases.map { c in
            Conv2d("conv", inChannels: c.inChannels, outChannels: c.outChannels, kernel: c.kernel, stride: c.stride,
                   padding: c.padding).kernels(forInputShape: [c.batch, c.inChannels, c.height, c.width])
        }
        XCTAssertEqual(Set(paths.map { $0.forward.hasSuffix("pixel lanes") }), [false, true], "the cases take both layouts")
        XCTAssertEqual(Set(paths.map(\.directInputGradient)), [false, true], "and both input gradients")
        for (index, c) in Self.cases.enumerated() {
            let conv = Conv2d("conv", inChannels: c.inChannels, outChannels: c.outChannels, kernel: c.kernel,
                              stride: c.stride, padding: c.padding)
            let model = try Sequential([conv], inputShape: [c.inChannels, c.height, c.width], seed: UInt64(index + 1))
            var g = SeededGenerator(seed: UInt64(100 + index))
            let inputShape = [c.batch, c.inChannels, c.height, c.width]
            let x = Tensor(shape: inputShape, storage: (0..<inputShape.reduce(1, *)).map { _ in g.nextFloat(bound: 1) })
            let (y, tape) = model.forward(x, training: true)
            let (oh, ow) = (y.shape[2], y.shape[3])
            let w = Tensor(shape: y.shape, storage: (0..<y.count).map { _ in g.nextFloat(bound: 1) })
            model.parameters.zeroGradients()
            let dx = try XCTUnwrap(model.backward(w, tape: tape, needInputGradient: true))

            let values = model.parameters.valueArray, gradients = model.parameters.gradientArray
            let taps = c.inChannels * c.kernel * c.kernel, biasAt = c.outChannels * taps
            var expectedY = [Double](repeating: 0, count: y.count)
            var expectedWeightGrad = [Double](repeating: 0, count: biasAt)
            var expectedBiasGrad = [Double](repeating: 0, count: c.outChannels)
            var expectedDx = [Double](repeating: 0, count: x.count)
            for b in 0..<c.batch {
                for co in 0..<c.outChannels {
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let out = ((b * c.outChannels + co) * oh + oy) * ow + ox
                            var sum = Double(values[biasAt + co])
                            for ci in 0..<c.inChannels {
                                for i in 0..<c.kernel {
                                    for j in 0..<c.kernel {
                                        let iy = oy * c.stride - c.padding + i, ix = ox * c.stride - c.padding + j
                                        guard iy >= 0 && iy < c.height && ix >= 0 && ix < c.width else { continue }
                                        let at = ((b * c.inChannels + ci) * c.height + iy) * c.width + ix
                                        let tap = co * taps + (ci * c.kernel + i) * c.kernel + j
                                        sum += Double(values[tap]) * Double(x.storage[at])
                                        expectedWeightGrad[tap] += Double(w.storage[out]) * Double(x.storage[at])
                                        expectedDx[at] += Double(w.storage[out]) * Double(values[tap])
                                    }
                                }
                            }
                            expectedY[out] = sum
                            expectedBiasGrad[co] += Double(w.storage[out])
                        }
                    }
                }
            }
            func assertClose(_ actual: [Float], _ expected: [Double], _ what: String) {
                XCTAssertEqual(actual.count, expected.count, "case \(index): \(what)")
                let scale = max(1, expected.map(abs).max() ?? 1)
                let worst = zip(actual, expected).map { abs(Double($0) - $1) }.max() ?? 0
                XCTAssertLessThan(worst / scale, 1e-5, "case \(index) \(c): \(what) differs by \(worst)")
            }
            assertClose(y.storage, expectedY, "forward")
            assertClose(Array(gradients[..<biasAt]), expectedWeightGrad, "weight gradient")
            assertClose(Array(gradients[biasAt...]), expectedBiasGrad, "bias gradient")
            assertClose(dx.storage, expectedDx, "input gradient")
        }
    }

    /// Backward adds to the gradients already there (micro-batches, accumulation).
    func testWeightGradientAccumulates() throws {
        let model = try Sequential([Conv2d("conv", inChannels: 2, outChannels: 10, kernel: 3, padding: 1)],
                                   inputShape: [2, 5, 5], seed: 3)
        var g = SeededGenerator(seed: 4)
        let x = Tensor(shape: [2, 2, 5, 5], storage: (0..<100).map { _ in g.nextFloat(bound: 1) })
        let (y, tape) = model.forward(x, training: true)
        let w = Tensor(shape: y.shape, storage: (0..<y.count).map { _ in g.nextFloat(bound: 1) })
        model.parameters.zeroGradients()
        model.backward(w, tape: tape)
        let once = model.parameters.gradientArray
        model.backward(w, tape: tape)
        for (twice, single) in zip(model.parameters.gradientArray, once) {
            XCTAssertEqual(twice, 2 * single, accuracy: 1e-5 * max(1, abs(single)))
        }
    }
}

/// LeNet pools before its ReLUs (ModelZoo): the same outputs and gradients, bit for
/// bit, as the textbook order, including windows whose values are all negative or
/// tied at zero.
final class PoolingBeforeReLUTests: XCTestCase {
    func testSwappingReLUAndMaxPoolChangesNoBit() throws {
        var g = SeededGenerator(seed: 9)
        // Values on a coarse grid around zero, so ties and all-negative windows occur.
        let x = Tensor(shape: [3, 2, 8, 8], storage: (0..<384).map { _ in Float(Int(g.nextFloat(bound: 1) * 4)) / 4 })
        let textbook = try Sequential([ReLU("relu"), MaxPool2d("pool", kernel: 2)], inputShape: [2, 8, 8], seed: 1)
        let swapped = try Sequential([MaxPool2d("pool", kernel: 2), ReLU("relu")], inputShape: [2, 8, 8], seed: 1)
        let (y1, tape1) = textbook.forward(x, training: true)
        let (y2, tape2) = swapped.forward(x, training: true)
        XCTAssertEqual(y1.storage, y2.storage)
        XCTAssertTrue(y1.storage.contains(0) && x.storage.contains { $0 < 0 }, "the input exercises the ReLU's kink")
        let dy = Tensor(shape: y1.shape, storage: (0..<y1.count).map { _ in g.nextFloat(bound: 1) })
        let dx1 = try XCTUnwrap(textbook.backward(dy, tape: tape1, needInputGradient: true))
        let dx2 = try XCTUnwrap(swapped.backward(dy, tape: tape2, needInputGradient: true))
        XCTAssertEqual(dx1.storage, dx2.storage)
    }
}
