import ChorusTesting
import Collectives
import CommunicationHooks
import Communication
import NeuralNet
@testable import DataParallel
@testable import GradientCompression

/// One bucket of consecutive tensors, communicated step after step on fake ranks.
struct HookHarness {
    let ranks: Int
    let shapes: [[Int]]
    /// Ranks per node of the fake group (nil: one node, so the shared window is used).
    var nodeSize: Int? = nil
    var algorithm: AllreduceAlgorithm = .auto

    var slots: [ParameterSlot] {
        var offset = 0
        return shapes.enumerated().map { index, shape in
            defer { offset += shape.reduce(1, *) }
            return ParameterSlot(name: "t\(index)", shape: shape, offset: offset, layerIndex: index)
        }
    }

    var count: Int { shapes.map { $0.reduce(1, *) }.reduce(0, +) }

    /// What one rank saw at one step: its input, the result and its hook's state after.
    struct Record: Sendable {
        let input: [Float]
        let output: [Float]
        let state: [String: [Float]]
    }

    /// Runs `steps` steps; rank r's gradient element i at step s is `gradient(r, s, i)`.
    /// `hook(r)` makes rank r's hook (or reuses one passed in through `restore`).
    /// Each step also communicates an empty bucket (index 1), as a model whose layer
    /// has no gradients would. Returns records[rank][step].
    func run(steps: Int, hook makeHook: @escaping @Sendable (Int) -> CommunicationHook,
             restoring states: [[String: [Float]]]? = nil, firstStep: Int = 1,
             gradient: @escaping @Sendable (_ rank: Int, _ step: Int, _ index: Int) -> Float) -> [[Record]] {
        let slots = self.slots, count = self.count, algorithm = self.algorithm
        return InProcessGroup(size: ranks, nodeSize: nodeSize).run { member in
            let hook = makeHook(member.rank)
            if let states { try! hook.restore(states[member.rank]) }
            let allreducer = Allreducer(world: member)
            let context = HookContext(communicator: member, allreducer: allreducer, algorithm: algorithm)
            var records: [Record] = []
            var empty: [Float] = []
            for step in firstStep..<(firstStep + steps) {
                var values = (0..<count).map { gradient(member.rank, step, $0) }
                let input = values
                values.withUnsafeMutableBufferPointer { buffer in
                    hook.communicate(GradientBucket(index: 0, gradients: buffer, offset: 0, tensors: slots, step: step), context)
                }
                empty.withUnsafeMutableBufferPointer { buffer in
                    hook.communicate(GradientBucket(index: 1, gradients: buffer, offset: count, tensors: [], step: step), context)
                }
                records.append(Record(input: input, output: values, state: hook.state))
            }
            allreducer.release()
            return records
        }
    }
}

/// A reproducible gradient: rank, step and index hashed into [-1, 1).
@Sendable func pseudoRandomGradient(_ rank: Int, _ step: Int, _ index: Int) -> Float {
    var generator = SeededGenerator(seed: UInt64(rank * 1_000 + step), stream: UInt64(index))
    return generator.nextFloat(bound: 1)
}

func hookFactory(_ compression: Compression) -> @Sendable (Int) -> CommunicationHook {
    { _ in compression.hook() }
}

func powerSGD(rank: Int, startStep: Int = 0, errorFeedback: Bool = true, warmStart: Bool = true) -> Compression {
    var settings = PowerSGDSettings(rank: rank)
    settings.start = .afterStep(startStep)
    settings.errorFeedback = errorFeedback
    settings.warmStart = warmStart
    settings.seed = 7
    return .powerSGD(settings)
}

func topK(_ fraction: Double) -> Compression { .topK(TopKSettings(fraction: fraction)) }
