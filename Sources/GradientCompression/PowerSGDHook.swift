import Collectives
import Communication
import CommunicationHooks
import NeuralNet

/// PowerSGD (Vogels et al. 2019; PyTorch's `powerSGD_hook`): each weight gradient,
/// viewed as a matrix M (first dimension × the rest), is replaced by a rank-R
/// approximation found with one step of power iteration, so a rank sends
/// (rows + columns)·R numbers for it instead of rows·columns.
///
/// One step, per bucket, on every rank r (M_r: its gradient plus its residual e_r):
///
///     P_r = M_r Q               Q: columns × R, the same on every rank
///     P   = Σ_r P_r             all-reduce, together with the uncompressed tensors
///     P̂   = orthonormal columns of P                     (`orthogonalizeColumns`)
///     Q_r = M_r^T P̂
///     Q̄   = (1/p) Σ_r Q_r       all-reduce
///     gradient ← P̂ Q̄^T           the same on every rank: the mean's projection
///     e_r ← M_r − P̂ Q_r^T        error feedback: what rank r did not get across
///
/// P̂ Q̄^T = (1/p) Σ_r P̂ Q_r^T: the result is exactly the mean of what the ranks
/// contributed, and each rank's contribution plus its residual is its M_r, so no
/// gradient is ever lost, only delayed (PyTorch takes e_r = M_r − P̂ Q̄^T instead,
/// which leaves the mean's error, not the rank's own, and carries a residual for
/// uncompressed tensors too). Q̄ is kept as the next step's Q (warm start).
///
/// Vectors (biases) and tensors that would not shrink by `minCompressionRatio` are
/// averaged as they are, in the same all-reduce as P. Payload per step:
/// 4·(uncompressed + Σ rows·R') + 4·Σ columns·R' through two all-reduces, with
/// R' = min(R, rows, columns) per tensor.
///
/// A bucket in which some rank has a non-finite gradient shows it in P (all ranks
/// see the same P): its gradients become NaN on every rank, so the gradient screen
/// sees the step, and its residuals and Q stay as they were, so later steps are not
/// poisoned by it. Should Q̄ overflow where P did not, the same happens and the next
/// step starts from a fresh Q.
///
/// The products are BLAS calls on the communication thread, concurrent with
/// backward's on the main thread (OpenBLAS serves concurrent callers). Every rank
/// computes P̂ Q̄^T from the same P̂ and Q̄, so the ranks' gradients are bitwise
/// equal as long as every node runs the same OpenBLAS kernel: nodes of one CPU
/// type, as a cluster partition has.
final class PowerSGDHook: CommunicationHook {
    let settings: PowerSGDSettings
    /// Steps whose buckets this hook has seen (PyTorch's `state.iter`), checkpointed.
    private var steps = 0
    private var buckets: [Int: PowerSGDBucket] = [:]
    /// State restored from a checkpoint, applied when its bucket is first seen.
    private var restored = RestoredBucketState()

    init(_ settings: PowerSGDSettings) {
        // fatalError, not precondition: a release build keeps its message.
        if settings.rank < 1 { fatalError("PowerSGD needs a rank of at least 1, got \(settings.rank)") }
        if !settings.minCompressionRatio.isFinite { fatalError("PowerSGD needs a finite minimum compression ratio") }
        self.settings = settings
    }

    private var fixedStart: Int? {
        if case .afterStep(let step) = settings.start { return step }
        return nil
    }

    var configuration: String {
        "powersgd(rank \(settings.rank), min ratio \(settings.minCompressionRatio), start \(settings.start), "
            + "error feedback \(settings.errorFeedback ? "on" : "off"), warm start \(settings.warmStart ? "on" : "off"), "
            + "seed \(settings.seed))"
    }

    /// The last step averaged uncompressed, once the run's length is known.
    private var lastAveragedStep: Int?

    func prepare(totalSteps: Int) {
        lastAveragedStep = settings.start.lastAveragedStep(totalSteps: totalSteps)
    }

