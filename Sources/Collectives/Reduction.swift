import CHalfPrecision
import Communication

/// How the values of the ranks are combined.
public enum Reduction: String, Sendable, CaseIterable {
    /// Element-wise sum.
    case sum
    /// Element-wise sum divided by the number of ranks (gradient averaging).
    case average
}

/// The element types Chorus's collectives reduce: float32 and float64, and the
/// 16-bit formats gradient compression sends (float16, bfloat16).
///
/// The collectives move elements and combine them only through these three
/// kernels, so a narrow type travels narrow through every algorithm (ring,
/// recursive doubling, shared memory, hierarchical): half the bytes of float32.
/// Each kernel computes `(a + b) · scale` in at least float32 and rounds the
/// result to the element type: a 16-bit sum rounds once per addition, as hardware
/// that widens does. `average` on a 16-bit type scales by 1/p rounded to that type
/// (0.2% off for bfloat16 at p = 3); the compression hooks divide in float32 before
/// narrowing and sum, so they never use it.
public protocol CollectiveScalar: MessageScalar {
    /// 1/n, the factor `average` scales by.
    static func reciprocal(of n: Int) -> Self
    static var one: Self { get }
    /// `accumulator[i] = (accumulator[i] + addend[i]) * scale`
    static func add(_ addend: UnsafeBufferPointer<Self>, into accumulator: UnsafeMutableBufferPointer<Self>, scale: Self)
    /// `output[i] = (a[i] + b[i]) * scale`
    static func sum(_ a: UnsafeBufferPointer<Self>, _ b: UnsafeBufferPointer<Self>, into output: UnsafeMutableBufferPointer<Self>,
                    scale: Self)
    /// `buffer[i] *= factor`
    static func scale(_ buffer: UnsafeMutableBufferPointer<Self>, by factor: Self)
}

extension CollectiveScalar where Self: BinaryFloatingPoint & SIMDScalar {
    public static func reciprocal(of n: Int) -> Self { 1 / Self(n) }
    public static var one: Self { 1 }
    public static func add(_ addend: UnsafeBufferPointer<Self>, into accumulator: UnsafeMutableBufferPointer<Self>, scale: Self) {
        Kernels.add(addend, into: accumulator, scale: scale)
    }
    public static func sum(_ a: UnsafeBufferPointer<Self>, _ b: UnsafeBufferPointer<Self>,
                           into output: UnsafeMutableBufferPointer<Self>, scale: Self) {
        Kernels.sum(a, b, into: output, scale: scale)
    }
    public static func scale(_ buffer: UnsafeMutableBufferPointer<Self>, by factor: Self) { Kernels.scale(buffer, by: factor) }
}

extension Float: CollectiveScalar {}
extension Double: CollectiveScalar {}

/// The 16-bit formats run their kernels in C (`CHalfPrecision`): float16 through
/// the CPU's F16C conversions where it has them, bfloat16 through integer
/// arithmetic the compiler vectorises; Swift's own `Float16` conversions are calls
/// into the runtime on x86-64, about 20 times slower.
extension Float16: CollectiveScalar {
    public static func reciprocal(of n: Int) -> Float16 { Float16(1 / Float(n)) }
    public static var one: Float16 { 1 }
    public static func add(_ addend: UnsafeBufferPointer<Float16>, into accumulator: UnsafeMutableBufferPointer<Float16>,
                           scale: Float16) {
        sixteenBitSum(addend, UnsafeBufferPointer(accumulator), into: accumulator, scale: Float(scale), chorus_f16_sum)
    }
    public static func sum(_ a: UnsafeBufferPointer<Float16>, _ b: UnsafeBufferPointer<Float16>,
                           into output: UnsafeMutableBufferPointer<Float16>, scale: Float16) {
        sixteenBitSum(a, b, into: output, scale: Float(scale), chorus_f16_sum)
    }
    public static func scale(_ buffer: UnsafeMutableBufferPointer<Float16>, by factor: Float16) {
        sixteenBitScale(buffer, by: Float(factor), chorus_f16_scale)
    }
}

