import ChorusMPI

/// How the values of the ranks are combined.
public enum Reduction: String, Sendable, CaseIterable {
    /// Element-wise sum.
    case sum
    /// Element-wise sum divided by the number of ranks (gradient averaging).
    case average
}

/// The element types Chorus's collectives reduce.
public typealias CollectiveScalar = MPIScalar & BinaryFloatingPoint & SIMDScalar

/// The arithmetic kept out of the communication loops (baidu-allreduce's `reduce`),
/// written over SIMD vectors of 64 bytes so the reduction keeps up with memory.
enum Kernels {
    /// `accumulator[i] = (accumulator[i] + addend[i]) * scale` (scale 1: plain add).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
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

    /// `buffer[i] *= factor`
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    static func scale<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, by factor: T) {
        guard var a = buffer.baseAddress else { return }
        for _ in 0..<buffer.count {
            a.pointee *= factor
            a += 1
        }
    }
}