    func communicate(_ bucket: GradientBucket, _ context: HookContext) {
        if bucket.index == 0 { steps += 1 }
        guard let lastAveraged = lastAveragedStep ?? fixedStart else {
            fatalError("PowerSGD starting \(settings.start) needs the run's length: call prepare(totalSteps:) before the "
                       + "first step, or start after a fixed step")
        }
        guard steps > lastAveraged else {
            context.allreducer.allreduce(bucket.gradients, .average, algorithm: context.algorithm)
            context.sent(payloadBytes: bucket.gradients.count * MemoryLayout<Float>.stride)
            return
        }
        let state = state(for: bucket)
        guard bucket.gradients.count > 0 else { return }
        compressAndReduce(bucket, state, context)
    }

    // MARK: One bucket

    private func compressAndReduce(_ bucket: GradientBucket, _ state: PowerSGDBucket, _ context: HookContext) {
        let gradients = bucket.gradients, algorithm = context.algorithm, allreducer = context.allreducer
        context.compressing(bucket) {
            if settings.errorFeedback { state.addResidual(to: gradients) }
            if !settings.warmStart || !state.hasQ { state.drawQ(seed: settings.seed, bucket: bucket.index, step: steps) }
            state.computeP(from: gradients)
        }
        state.pAndUncompressed.withUnsafeMutableBufferPointer { allreducer.allreduce($0, .sum, algorithm: algorithm) }
        // Every rank holds the same P: the same verdict on it everywhere.
        guard state.pAndUncompressed.allSatisfy(\.isFinite) else {
            for i in 0..<gradients.count { gradients[i] = .nan }
            context.sent(payloadBytes: state.pAndUncompressed.count * MemoryLayout<Float>.stride)
            return
        }
        context.compressing(bucket) { state.computeLocalQ(from: gradients) }
        // A bucket of vectors only has no Q (the same on every rank): one collective.
        if !state.q.isEmpty {
            state.q.withUnsafeMutableBufferPointer { allreducer.allreduce($0, .average, algorithm: algorithm) }
        }
        context.sent(payloadBytes: (state.pAndUncompressed.count + state.q.count) * MemoryLayout<Float>.stride)
        // Q̄ can overflow where P did not; then the next step draws a fresh Q.
        guard state.q.allSatisfy(\.isFinite) else {
            for i in 0..<gradients.count { gradients[i] = .nan }
            state.hasQ = false
            return
        }
        context.decompressing(bucket) {
            if settings.errorFeedback { state.keepResidual(of: gradients) }
            state.decompress(into: gradients, ranks: context.communicator.size)
        }
    }

    // MARK: State

    private func state(for bucket: GradientBucket) -> PowerSGDBucket {
        if let state = buckets[bucket.index] { return state }
        let layout = PowerSGDLayout(tensors: bucket.tensors, bucketOffset: bucket.offset, count: bucket.gradients.count,
                                    settings: settings)
        let state = PowerSGDBucket(layout: layout, count: bucket.gradients.count, errorFeedback: settings.errorFeedback)
        if let residual = restored.take("residual.\(bucket.index)", count: state.residual.count) { state.residual = residual }
        if let q = restored.take("q.\(bucket.index)", count: state.q.count) {
            state.q = q
            state.hasQ = true
        }
        buckets[bucket.index] = state
        return state
    }

    var state: [String: [Float]] {
        var state: [String: [Float]] = ["steps": Self.encode(steps)]
        // The start as this run resolved it: a resumed run keeps it, even with another length.
        if let lastAveragedStep { state["last_averaged_step"] = Self.encode(lastAveragedStep) }
        for (index, bucket) in buckets {
            if settings.errorFeedback { state["residual.\(index)"] = bucket.residual }
            if settings.warmStart && bucket.hasQ { state["q.\(index)"] = bucket.q }
        }
        // Restored entries of buckets not seen yet stay part of the state.
        return state.merging(restored.unclaimed) { own, _ in own }
    }

    var keepsBucketState: Bool { true }

    func restore(_ state: [String: [Float]]) throws {
        guard let counter = state["steps"], counter.count == 2 else {
            throw PowerSGDStateMissing()
        }
        steps = Self.decode(counter)
        if let start = state["last_averaged_step"], start.count == 2 { lastAveragedStep = Self.decode(start) }
        buckets = [:]
        restored = RestoredBucketState(state.filter { $0.key != "steps" && $0.key != "last_averaged_step" })
    }

