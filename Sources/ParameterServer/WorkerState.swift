import Datasets
import NeuralNet

/// A worker's position and measurements.
final class WorkerState {
    let sampler: DistributedSampler
    var channel: WorkerChannel!
    /// Iterations finished (the clock of its next push).
    var clock = 0
    /// Server 0's count of applied pushes, in steps, as of the last reply.
    var knownStep = 0
    var paused = false
    var iterations: Int { clock - startClock }
    var startClock = 0
    var computeSeconds = 0.0
    var straggledSeconds = 0.0
    private var order: (epoch: Int, permutation: [Int])?

    init(sampler: DistributedSampler) {
        self.sampler = sampler
    }

    /// The batch of iteration `clock`: this worker's shard of global batch
    /// `clock mod steps-per-epoch` in epoch `clock / steps-per-epoch` (a worker ahead
    /// of the others is further on in its own pass over the data).
    func batch(clock: Int, from data: LabeledImages) -> (images: Tensor, labels: [Int32]) {
        let epoch = clock / sampler.stepsPerEpoch
        if order?.epoch != epoch { order = (epoch, sampler.permutation(epoch: epoch)) }
        return data.batch(sampler.indices(step: clock % sampler.stepsPerEpoch, of: order!.permutation))
    }
}
