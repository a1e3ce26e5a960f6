import Communication
import CommunicationHooks

/// How a trainer compresses the gradients it all-reduces (the data-parallel buckets,
/// a pipeline stage's replicas), in the library's terms; each choice is a
/// communication hook (`hook()`), so the reducer is never forked.
///
/// Payload each rank hands to the collectives per step for n gradient elements over
/// p ranks, and what a ring then sends (2(p−1)/p of its buffer; below 128 KiB `auto`
/// takes recursive doubling, ⌈log2 p⌉ times the buffer; docs/compression.md):
///
///     none           2(p−1)/p · 4n
///     fp16, bf16     2(p−1)/p · 2n
///     powersgd:R     2(p−1)/p · 4 · (Σ_t (rows_t + cols_t)·R + uncompressed)
///     topk:F         (p−1) · 8·⌈F·n⌉ per bucket (an all-gather of index/value pairs)
public enum Compression: Sendable, Equatable, CustomStringConvertible {
    case none
    case float16
    case bfloat16
    case powerSGD(PowerSGDSettings)
    case topK(TopKSettings)

    /// A new hook for one engine (hooks keep per-rank state; never share one).
    public func hook() -> CommunicationHook {
        switch self {
        case .none: AveragingHook()
        case .float16: NarrowPrecisionHook<Float16>(name: "fp16")
        case .bfloat16: NarrowPrecisionHook<BFloat16>(name: "bf16")
        case .powerSGD(let settings): PowerSGDHook(settings)
        case .topK(let settings): TopKHook(settings)
        }
    }

    /// Whether the transport's own all-reduce (MPI's) can carry it: MPI has no
    /// half-precision sum.
    public var needsChorusAllreduce: Bool {
        switch self {
        case .float16, .bfloat16: true
        default: false
        }
    }

    public var description: String { hook().configuration }
}
