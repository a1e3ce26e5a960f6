import ChorusMPI

/// The all-reduce implementations a caller can choose from.
public enum AllreduceAlgorithm: String, Sendable, CaseIterable {
    /// Chorus's ring (`ringAllreduce`).
    case ring
    /// The MPI library's own `MPI_Allreduce`: the baseline.
    case mpi
}

extension Communicator {
    /// All-reduces `buffer` in place with the chosen algorithm.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func allreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>,
                                               _ reduction: Reduction = .sum,
                                               algorithm: AllreduceAlgorithm = .ring) {
        switch algorithm {
        case .ring:
            ringAllreduce(buffer, reduction, over: self)
        case .mpi:
            guard buffer.count > 0 else { return }
            mpiAllreduce(buffer, op: .sum)
            if reduction == .average && size > 1 { Kernels.scale(buffer, by: 1 / T(size)) }
        }
    }
}
