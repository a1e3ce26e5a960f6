import ChorusMPI
import Foundation
import NeuralNet

#if canImport(Glibc)
import Glibc
#endif

/// Helpers both trainers (data-parallel and pipeline) use.

/// One BLAS thread per core this rank can call its own: ranks sharing a node split its
/// cores instead of oversubscribing them. The real node (ranks sharing memory), not a
/// simulated grouping, decides how many ranks compete for the cores. Collective.
func configureBLASThreads(requested: Int?, world: Communicator) {
    let local = world.splitByNode().size
    BLAS.setThreads(requested ?? max(1, onlineCores() / local))
}

func onlineCores() -> Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

/// The first parameter tensor in `range` (of the flat buffer) with a NaN or infinite
/// gradient, if any. A scan of the exponent bits, which vectorises: a few ms for 10 M
/// parameters, so it can run every step.
func firstNonFiniteGradient(_ parameters: FlatParameters, in range: Range<Int>) -> ParameterSlot? {
    let bits = UnsafeRawPointer(parameters.gradients.baseAddress!).bindMemory(to: UInt32.self, capacity: parameters.count)
    var any: UInt32 = 0
    for i in range { any |= (bits[i] & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0 }
    guard any != 0 else { return nil }
    return parameters.slots.first { slot in
        slot.range.overlaps(range) && slot.range.contains { !parameters.gradients[$0].isFinite }
    }
}

/// `1.2 MiB`, `340 KiB`, `96 B`.
func formatBytes(_ bytes: Int) -> String {
    if bytes >= 1 << 20 { return format(Double(bytes) / Double(1 << 20), 1) + " MiB" }
    if bytes >= 1 << 10 { return format(Double(bytes) / Double(1 << 10), 1) + " KiB" }
    return "\(bytes) B"
}

/// `value` with a fixed number of decimals.
func format(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }
