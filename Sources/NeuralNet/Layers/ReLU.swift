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
                    // Raw pointers and a select the compiler turns into vector blends.
                    let (yp, dyp, dxp) = (y.baseAddress!, dy.baseAddress!, dx.baseAddress!)
                    for i in 0..<y.count { dxp[i] = yp[i] > 0 ? dyp[i] : 0 }
                }
            }
        }
    }
}
