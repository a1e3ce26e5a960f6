/// 2-D convolution over NCHW images, as one matrix multiply per batch (im2col).
///
/// The whole batch is unfolded into a column matrix `cols[K, B·P]` with
/// K = Cin·kh·kw rows (one per kernel tap) and one column per output pixel of every
/// image (P = Hout·Wout). Then
///
///     forward:   out[Cout, B·P] = W[Cout, K] · cols
///     backward:  dW   += dOut · colsᵀ         (Cout×K, summed over B·P)
///                dcols = Wᵀ · dOut            (K×B·P), folded back into dX (col2im)
///
/// One large GEMM per pass instead of B small ones keeps OpenBLAS in its efficient
/// regime for small kernels like LeNet's. `cols` is saved for backward (it is what
/// dW needs), trading memory for not unfolding twice.
public final class Conv2d: Layer {
    public let name: String
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    private var weight: UnsafeMutablePointer<Float>!
    private var bias: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!
    private var biasGrad: UnsafeMutablePointer<Float>!

    public init(_ name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        precondition(inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0)
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    private var taps: Int { inChannels * kernel * kernel }

    public var parameterSpecs: [ParameterSpec] {
        let bound = 1 / Float(taps).squareRoot()
        return [ParameterSpec(name: "weight", shape: [outChannels, inChannels, kernel, kernel],
                              initializer: .uniform(bound: bound)),
                ParameterSpec(name: "bias", shape: [outChannels], initializer: .uniform(bound: bound))]
    }

    public func bind(_ view: ParameterView) {
        weight = view.values
        bias = view.values + outChannels * taps
        weightGrad = view.gradients
        biasGrad = view.gradients + outChannels * taps
    }

    private func outputSize(_ input: Int) -> Int { (input + 2 * padding - kernel) / stride + 1 }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3, inputShape[0] == inChannels else {
            throw ShapeError("\(name) expects [\(inChannels), H, W] per item, got \(inputShape)")
        }
        guard inputShape[1] + 2 * padding >= kernel, inputShape[2] + 2 * padding >= kernel else {
            throw ShapeError("\(name): a \(kernel)x\(kernel) kernel does not fit input \(inputShape) with padding \(padding)")
        }
        return [outChannels, outputSize(inputShape[1]), outputSize(inputShape[2])]
    }

    public func forwardMACs(for inputShape: [Int]) -> Int {
        outChannels * taps * outputSize(inputShape[1]) * outputSize(inputShape[2])
    }

    /// The geometry of one pass, derived once from the input shape.
    private struct Geometry {
        let batch, height, width, outHeight, outWidth: Int
        var pixels: Int { outHeight * outWidth }
        var columns: Int { batch * pixels }
    }

    private func geometry(_ shape: [Int]) -> Geometry {
        Geometry(batch: shape[0], height: shape[2], width: shape[3],
                 outHeight: outputSize(shape[2]), outWidth: outputSize(shape[3]))
    }

    public func forward(_ input: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        // im2col reads every plane of the input through pointers: check the shape once.
        require(input.shape.count == 4 && input.shape[1] == inChannels,
                     "\(name) expects [batch, \(inChannels), height, width], got \(input.shape)")
        let g = geometry(input.shape)
        let cols = Tensor(shape: [taps, g.columns]) { cols in
            input.storage.withUnsafeBufferPointer { x in unfold(x.baseAddress!, into: cols.baseAddress!, g) }
        }
        let product = [Float](unsafeUninitializedCapacity: outChannels * g.columns) { out, initialized in
            cols.storage.withUnsafeBufferPointer { c in
                BLAS.gemm(weight, c.baseAddress!, out.baseAddress!, m: outChannels, n: g.columns, k: taps)
            }
            initialized = out.count
        }
        // product[co, b·P + p] → out[b, co, p], adding the bias on the way. Pointer
        // loops: array subscripts here cost a bounds check per element and kept the
        // copy from vectorising (both buffers hold outChannels·columns elements).
        let output = Tensor(shape: [g.batch, outChannels, g.outHeight, g.outWidth]) { y in
            product.withUnsafeBufferPointer { product in
                precondition(product.count == y.count && y.count == outChannels * g.columns)
                for b in 0..<g.batch {
                    for co in 0..<outChannels {
                        let source = product.baseAddress! + co * g.columns + b * g.pixels
                        let target = y.baseAddress! + (b * outChannels + co) * g.pixels
                        let beta = bias[co]
                        for p in 0..<g.pixels { target[p] = source[p] + beta }
                    }
                }
            }
        }
        return (output, Saved(tensors: [cols], inputShape: input.shape))
    }

