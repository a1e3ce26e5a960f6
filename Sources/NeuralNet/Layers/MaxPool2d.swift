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
        require(input.shape.count == 4, "\(name) expects [batch, channels, height, width], got \(input.shape)")
        // Winners are stored as Int32 indices into the input.
        require(input.count <= Int(Int32.max), "\(name): an input of \(input.count) elements is too large to pool")
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let oh = (h - kernel) / stride + 1, ow = (w - kernel) / stride + 1
        var winners = [Int32](repeating: 0, count: n * c * oh * ow)
        // Through a pointer: storing into the captured array checked its uniqueness on
        // every element (11% of a LeNet step).
        let output = winners.withUnsafeMutableBufferPointer { winners in Tensor(shape: [n, c, oh, ow]) { y in
            input.storage.withUnsafeBufferPointer { x in
                var out = 0
                for plane in 0..<(n * c) {
                    let base = plane * h * w
                    if kernel == 2 && stride == 2 {
                        for oy in 0..<oh {
                            let top = base + 2 * oy * w
                            MaxPool2d.pool2x2Row(x.baseAddress!, rowStart: top, width: w, count: ow,
                                                 values: y.baseAddress! + out, winners: winners.baseAddress! + out)
                            out += ow
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
        } }
        return (output, Saved(indices: winners, inputShape: input.shape))
    }

    public func backward(_ gradOutput: Tensor, saved: Saved, needInputGradient: Bool) -> Tensor? {
        guard needInputGradient else { return nil }
        var gradInput = Tensor(zeros: saved.inputShape)
        gradInput.storage.withUnsafeMutableBufferPointer { dx in
            gradOutput.storage.withUnsafeBufferPointer { dy in
                require(dy.count == saved.indices.count, "\(name): output gradient of \(dy.count) elements, \(saved.indices.count) pooled")
                for i in 0..<dy.count { dx[Int(saved.indices[i])] += dy[i] }
            }
        }
        return gradInput
    }

    /// One output row of 2x2/2 pooling: window k covers x[a], x[a+1], x[a+w], x[a+w+1]
    /// with a = rowStart + 2k; the first maximum in that order wins ties.
    ///
    /// Eight windows at a time: two rows of 16 floats, split into even and odd lanes,
    /// compared with vector selects. Scalar compares here compiled to branches that
    /// mispredict on half of the data, and pooling took 12% of a LeNet step. A row
    /// that is not a multiple of 8 ends with a vector overlapping the previous one
    /// (recomputing a few windows gives the same answers).
    @inline(__always)
    static func pool2x2Row(_ x: UnsafePointer<Float>, rowStart: Int, width w: Int, count: Int,
                           values: UnsafeMutablePointer<Float>, winners: UnsafeMutablePointer<Int32>) {
        /// Values and indices selected together, so no load waits on a comparison:
        /// selecting only the index and loading its value compiled to branches.
        func scalar(_ k: Int) {
            let a = rowStart + 2 * k, c = a + w
            let (va, vb, vc, vd) = (x[a], x[a + 1], x[c], x[c + 1])
            let (bWins, dWins) = (vb > va, vd > vc)
            let (ab, cd) = (bWins ? vb : va, dWins ? vd : vc)
            let (abIndex, cdIndex) = (bWins ? a + 1 : a, dWins ? c + 1 : c)
            let lowerWins = cd > ab
            values[k] = lowerWins ? cd : ab
            winners[k] = Int32(truncatingIfNeeded: lowerWins ? cdIndex : abIndex)
        }
        guard count >= 8 else {
            for k in 0..<count { scalar(k) }
            return
        }
        let raw = UnsafeRawPointer(x)
        let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
        let one = SIMD8<Int32>(repeating: 1), below = SIMD8<Int32>(repeating: Int32(w))
        /// A comparison's lanes as all-ones / all-zeros integers (the mask's own bits).
        func bits(_ mask: SIMDMask<SIMD8<Int32>>) -> SIMD8<Int32> { unsafeBitCast(mask, to: SIMD8<Int32>.self) }
        var k = 0
        while true {
            // Wrapping arithmetic: the windows lie inside the input, whose size fits Int32 (see forward).
            let start = min(k, count &- 8)
            let a0 = rowStart &+ 2 &* start
            let upper = raw.loadUnaligned(fromByteOffset: a0 &* 4, as: SIMD16<Float>.self)
            let lower = raw.loadUnaligned(fromByteOffset: (a0 &+ w) &* 4, as: SIMD16<Float>.self)
            let (a, b, c, d) = (upper.evenHalf, upper.oddHalf, lower.evenHalf, lower.oddHalf)
            let abWins = b .> a, cdWins = d .> c
            let ab = a.replacing(with: b, where: abWins)
            let cd = c.replacing(with: d, where: cdWins)
            let lowerWins = cd .> ab
            let best = ab.replacing(with: cd, where: lowerWins)
            // Offsets within the window, 0, 1, w or w + 1, in integer lanes.
            let abOffset = bits(abWins) & one
            let cdOffset = below &+ (bits(cdWins) & one)
            let pick = bits(lowerWins)
            let index = ((cdOffset & pick) | (abOffset & ~pick)) &+ lanes &+ Int32(truncatingIfNeeded: a0)
            UnsafeMutableRawPointer(values + start).storeBytes(of: best, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(winners + start).storeBytes(of: index, as: SIMD8<Int32>.self)
            if start &+ 8 >= count { break }
            k &+= 8
        }
    }
}