extension BFloat16: CollectiveScalar {
    public static func reciprocal(of n: Int) -> BFloat16 { BFloat16(1 / Float(n)) }
    public static var one: BFloat16 { BFloat16(1) }
    public static func add(_ addend: UnsafeBufferPointer<BFloat16>, into accumulator: UnsafeMutableBufferPointer<BFloat16>,
                           scale: BFloat16) {
        sixteenBitSum(addend, UnsafeBufferPointer(accumulator), into: accumulator, scale: scale.float, chorus_bf16_sum)
    }
    public static func sum(_ a: UnsafeBufferPointer<BFloat16>, _ b: UnsafeBufferPointer<BFloat16>,
                           into output: UnsafeMutableBufferPointer<BFloat16>, scale: BFloat16) {
        sixteenBitSum(a, b, into: output, scale: scale.float, chorus_bf16_sum)
    }
    public static func scale(_ buffer: UnsafeMutableBufferPointer<BFloat16>, by factor: BFloat16) {
        sixteenBitScale(buffer, by: factor.float, chorus_bf16_scale)
    }
}

/// A 16-bit float that gradients are narrowed to for the wire, and widened from.
public protocol NarrowFloat: CollectiveScalar {
    /// `output[i] = narrow(values[i] · scale)`, rounded to nearest even.
    static func narrow(_ values: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Self>, scale: Float)
    /// `output[i] = Float(values[i])`, exact.
    static func widen(_ values: UnsafeBufferPointer<Self>, into output: UnsafeMutableBufferPointer<Float>)
}

extension Float16: NarrowFloat {
    public static func narrow(_ values: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float16>, scale: Float) {
        sixteenBitNarrow(values, into: output, scale: scale, chorus_f32_to_f16)
    }
    public static func widen(_ values: UnsafeBufferPointer<Float16>, into output: UnsafeMutableBufferPointer<Float>) {
        sixteenBitWiden(values, into: output, chorus_f16_to_f32)
    }
}

extension BFloat16: NarrowFloat {
    public static func narrow(_ values: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<BFloat16>, scale: Float) {
        sixteenBitNarrow(values, into: output, scale: scale, chorus_f32_to_bf16)
    }
    public static func widen(_ values: UnsafeBufferPointer<BFloat16>, into output: UnsafeMutableBufferPointer<Float>) {
        sixteenBitWiden(values, into: output, chorus_bf16_to_f32)
    }
}

// The C kernels see a 16-bit format's values as their bit patterns.

private func sixteenBitSum<T>(_ a: UnsafeBufferPointer<T>, _ b: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<T>,
                              scale: Float,
                              _ kernel: (UnsafePointer<UInt16>?, UnsafePointer<UInt16>?, UnsafeMutablePointer<UInt16>?, Int, Float) -> Void) {
    precondition(MemoryLayout<T>.stride == 2 && a.count == output.count && b.count == output.count)
    guard let x = a.baseAddress, let y = b.baseAddress, let z = output.baseAddress else { return }
    x.withMemoryRebound(to: UInt16.self, capacity: output.count) { x in
        y.withMemoryRebound(to: UInt16.self, capacity: output.count) { y in
            z.withMemoryRebound(to: UInt16.self, capacity: output.count) { z in kernel(x, y, z, output.count, scale) }
        }
    }
}

private func sixteenBitScale<T>(_ buffer: UnsafeMutableBufferPointer<T>, by factor: Float,
                                _ kernel: (UnsafeMutablePointer<UInt16>?, Int, Float) -> Void) {
    precondition(MemoryLayout<T>.stride == 2)
    guard let x = buffer.baseAddress else { return }
    x.withMemoryRebound(to: UInt16.self, capacity: buffer.count) { kernel($0, buffer.count, factor) }
}

private func sixteenBitNarrow<T>(_ values: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<T>, scale: Float,
                                 _ kernel: (UnsafePointer<Float>?, UnsafeMutablePointer<UInt16>?, Int, Float) -> Void) {
    precondition(MemoryLayout<T>.stride == 2 && values.count == output.count)
    guard let x = values.baseAddress, let y = output.baseAddress else { return }
    y.withMemoryRebound(to: UInt16.self, capacity: output.count) { kernel(x, $0, values.count, scale) }
}

private func sixteenBitWiden<T>(_ values: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<Float>,
                                _ kernel: (UnsafePointer<UInt16>?, UnsafeMutablePointer<Float>?, Int) -> Void) {
    precondition(MemoryLayout<T>.stride == 2 && values.count == output.count)
    guard let x = values.baseAddress, let y = output.baseAddress else { return }
    x.withMemoryRebound(to: UInt16.self, capacity: values.count) { kernel($0, y, values.count) }
}

