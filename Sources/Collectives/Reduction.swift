import Communication

/// How the values of the ranks are combined.
public enum Reduction: String, Sendable, CaseIterable {
    /// Element-wise sum.
    case sum
    /// Element-wise sum divided by the number of ranks (gradient averaging).
    case average
}

/// The element types Chorus's collectives reduce.
public typealias CollectiveScalar = MessageScalar & BinaryFloatingPoint & SIMDScalar

/// The arithmetic kept out of the communication loops (baidu-allreduce's `reduce`),
/// written over SIMD vectors of 64 bytes so the reduction keeps up with memory.
enum Kernels {
    /// `accumulator[i] = (accumulator[i] + addend[i]) * scale` (scale 1: plain add).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func add<T: CollectiveScalar>(_ addend: UnsafeBufferPointer<T>, into accumulator: UnsafeMutableBufferPointer<T>,
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
    static func sum<T: CollectiveScalar>(_ a: UnsafeBufferPointer<T>, _ b: UnsafeBufferPointer<T>,
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
    static func scale<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, by factor: T) {
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
    Kernels.add(addend, into: accumulator)
}
