/// max(0, x), element-wise.
public final class ReLU: Layer {
    public let name: String

    public init(_ name: String = "relu") { self.name = name }

    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(_ input: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        let output = Tensor(shape: input.shape) { y in
            input.storage.withUnsafeBufferPointer { x in
                for i in 0..<x.count { y[i] = max(x[i], 0) }
            }
        }
        // The output alone decides the gradient (y > 0 ⇔ x > 0).
        return (output, Saved(tensors: [output]))
    }

    public func backward(_ gradOutput: Tensor, saved: Saved, needInputGradient: Bool) -> Tensor? {
        guard needInputGradient else { return nil }
        let output = saved.tensors[0]
        return Tensor(shape: output.shape) { dx in
            output.storage.withUnsafeBufferPointer { y in
                gradOutput.storage.withUnsafeBufferPointer { dy in
                    require(dy.count == y.count, "\(name): output gradient of \(dy.count) elements, output of \(y.count)")
                    // Explicit 16-lane selects: the scalar `y > 0 ? dy : 0` compiled to a
                    // branch that mispredicts on half the elements (7% of a LeNet step).
                    let (yp, dyp, dxp) = (UnsafeRawPointer(y.baseAddress!), UnsafeRawPointer(dy.baseAddress!),
                                          UnsafeMutableRawPointer(dx.baseAddress!))
                    let n = y.count, width = 16, zero = SIMD16<Float>(repeating: 0)
                    var i = 0
                    while i + width <= n {
                        let offset = i * MemoryLayout<Float>.stride
                        let value = yp.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                        let gradient = dyp.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                        dxp.storeBytes(of: zero.replacing(with: gradient, where: value .> zero), toByteOffset: offset,
                                       as: SIMD16<Float>.self)
                        i += width
                    }
                    while i < n {
                        dx[i] = y[i] > 0 ? dy[i] : 0
                        i += 1
                    }
                }
            }
        }
    }
}