    /// A count as two floats of 24 bits each, exact, and finite (checkpoints refuse
    /// non-finite tensors, which raw bit patterns could be).
    private static func encode(_ count: Int) -> [Float] { [Float(count & 0xFF_FFFF), Float(count >> 24)] }
    private static func decode(_ halves: [Float]) -> Int { Int(halves[0]) | Int(halves[1]) << 24 }
}

/// A checkpoint without PowerSGD's state resumed with PowerSGD.
struct PowerSGDStateMissing: Error, CustomStringConvertible {
    var description: String {
        "the checkpoint holds no PowerSGD state: it was written with another communication hook; resume with the compression of the run that wrote it"
    }
}

/// Which tensors of a bucket are compressed, and where their P and Q live.
struct PowerSGDLayout {
    struct Tensor {
        /// Offset of the tensor in the bucket, and its matrix view.
        let offset: Int
        let rows: Int
        let columns: Int
        /// R' = min(rows, columns, R).
        let approximationRank: Int
        /// Offsets of its P (rows × rank) and Q (columns × rank).
        let pOffset: Int
        let qOffset: Int
    }

    private(set) var compressed: [Tensor] = []
    /// Ranges of the bucket sent as they are.
    private(set) var uncompressed: [Range<Int>] = []
    private(set) var uncompressedCount = 0
    private(set) var pCount = 0
    private(set) var qCount = 0

    init(tensors: [ParameterSlot], bucketOffset: Int, count: Int, settings: PowerSGDSettings) {
        var covered = 0
        for slot in tensors.sorted(by: { $0.offset < $1.offset }) {
            let offset = slot.offset - bucketOffset
            if offset > covered { addUncompressed(covered..<offset) }
            let rows = slot.shape.first ?? 1, columns = slot.shape.count >= 2 ? slot.count / max(rows, 1) : 1
            let rank = min(rows, columns, settings.rank)
            let shrinksEnough = slot.shape.count >= 2 && rank > 0
                && Double(rows * columns) >= settings.minCompressionRatio * Double((rows + columns) * rank)
            if shrinksEnough {
                compressed.append(Tensor(offset: offset, rows: rows, columns: columns, approximationRank: rank, pOffset: pCount,
                                         qOffset: qCount))
                pCount += rows * rank
                qCount += columns * rank
            } else {
                addUncompressed(offset..<(offset + slot.count))
            }
            covered = max(covered, offset + slot.count)
        }
        if covered < count { addUncompressed(covered..<count) }
    }

    private mutating func addUncompressed(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        if let last = uncompressed.last, last.upperBound == range.lowerBound {
            uncompressed[uncompressed.count - 1] = last.lowerBound..<range.upperBound
        } else {
            uncompressed.append(range)
        }
        uncompressedCount += range.count
    }
}

/// One bucket's buffers, kept across steps, and the steps of the algorithm on them.
final class PowerSGDBucket {
    let layout: PowerSGDLayout
    /// Error feedback, one value per bucket element (zero where uncompressed).
    var residual: [Float]
    /// The warm-start Q of every compressed tensor (averaged), and this rank's own.
    var q: [Float]
    var localQ: [Float]
    var hasQ = false
    /// The first all-reduce's buffer: the uncompressed values, then every P.
    var pAndUncompressed: [Float]

    init(layout: PowerSGDLayout, count: Int, errorFeedback: Bool) {
        self.layout = layout
        residual = [Float](repeating: 0, count: errorFeedback ? count : 0)
        q = [Float](repeating: 0, count: layout.qCount)
        localQ = q
        pAndUncompressed = [Float](repeating: 0, count: layout.uncompressedCount + layout.pCount)
    }

    /// A fresh Gaussian Q, the same on every rank: seeded by the run's seed, the
    /// bucket and the step (the step only matters without warm start).
    func drawQ(seed: UInt64, bucket: Int, step: Int) {
        var generator = SeededGenerator(seed: seed &+ 0x9E37_79B9 &* UInt64(bucket + 1), stream: UInt64(step))
        for i in q.indices { q[i] = generator.nextGaussian() }
        hasQ = true
    }

