import ArgumentParser
import ChorusCLI
import Communication
import Coordination
import Foundation
import NeuralNet
import TrainingLoop

/// `layer-bench`: where one process's training step goes, layer by layer, against
/// what this core can do.
///
/// It trains the model on consecutive batches of the training set (momentum SGD, as
/// `ddp-train` does) with one BLAS thread, times every layer's forward and backward
/// and the optimizer step, and puts the whole step's arithmetic rate next to two
/// ceilings measured in the same run: one-thread `sgemm` on square matrices (the
/// rate a dense kernel can reach on this core) and `memcpy` of a buffer larger than
/// the cache. A step's FLOPs are counted from the layers' multiply-adds: forward
/// 2·MACs per layer, backward twice that, less the input gradient of the first layer
/// with parameters, which nothing needs.
@main
struct LayerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layer-bench",
        abstract: "Time one process's training step layer by layer, against this core's sgemm and memcpy rates.")

    @OptionGroup var subject: ModelDataOptions

    @Option(help: "Images per step.")
    var batchSize = 64

    @Option(help: "Timed steps (after --warmup untimed ones).")
    var steps = 300

    @Option(help: "Untimed steps first (caches, allocator, branch predictors).")
    var warmup = 20

    @Option(help: "Size n of the n x n x n sgemm that measures the core's dense rate.")
    var gemmSize = 1024

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        guard steps >= 1, warmup >= 0 else { throw ValidationError("--steps must be at least 1 and --warmup at least 0") }
        guard gemmSize >= 16, gemmSize <= 8192 else { throw ValidationError("--gemm-size must be in 16...8192 (got \(gemmSize))") }
    }

    func run() throws {
        BLAS.setThreads(1)
        keepLargeAllocationsInHeap()
        let description = try subject.modelDescription()
        let train = try subject.datasetChoice.load(seed: 1).train
        guard train.count >= batchSize else {
            throw ValidationError("--batch-size \(batchSize) is larger than the training set (\(train.count) images)")
        }
        let model = try description.build(seed: 1)
        let optimizer = OptimizerSettings(kind: .momentum).make(learningRate: 0.01)
        let layers = model.layers.count
        var forward = [Double](repeating: 0, count: layers), backward = forward
        var loss = 0.0, update = 0.0, total = 0.0
        for step in 0..<(warmup + steps) {
            let start = (step * batchSize) % (train.count - batchSize + 1)
            let (images, labels) = train.batch(start..<(start + batchSize))
            let timed = step >= warmup
            let stepStart = MonotonicClock.seconds()
            var mark = stepStart
            func lap(_ into: inout [Double], _ layer: Int) {
                let now = MonotonicClock.seconds()
                if timed { into[layer] += now - mark }
                mark = now
            }
            let (logits, tape) = model.forward(images, training: true) { lap(&forward, $0) }
            let (_, gradient) = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels)
            let lossDone = MonotonicClock.seconds()
            if timed { loss += lossDone - mark }
            mark = lossDone
            model.parameters.zeroGradients()
            model.backward(gradient, tape: tape) { lap(&backward, $0) }
            let backwardDone = MonotonicClock.seconds()
            optimizer.step(values: model.parameters.values, gradients: model.parameters.gradients)
            let end = MonotonicClock.seconds()
            if timed {
                update += end - backwardDone
                total += end - stepStart
            }
        }
        let microsecondsPerStep = 1e6 / Double(steps)
        print("layer-bench: \(description), batch \(batchSize), \(steps) steps after \(warmup), 1 BLAS thread")
        print(pad("layer", -10) + pad("forward(us)", 13) + pad("backward(us)", 14) + pad("share", 8))
        for (index, layer) in model.layers.enumerated() {
            let share = (forward[index] + backward[index]) / total
            print(pad(layer.name, -10) + pad(decimals(forward[index] * microsecondsPerStep, 1), 13)
                  + pad(decimals(backward[index] * microsecondsPerStep, 1), 14) + pad(decimals(100 * share, 1) + "%", 8))
        }
        print(pad("loss", -10) + pad(decimals(loss * microsecondsPerStep, 1), 13) + pad("", 14) + pad(decimals(100 * loss / total, 1) + "%", 8))
        print(pad("optimizer", -10) + pad("", 13) + pad(decimals(update * microsecondsPerStep, 1), 14)
              + pad(decimals(100 * update / total, 1) + "%", 8))

        let samplesPerSecond = Double(steps * batchSize) / total
        let flopsPerSample = trainingFLOPs(model)
        let achieved = flopsPerSample * samplesPerSecond
        let gemm = sgemmRate(gemmSize), copy = memcpyRate(bytes: 64 << 20)
        print("step: \(decimals(total * microsecondsPerStep, 1)) us, \(decimals(samplesPerSecond, 0)) samples/s, "
              + "\(decimals(flopsPerSample / 1e6, 2)) MFLOP per sample: \(decimals(achieved / 1e9, 1)) GFLOP/s")
        print("this core: sgemm \(gemmSize)^3 \(decimals(gemm / 1e9, 1)) GFLOP/s, memcpy 64 MiB \(decimals(copy / 1e9, 1)) GB/s; "
              + "the step runs at \(decimals(100 * achieved / gemm, 0))% of sgemm's rate")
    }

    /// FLOPs of one training sample (see the type's comment).
    func trainingFLOPs(_ model: Sequential) -> Double {
        let firstWithParameters = model.layers.firstIndex { !$0.parameterSpecs.isEmpty } ?? 0
        var flops = 0.0
        for (index, layer) in model.layers.enumerated() {
            let forward = 2 * Double(layer.forwardMACs(for: model.shapes[index]))
            flops += forward * (index == firstWithParameters ? 2 : 3)
        }
        return flops
    }

    /// FLOP/s of one-thread C = A·B on n x n matrices: the best of five calls.
    func sgemmRate(_ n: Int) -> Double {
        let a = [Float](repeating: 0.5, count: n * n), b = a
        var c = [Float](repeating: 0, count: n * n)
        let seconds = fastestOfFive { c.withUnsafeMutableBufferPointer { c in BLAS.gemm(a, b, c.baseAddress!, m: n, n: n, k: n) } }
        return 2 * Double(n * n * n) / seconds
    }

    /// Bytes/s of copying a buffer of `bytes` into another: the best of five copies.
    func memcpyRate(bytes: Int) -> Double {
        let source = [UInt8](repeating: 1, count: bytes)
        var target = [UInt8](repeating: 0, count: bytes)
        let seconds = fastestOfFive {
            target.withUnsafeMutableBytes { target in source.withUnsafeBytes { _ = memcpy(target.baseAddress!, $0.baseAddress!, bytes) } }
        }
        return Double(bytes) / seconds
    }

    /// Seconds of the fastest of five runs of `body`: a ceiling is what the machine
    /// can do, so the run the scheduler disturbed least is the one to keep.
    func fastestOfFive(_ body: () -> Void) -> Double {
        (0..<5).map { _ in
            let start = MonotonicClock.seconds()
            body()
            return MonotonicClock.seconds() - start
        }.min()!
    }

    func decimals(_ value: Double, _ places: Int) -> String { Formatting.decimals(value, places) }
}