/// The arithmetic kept out of the communication loops (baidu-allreduce's `reduce`),
/// written over SIMD vectors of 64 bytes so the reduction keeps up with memory.
enum Kernels {
    /// `accumulator[i] = (accumulator[i] + addend[i]) * scale` (scale 1: plain add).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func add<T: BinaryFloatingPoint & SIMDScalar>(_ addend: UnsafeBufferPointer<T>, into accumulator: UnsafeMutableBufferPointer<T>,
                                         scale: T = 1) {
        precondition(addend.count == accumulator.count)
        guard let a = accumulator.baseAddress, let b = addend.baseAddress else { return }
        let n = accumulator.count
        let lanes = 64 / MemoryLayout<T>.stride
        var i = 0
        let rawA = UnsafeMutableRawPointer(a), rawB = UnsafeRawPointer(b)
        if lanes == 16 {
            i = addVectors(SIMD16<T>.self, rawA, rawB, n, scale)
        } else if lanes == 8 {
            i = addVectors(SIMD8<T>.self, rawA, rawB, n, scale)
        }
        while i < n {
            a[i] = (a[i] + b[i]) * scale
            i += 1
        }
    }

    @inline(__always)
    private static func addVectors<V: SIMD>(_: V.Type, _ a: UnsafeMutableRawPointer, _ b: UnsafeRawPointer,
                                            _ n: Int, _ scale: V.Scalar) -> Int where V.Scalar: BinaryFloatingPoint {
        let width = V.scalarCount, stride = MemoryLayout<V.Scalar>.stride * width
        var i = 0, offset = 0
        if scale == 1 {
            while i + width <= n {
                let sum = a.loadUnaligned(fromByteOffset: offset, as: V.self) + b.loadUnaligned(fromByteOffset: offset, as: V.self)
                a.storeBytes(of: sum, toByteOffset: offset, as: V.self)
                i += width
                offset += stride
            }
        } else {
            let factor = V(repeating: scale)
            while i + width <= n {
                let sum = a.loadUnaligned(fromByteOffset: offset, as: V.self) + b.loadUnaligned(fromByteOffset: offset, as: V.self)
                a.storeBytes(of: sum * factor, toByteOffset: offset, as: V.self)
                i += width
                offset += stride
            }
        }
        return i
    }

    /// `output[i] = (a[i] + b[i]) * scale`: the first addition of a many-way sum,
    /// without copying one operand into place first.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func sum<T: BinaryFloatingPoint & SIMDScalar>(_ a: UnsafeBufferPointer<T>, _ b: UnsafeBufferPointer<T>,
                                         into output: UnsafeMutableBufferPointer<T>, scale: T = 1) {
        precondition(a.count == output.count && b.count == output.count)
        guard let x = a.baseAddress, let y = b.baseAddress, let z = output.baseAddress else { return }
        let n = output.count
        var i = 0
        if MemoryLayout<T>.stride == 4 {
            i = sumVectors(SIMD16<T>.self, z, x, y, n, scale)
        } else if MemoryLayout<T>.stride == 8 {
            i = sumVectors(SIMD8<T>.self, z, x, y, n, scale)
        }
        while i < n {
            z[i] = (x[i] + y[i]) * scale
            i += 1
        }
    }

    @inline(__always)
    private static func sumVectors<V: SIMD>(_: V.Type, _ z: UnsafeMutablePointer<V.Scalar>, _ x: UnsafePointer<V.Scalar>,
                                            _ y: UnsafePointer<V.Scalar>, _ n: Int, _ scale: V.Scalar) -> Int
        where V.Scalar: BinaryFloatingPoint {
        let width = V.scalarCount
        let out = UnsafeMutableRawPointer(z), left = UnsafeRawPointer(x), right = UnsafeRawPointer(y)
        let stride = MemoryLayout<V.Scalar>.stride * width
        var i = 0, offset = 0
        let factor = V(repeating: scale)
        while i + width <= n {
            var sum = left.loadUnaligned(fromByteOffset: offset, as: V.self) + right.loadUnaligned(fromByteOffset: offset, as: V.self)
            if scale != 1 { sum *= factor }
            out.storeBytes(of: sum, toByteOffset: offset, as: V.self)
            i += width
            offset += stride
        }
        return i
    }

    /// `buffer[i] *= factor`
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func scale<T: BinaryFloatingPoint & SIMDScalar>(_ buffer: UnsafeMutableBufferPointer<T>, by factor: T) {
        guard var a = buffer.baseAddress else { return }
        for _ in 0..<buffer.count {
            a.pointee *= factor
            a += 1
        }
    }
}

/// `accumulator += addend` with the kernel every collective reduces with; public so
/// benchmarks can measure its rate (the gamma of the cost model).
public func accumulate<T: CollectiveScalar>(_ addend: UnsafeBufferPointer<T>, into accumulator: UnsafeMutableBufferPointer<T>) {
    T.add(addend, into: accumulator, scale: .one)
}
