/// Fully connected layer: y = x·Wᵀ + b, W stored [out, in] as in PyTorch.
public final class Linear: Layer {
    public let name: String
    public let inputs: Int
    public let outputs: Int
    private var weight: UnsafeMutablePointer<Float>!
    private var bias: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!
    private var biasGrad: UnsafeMutablePointer<Float>!

    public init(_ name: String, inputs: Int, outputs: Int) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
    }

    public var parameterSpecs: [ParameterSpec] {
        let bound = 1 / Float(inputs).squareRoot()
        return [ParameterSpec(name: "weight", shape: [outputs, inputs], initializer: .uniform(bound: bound)),
                ParameterSpec(name: "bias", shape: [outputs], initializer: .uniform(bound: bound))]
    }

    public func bind(_ view: ParameterView) {
        weight = view.values
        bias = view.values + outputs * inputs
        weightGrad = view.gradients
        biasGrad = view.gradients + outputs * inputs
    }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.reduce(1, *) == inputs else {
            throw ShapeError("\(name) expects \(inputs) inputs per item, got shape \(inputShape)")
        }
        return [outputs]
    }

    public func forwardMACs(for inputShape: [Int]) -> Int { inputs * outputs }

    public func forward(_ input: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        (affine(input, weightOnLeft: Self.weightOnLeft(batch: input.batch, inputs: inputs)), Saved(tensors: [input]))
    }

    /// Whether the forward multiplies W·Xᵀ (and transposes the small result) rather
    /// than X·Wᵀ. With X·Wᵀ OpenBLAS packs Wᵀ, reading down W's columns: rows 4 KiB
    /// apart (inputs a multiple of 1024) all fall in the same L1 sets, and on a small
    /// batch the packing is most of the call. Measured here (one thread): 16x1024 by
    /// 1024x1024 929 -> 468 µs, 16 by 1024x1536 1,393 -> 656, 64 by 1024x1536 2,769 ->
    /// 2,175; at 256 rows or other widths X·Wᵀ is as fast or faster (784 inputs, 256
    /// rows: 4,096 against 5,435). Both orders give the same bits: every output is the
    /// same dot product, accumulated over the same blocks of k (a test checks).
    static func weightOnLeft(batch: Int, inputs: Int) -> Bool { batch <= 64 && inputs % 1024 == 0 }

    /// y = x·Wᵀ + b, computed in either orientation.
    func affine(_ input: Tensor, weightOnLeft: Bool) -> Tensor {
        // The GEMM reads batch x inputs floats: a wrong shape would read past the tensor.
        require(input.itemCount == inputs, "\(name) expects \(inputs) inputs per item, got shape \(input.shape)")
        let batch = input.batch
        return Tensor(shape: [batch, outputs]) { y in
            input.storage.withUnsafeBufferPointer { x in
                guard weightOnLeft else {
                    // The bias first, then the product added onto it (beta 1).
                    for row in 0..<batch { (y.baseAddress! + row * outputs).update(from: bias, count: outputs) }
                    BLAS.gemm(x.baseAddress!, weight, transposeB: true, y.baseAddress!, m: batch, n: outputs, k: inputs, beta: 1)
                    return
                }
                // yᵀ[out, batch] = W[out, in] · xᵀ, onto the bias as above, so the sums are the same.
                let yt = UnsafeMutablePointer<Float>.allocate(capacity: outputs * batch)
                defer { yt.deallocate() }
                for j in 0..<outputs { (yt + j * batch).update(repeating: bias[j], count: batch) }
                BLAS.gemm(weight, x.baseAddress!, transposeB: true, yt, m: outputs, n: batch, k: inputs, beta: 1)
                for j in 0..<outputs {
                    for row in 0..<batch { y[row * outputs + j] = yt[j * batch + row] }
                }
            }
        }
    }

    public func backward(_ gradOutput: Tensor, saved: Saved, needInputGradient: Bool) -> Tensor? {
        let input = saved.tensors[0]
        let batch = input.batch
        require(gradOutput.count == batch * outputs, "\(name): output gradient of shape \(gradOutput.shape), expected [\(batch), \(outputs)]")
        gradOutput.storage.withUnsafeBufferPointer { dy in
            input.storage.withUnsafeBufferPointer { x in
                // dW[out, in] += dYᵀ[out, batch] · X[batch, in]
                BLAS.gemm(dy.baseAddress!, transposeA: true, x.baseAddress!, weightGrad,
                          m: outputs, n: inputs, k: batch, beta: 1)
            }
            for row in 0..<batch {
                let r = dy.baseAddress! + row * outputs
                for j in 0..<outputs { biasGrad[j] += r[j] }
            }
        }
        guard needInputGradient else { return nil }
        return Tensor(shape: input.shape) { dx in
            gradOutput.storage.withUnsafeBufferPointer { dy in
                // dX[batch, in] = dY[batch, out] · W[out, in]
                BLAS.gemm(dy.baseAddress!, weight, dx.baseAddress!, m: batch, n: inputs, k: outputs)
            }
        }
    }
}
