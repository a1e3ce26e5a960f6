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
        // The GEMM reads batch x inputs floats: a wrong shape would read past the tensor.
        require(input.itemCount == inputs, "\(name) expects \(inputs) inputs per item, got shape \(input.shape)")
        let batch = input.batch
        let output = Tensor(shape: [batch, outputs]) { y in
            for row in 0..<batch { (y.baseAddress! + row * outputs).update(from: bias, count: outputs) }
            input.storage.withUnsafeBufferPointer { x in
                BLAS.gemm(x.baseAddress!, weight, transposeB: true, y.baseAddress!,
                          m: batch, n: outputs, k: inputs, beta: 1)
            }
        }
        return (output, Saved(tensors: [input]))
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