    public func backward(_ gradOutput: Tensor, saved: Saved, needInputGradient: Bool) -> Tensor? {
        let g = geometry(saved.inputShape)
        let cols = saved.tensors[0]
        // dOut[b, co, p] → dOutT[co, b·P + p], the layout the GEMMs want.
        let gradT = [Float](unsafeUninitializedCapacity: outChannels * g.columns) { gradT, n in
            gradOutput.storage.withUnsafeBufferPointer { dy in
                require(dy.count == gradT.count, "\(name): output gradient of \(dy.count) elements, expected \(gradT.count)")
                for b in 0..<g.batch {
                    for co in 0..<outChannels {
                        let source = dy.baseAddress! + (b * outChannels + co) * g.pixels
                        let target = gradT.baseAddress! + co * g.columns + b * g.pixels
                        var sum: Float = 0
                        for p in 0..<g.pixels {
                            target[p] = source[p]
                            sum += source[p]
                        }
                        biasGrad[co] += sum
                    }
                }
            }
            n = outChannels * g.columns
        }
        cols.storage.withUnsafeBufferPointer { c in
            BLAS.gemm(gradT, c.baseAddress!, transposeB: true, weightGrad,
                      m: outChannels, n: taps, k: g.columns, beta: 1)
        }
        guard needInputGradient else { return nil }
        let gradCols = [Float](unsafeUninitializedCapacity: taps * g.columns) { out, initialized in
            BLAS.gemm(weight, transposeA: true, gradT, out.baseAddress!, m: taps, n: g.columns, k: outChannels)
            initialized = out.count
        }
        var gradInput = Tensor(zeros: saved.inputShape)
        gradInput.storage.withUnsafeMutableBufferPointer { dx in
            gradCols.withUnsafeBufferPointer { fold($0.baseAddress!, into: dx.baseAddress!, g) }
        }
        return gradInput
    }

    /// The output columns `ox` whose input column `ox·stride − padding + tap` lies
    /// inside the image: one contiguous range per kernel tap, so the copy loops below
    /// need no per-element bounds test.
    private func validColumns(tap: Int, width: Int, outWidth: Int) -> Range<Int> {
        let offset = padding - tap  // ix = ox·stride − offset
        let low = offset > 0 ? (offset + stride - 1) / stride : 0
        let high = min(outWidth, (width - 1 + offset) >= 0 ? (width - 1 + offset) / stride + 1 : 0)
        return low..<max(low, high)
    }

    /// im2col: cols[(c·k + i)·k + j, b·P + oy·Wout + ox] = x[b, c, oy·s − pad + i, ox·s − pad + j] (0 outside).
    ///
    /// Index arithmetic here and in `fold` wraps (`&*`, `&+`) and the row loops are
    /// `RowLoops`: the geometry comes from a shape checked on entry, so nothing
    /// overflows, and the overflow and range checks of plain arithmetic, paid per row
    /// of as few as 10 elements, doubled `fold`'s instructions in a release build
    /// (measured with callgrind against -Ounchecked).
    private func unfold(_ x: UnsafePointer<Float>, into cols: UnsafeMutablePointer<Float>, _ g: Geometry) {
        let outWidth = g.outWidth, height = g.height
        for j in 0..<kernel {
            let valid = validColumns(tap: j, width: g.width, outWidth: outWidth)
            let (low, count, high) = (valid.lowerBound, valid.count, valid.upperBound)
            for b in 0..<g.batch {
                for c in 0..<inChannels {
                    let plane = x + (b &* inChannels &+ c) &* height &* g.width
                    for i in 0..<kernel {
                        var dst = cols + (((c &* kernel &+ i) &* kernel &+ j) &* g.columns &+ b &* g.pixels)
                        var iy = i &- padding
                        for _ in 0..<g.outHeight {
                            if iy < 0 || iy >= height || count == 0 {
                                RowLoops.zero(dst, count: outWidth)
                            } else {
                                RowLoops.zero(dst, count: low)
                                RowLoops.gather(dst + low, from: plane + (iy &* g.width &+ low &* stride &- padding &+ j),
                                                stride: stride, count: count)
                                RowLoops.zero(dst + high, count: outWidth &- high)
                            }
                            dst += outWidth
                            iy &+= stride
                        }
                    }
                }
            }
        }
    }

    /// col2im: the adjoint of `unfold`, accumulating every tap back onto its pixel.
    private func fold(_ cols: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, _ g: Geometry) {
        let outWidth = g.outWidth, height = g.height
        for j in 0..<kernel {
            let valid = validColumns(tap: j, width: g.width, outWidth: outWidth)
            let (low, count) = (valid.lowerBound, valid.count)
            if count == 0 { continue }
            for b in 0..<g.batch {
                for c in 0..<inChannels {
                    let plane = dx + (b &* inChannels &+ c) &* height &* g.width
                    for i in 0..<kernel {
                        var src = cols + (((c &* kernel &+ i) &* kernel &+ j) &* g.columns &+ b &* g.pixels)
                        var iy = i &- padding
                        for _ in 0..<g.outHeight {
                            if iy >= 0 && iy < height {
                                RowLoops.scatterAdd(src + low, into: plane + (iy &* g.width &+ low &* stride &- padding &+ j),
                                                    stride: stride, count: count)
                            }
                            src += outWidth
                            iy &+= stride
                        }
                    }
                }
            }
        }
    }
}

/// The per-row loops of im2col and col2im, without the range checks a `for` over
/// `0..<n` or `update(repeating:count:)` pays per call in a release build.
private enum RowLoops {
    @inline(__always)
    static func zero(_ row: UnsafeMutablePointer<Float>, count: Int) {
        var k = 0
        while k < count {
            row[k] = 0
            k &+= 1
        }
    }

    /// row[k] = source[k·stride].
    @inline(__always)
    static func gather(_ row: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, stride: Int, count: Int) {
        var k = 0
        if stride == 1 {
            row.update(from: source, count: count)  // a memcpy
        } else {
            while k < count {
                row[k] = source[k &* stride]
                k &+= 1
            }
        }
    }

    /// target[k·stride] += row[k].
    @inline(__always)
    static func scatterAdd(_ row: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, stride: Int, count: Int) {
        var k = 0
        if stride == 1 {
            while k < count {
                target[k] += row[k]
                k &+= 1
            }
        } else {
            while k < count {
                target[k &* stride] += row[k]
                k &+= 1
            }
        }
    }
}
