import Collectives
import Communication
import CommunicationHooks

/// Gradients all-reduced in a 16-bit format (PyTorch's `fp16_compress_hook` and
/// `bf16_compress_hook`, Horovod's `Compression.fp16`): half the bytes on the wire.
///
///     compress:    narrow[i] = round(g[i] · (1/p))    (in float32, then rounded to the narrow type)
///     all-reduce:  Σ over ranks, narrow on the wire;  every addition in float32,
///                  rounded once to the narrow type    (`CollectiveScalar`)
///     decompress:  g[i] = Float(narrow[i])
///
/// Dividing before the sum, as PyTorch does, keeps the partial sums at the scale of
/// one gradient: float16 overflows above 65,504, and a sum of p gradients would get
/// there p times sooner. The price is float16's lower end: below 6·10⁻⁵ values lose
/// precision (subnormals) and below 3·10⁻⁸ they round to zero (bfloat16 keeps
/// float32's range with 3 significant digits instead of 4).
/// Every rank ends with bitwise the same gradients, because the all-reduce does.
/// Stateless: nothing to checkpoint.
final class NarrowPrecisionHook<Narrow: NarrowFloat>: CommunicationHook {
    let name: String
    /// Reused across buckets and steps (one bucket at a time is communicated).
    private var buffer: [Narrow] = []

    init(name: String) { self.name = name }

    var configuration: String { name }

    func communicate(_ bucket: GradientBucket, _ context: HookContext) {
        let n = bucket.gradients.count, gradients = bucket.gradients
        if buffer.count < n { buffer = [Narrow](repeating: .one, count: n) }
        let scale = 1 / Float(context.communicator.size)
        buffer.withUnsafeMutableBufferPointer { storage in
            let values = UnsafeMutableBufferPointer(rebasing: storage[0..<n])
            context.compressing(bucket) { Narrow.narrow(UnsafeBufferPointer(gradients), into: values, scale: scale) }
            context.allreducer.allreduce(values, .sum, algorithm: context.algorithm)
            context.sent(payloadBytes: n * MemoryLayout<Narrow>.stride)
            context.decompressing(bucket) { Narrow.widen(UnsafeBufferPointer(values), into: gradients) }
        }
    }
}
