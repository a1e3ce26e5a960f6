/// Max pooling over NCHW images with a square window (no padding).
///
/// Forward records, for every output element, the flat index of the input element
/// that won; backward routes each gradient to that element alone. Ties go to the
/// first element in row-major window order, as in PyTorch.
public final class MaxPool2d: Layer {
    public let name: String
    public let kernel: Int
    public let stride: Int

    public init(_ name: String = "pool", kernel: Int, stride: Int? = nil) {
        precondition(kernel > 0 && (stride ?? kernel) > 0)
        self.name = name
        self.kernel = kernel
        self.stride = stride ?? kernel
    }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3, inputShape[1] >= kernel, inputShape[2] >= kernel else {
            throw ShapeError("\(name) expects [C, H, W] with H, W >= \(kernel), got \(inputShape)")
        }
        return [inputShape[0], (inputShape[1] - kernel) / stride + 1, (inputShape[2] - kernel) / stride + 1]
    }

    public func forward(_ input: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let oh = (h - kernel) / stride + 1, ow = (w - kernel) / stride + 1
        var winners = [Int32](repeating: 0, count: n * c * oh * ow)
        let output = Tensor(shape: [n, c, oh, ow]) { y in
            input.storage.withUnsafeBufferPointer { x in
                var out = 0
                for plane in 0..<(n * c) {
                    let base = plane * h * w
                    if kernel == 2 && stride == 2 {
                        // LeNet's case, unrolled: four candidates, first wins ties.
                        for oy in 0..<oh {
                            let top = base + 2 * oy * w
                            for ox in 0..<ow {
                                // Branch-free: data-dependent branches mispredict half the time here.
                                let a = top + 2 * ox, b = a + 1, c = a + w, d = c + 1
                                let ab = x[b] > x[a] ? b : a
                                let cd = x[d] > x[c] ? d : c
                                let best = x[cd] > x[ab] ? cd : ab
                                y[out] = x[best]
                                winners[out] = Int32(best)
                                out += 1
                            }
                        }
                        continue
                    }
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            var best = base + (oy * stride) * w + ox * stride
                            var bestValue = x[best]
                            for i in 0..<kernel {
                                for j in 0..<kernel {
                                    let at = base + (oy * stride + i) * w + ox * stride + j
                                    if x[at] > bestValue { bestValue = x[at]; best = at }
                                }
                            }
                            y[out] = bestValue
                            winners[out] = Int32(best)
                            out += 1
                        }
                    }
                }
            }
        }
        return (output, Saved(indices: winners, inputShape: input.shape))
    }

    public func backward(_ gradOutput: Tensor, saved: Saved, needInputGradient: Bool) -> Tensor? {
        guard needInputGradient else { return nil }
        var gradInput = Tensor(zeros: saved.inputShape)
        gradInput.storage.withUnsafeMutableBufferPointer { dx in
            gradOutput.storage.withUnsafeBufferPointer { dy in
                for i in 0..<dy.count { dx[Int(saved.indices[i])] += dy[i] }
            }
        }
        return gradInput
    }
}
