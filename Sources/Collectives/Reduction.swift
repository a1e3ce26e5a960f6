import ChorusMPI

/// How the values of the ranks are combined.
public enum Reduction: String, Sendable, CaseIterable {
    /// Element-wise sum.
    case sum
    /// Element-wise sum divided by the number of ranks (gradient averaging).
    case average
}

/// The element types Chorus's collectives reduce.
public typealias CollectiveScalar = MPIScalar & BinaryFloatingPoint

/// The arithmetic kept out of the communication loops (baidu-allreduce's `reduce`).
enum Kernels {
    /// `accumulator[i] += addend[i]`
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    static func add<T: CollectiveScalar>(_ addend: UnsafeBufferPointer<T>, into accumulator: UnsafeMutableBufferPointer<T>) {
        precondition(addend.count == accumulator.count)
        guard var a = accumulator.baseAddress, var b = addend.baseAddress else { return }
        for _ in 0..<accumulator.count {
            a.pointee += b.pointee
            a += 1
            b += 1
        }
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
