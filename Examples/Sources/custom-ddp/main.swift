import ChorusMPI
import DataParallel
import Datasets
import Foundation
import NeuralNet
import TrainingLoop

// A custom training loop around Chorus's data-parallel engine, as one would wrap a
// model in PyTorch's DistributedDataParallel: `mpirun -n 2 custom-ddp [steps]`.
let world = MPIRuntime.initialize(requiring: .multiple, because: "the engine communicates on its own thread")
let steps = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 300
let data = try SyntheticImages.make(trainCount: 8_192, testCount: 2_048, seed: 7)
let model = SkipNet(inputs: 28 * 28, width: 64, classes: 10, seed: 1)
let sampler = try DistributedSampler(sampleCount: data.train.count, ranks: world.size, rank: world.rank,
                                     batchPerRank: 64 / world.size, seed: 3)
let optimizer = OptimizerSettings(kind: .momentum, momentum: 0.9).make(learningRate: 0.05)
let loss = SoftmaxCrossEntropyLoss()
let engine = try DataParallelEngine(parameters: model.parameters, communicator: world)
engine.broadcastParameters()                      // every rank starts from rank 0's values

var order = sampler.permutation(epoch: 0), epoch = 0, firstLoss = Double.nan, lastLoss = Double.nan
for step in 0..<steps {
    if step > 0 && step % sampler.stepsPerEpoch == 0 { epoch += 1; order = sampler.permutation(epoch: epoch) }
    let (images, labels) = data.train.batch(sampler.indices(step: step % sampler.stepsPerEpoch, of: order))
    model.parameters.zeroGradients()
    let (logits, tape) = model.forward(images)
    let (value, gradient) = loss.lossAndGradient(logits: logits, labels: labels)
    engine.prepareForBackward()
    model.backward(gradient, tape: tape) { engine.markLayerReady($0) }
    engine.finalizeBackward()                     // gradients averaged over the ranks
    optimizer.step(values: model.parameters.values, gradients: model.parameters.gradients)
    let mean = world.allreduce(value, op: .sum) / Double(world.size)
    if step == 0 { firstLoss = mean }
    lastLoss = mean
    if world.rank == 0 && (step + 1) % 100 == 0 { print("step \(step + 1): loss \(String(format: "%.4f", mean))") }
}
let accuracy = evaluateAccuracy(model, on: data.test, over: world)
engine.close()
if world.rank == 0 {
    print("custom-ddp: \(world.size) ranks, \(steps) steps, loss \(String(format: "%.3f", firstLoss)) -> "
          + "\(String(format: "%.3f", lastLoss)), test accuracy \(String(format: "%.1f", accuracy * 100))%")
    print("parameter checksum \(String(format: "%.6e", model.parameters.valueArray.reduce(0.0) { $0 + Double($1) * Double($1) }))")
}
MPIRuntime.finalize()
