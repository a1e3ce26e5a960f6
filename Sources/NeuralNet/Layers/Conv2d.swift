import CConvolution

/// 2-D convolution over NCHW images.
///
/// Forward and the weight gradient are direct convolutions (`CConvolution`, whose
/// opening comment has the two layouts of the work and their costs): the image is
/// read in place from a zero-padded copy. They replaced an im2col matrix
/// `cols[K, B·P]` (K = Cin·kh·kw taps, P output pixels per image) and one GEMM per
/// pass: with LeNet's 6 and 16 output channels the GEMM's M dimension was too small
/// for OpenBLAS, which spent as long packing `cols` as multiplying, and writing `cols`
/// (5 MB for conv1 at batch 64) cost as much again.
///
/// The input gradient is direct too where the kernels have it (stride 1, at most six
/// input channels: LeNet's conv2), and otherwise a GEMM and a fold (col2im):
///
///     dcols[K, B·P] = Wᵀ[K, Cout] · dOut[Cout, B·P],   dX = fold(dcols)
///
/// whose GEMM has the long K and B·P dimensions OpenBLAS handles well.
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

    /// Makes every Conv2d use the kernels for CPUs without AVX2 and FMA (`true`) or
    /// choose by the CPU again (`false`): for tests of the path this machine skips.
    static func usePortableKernels(_ portable: Bool) {
        chorus_conv2d_use_portable_kernels(portable ? 1 : 0)
    }

    /// Which kernels a pass over `inputShape` ([batch, C, H, W]) takes on this CPU,
    /// e.g. "avx2-fma pixel lanes", and whether its input gradient is direct.
    func kernels(forInputShape inputShape: [Int]) -> (forward: String, directInputGradient: Bool) {
        var kernelShape = kernelGeometry(geometry(inputShape))
        return (String(cString: chorus_conv2d_kernels(&kernelShape)), chorus_conv2d_has_direct_input_gradient(&kernelShape) != 0)
    }

    /// The kernels' description of a pass over `shape`.
    private func kernelGeometry(_ g: Geometry) -> chorus_conv_geometry {
        chorus_conv_geometry(batch: Int32(g.batch), in_channels: Int32(inChannels), height: Int32(g.height),
                             width: Int32(g.width), out_channels: Int32(outChannels), kernel: Int32(kernel),
                             stride: Int32(stride), padding: Int32(padding), out_height: Int32(g.outHeight),
                             out_width: Int32(g.outWidth))
    }

    public func forward(_ input: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        // The kernel reads every plane of the input through pointers: check the shape once.
        require(input.shape.count == 4 && input.shape[1] == inChannels,
                     "\(name) expects [batch, \(inChannels), height, width], got \(input.shape)")
        // The kernels index one image (and its padded copy) with 32-bit integers.
        require(input.itemCount + 2 * padding * (input.shape[2] + input.shape[3] + 2 * padding) * inChannels < Int(Int32.max),
                "\(name): an image of \(input.itemCount) elements is too large")
        let g = geometry(input.shape)
        require(g.outHeight > 0 && g.outWidth > 0, "\(name): a \(kernel)x\(kernel) kernel does not fit input \(input.shape) with padding \(padding)")
        var kernelShape = kernelGeometry(g)
        let output = Tensor(shape: [g.batch, outChannels, g.outHeight, g.outWidth]) { y in
            input.storage.withUnsafeBufferPointer { x in
                chorus_conv2d_forward(&kernelShape, x.baseAddress!, weight, bias, y.baseAddress!)
            }
        }
        return (output, Saved(tensors: [input], inputShape: input.shape))
    }

    public func backward(_ gradOutput: Tensor, saved: Saved, needInputGradient: Bool) -> Tensor? {
        let g = geometry(saved.inputShape)
        let input = saved.tensors[0]
        require(gradOutput.count == outChannels * g.columns,
                "\(name): output gradient of \(gradOutput.count) elements, expected \(outChannels * g.columns)")
        var kernelShape = kernelGeometry(g)
        input.storage.withUnsafeBufferPointer { x in
            gradOutput.storage.withUnsafeBufferPointer { dy in
                chorus_conv2d_weight_gradient(&kernelShape, x.baseAddress!, dy.baseAddress!, weightGrad, biasGrad)
            }
        }
        guard needInputGradient else { return nil }
        guard chorus_conv2d_has_direct_input_gradient(&kernelShape) != 0 else { return inputGradient(gradOutput, g) }
        return Tensor(shape: saved.inputShape) { dx in
            gradOutput.storage.withUnsafeBufferPointer { dy in
                chorus_conv2d_input_gradient(&kernelShape, dy.baseAddress!, weight, dx.baseAddress!)
            }
        }
    }

    /// Floats of `dcols` per chunk of images in `inputGradient` (512 KB): small enough
    /// to stay in a core's L2 between the GEMM that writes it and the fold that reads it.
    static let inputGradientChunkFloats = 128 * 1024

    /// dX, a chunk of images at a time: dOutT[co, n·P + p] for the chunk's images,
    /// dcols = Wᵀ · dOutT, then fold. For the whole batch at once, LeNet's conv2 wrote
    /// a 3.8 MB dcols to L3 and read it back (batch 64); in chunks of 8 images its
    /// backward took 0.88-0.92 of the time (layer-bench, interleaved runs).
    private func inputGradient(_ gradOutput: Tensor, _ g: Geometry) -> Tensor {
        let chunk = max(1, min(g.batch, Conv2d.inputGradientChunkFloats / max(1, taps * g.pixels)))
        let imageSize = inChannels * g.height * g.width
        var gradInput = Tensor(zeros: [g.batch, inChannels, g.height, g.width])
        var gradT = [Float](repeating: 0, count: outChannels * chunk * g.pixels)
        var gradCols = [Float](repeating: 0, count: taps * chunk * g.pixels)
        gradOutput.storage.withUnsafeBufferPointer { dy in
            gradInput.storage.withUnsafeMutableBufferPointer { dx in
                gradT.withUnsafeMutableBufferPointer { gradT in
                    gradCols.withUnsafeMutableBufferPointer { cols in
                        for first in Swift.stride(from: 0, to: g.batch, by: chunk) {
                            let part = Geometry(batch: min(chunk, g.batch - first), height: g.height, width: g.width,
                                                outHeight: g.outHeight, outWidth: g.outWidth)
                            for n in 0..<part.batch {
                                for co in 0..<outChannels {
                                    (gradT.baseAddress! + co * part.columns + n * g.pixels)
                                        .update(from: dy.baseAddress! + ((first + n) * outChannels + co) * g.pixels, count: g.pixels)
                                }
                            }
                            BLAS.gemm(weight, transposeA: true, gradT.baseAddress!, cols.baseAddress!,
                                      m: taps, n: part.columns, k: outChannels)
                            fold(cols.baseAddress!, into: dx.baseAddress! + first * imageSize, part)
                        }
                    }
                }
            }
        }
        return gradInput
    }

    /// The output columns `ox` whose input column `ox·stride − padding + tap` lies
    /// inside the image: one contiguous range per kernel tap, so the fold loop below
    /// needs no per-element bounds test.
    private func validColumns(tap: Int, width: Int, outWidth: Int) -> Range<Int> {
        let offset = padding - tap  // ix = ox·stride − offset
        let low = offset > 0 ? (offset + stride - 1) / stride : 0
        let high = min(outWidth, (width - 1 + offset) >= 0 ? (width - 1 + offset) / stride + 1 : 0)
        return low..<max(low, high)
    }

    /// col2im: dx[b, c, oy·s − pad + i, ox·s − pad + j] += cols[(c·k + i)·k + j, b·P + oy·Wout + ox],
    /// accumulating every tap back onto its pixel (0 outside the image is skipped).
    ///
    /// Index arithmetic here wraps (`&*`, `&+`) and the row loop is `RowLoops`: the
    /// geometry comes from a shape checked on entry, so nothing overflows, and the
    /// overflow and range checks of plain arithmetic, paid per row of as few as 10
    /// elements, doubled this function's instructions in a release build (measured
    /// with callgrind against -Ounchecked).
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

/// The per-row loop of col2im, without the range checks a `for` over `0..<n` pays
/// per call in a release build.
private enum RowLoops {
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