    /// M_r = gradient + e_r, in the bucket.
    func addResidual(to gradients: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<gradients.count { gradients[i] += residual[i] }
    }

    /// `pAndUncompressed` = [uncompressed values | P_t = M_t Q_t for every compressed tensor].
    func computeP(from gradients: UnsafeMutableBufferPointer<Float>) {
        var cursor = 0
        for range in layout.uncompressed {
            for i in range { pAndUncompressed[cursor] = gradients[i]; cursor += 1 }
        }
        pAndUncompressed.withUnsafeMutableBufferPointer { buffer in
            q.withUnsafeBufferPointer { q in
                for t in layout.compressed {
                    BLAS.gemm(gradients.baseAddress! + t.offset, q.baseAddress! + t.qOffset, p(t, buffer), m: t.rows, n: t.approximationRank, k: t.columns)
                }
            }
        }
    }

    /// P̂_t = orthonormal columns of the summed P_t; Q_r,t = M_t^T P̂_t, into `localQ`
    /// and `q` (which the all-reduce then averages).
    func computeLocalQ(from gradients: UnsafeMutableBufferPointer<Float>) {
        pAndUncompressed.withUnsafeMutableBufferPointer { buffer in
            for t in layout.compressed {
                orthogonalizeColumns(UnsafeMutableBufferPointer(start: p(t, buffer), count: t.rows * t.approximationRank), rows: t.rows, columns: t.approximationRank)
            }
            localQ.withUnsafeMutableBufferPointer { q in
                for t in layout.compressed {
                    BLAS.gemm(gradients.baseAddress! + t.offset, transposeA: true, p(t, buffer), q.baseAddress! + t.qOffset,
                              m: t.columns, n: t.approximationRank, k: t.rows)
                }
            }
        }
        q.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: localQ) }
    }

    /// e_r = M_r − P̂ Q_r^T for compressed tensors, zero for the others: before the
    /// bucket's M_r is overwritten.
    func keepResidual(of gradients: UnsafeMutableBufferPointer<Float>) {
        pAndUncompressed.withUnsafeMutableBufferPointer { buffer in
            residual.withUnsafeMutableBufferPointer { residual in
                localQ.withUnsafeBufferPointer { q in
                    for range in layout.uncompressed { for i in range { residual[i] = 0 } }
                    for t in layout.compressed {
                        let matrix = residual.baseAddress! + t.offset
                        matrix.update(from: gradients.baseAddress! + t.offset, count: t.rows * t.columns)
                        BLAS.gemm(p(t, buffer), q.baseAddress! + t.qOffset, transposeB: true, matrix,
                                  m: t.rows, n: t.columns, k: t.approximationRank, alpha: -1, beta: 1)
                    }
                }
            }
        }
    }

    /// gradient_t = P̂_t Q̄_t^T; uncompressed tensors: their sum over `ranks`, averaged.
    func decompress(into gradients: UnsafeMutableBufferPointer<Float>, ranks: Int) {
        pAndUncompressed.withUnsafeMutableBufferPointer { buffer in
            q.withUnsafeBufferPointer { q in
                for t in layout.compressed {
                    BLAS.gemm(p(t, buffer), q.baseAddress! + t.qOffset, transposeB: true, gradients.baseAddress! + t.offset,
                              m: t.rows, n: t.columns, k: t.approximationRank)
                }
            }
            let scale = 1 / Float(ranks)
            var cursor = 0
            for range in layout.uncompressed {
                for i in range { gradients[i] = buffer[cursor] * scale; cursor += 1 }
            }
        }
    }

    /// Where tensor t's P lives in `pAndUncompressed` (bound as `buffer`).
    private func p(_ t: PowerSGDLayout.Tensor, _ buffer: UnsafeMutableBufferPointer<Float>) -> UnsafeMutablePointer<Float> {
        buffer.baseAddress! + layout.uncompressedCount + t.pOffset
    }
}
