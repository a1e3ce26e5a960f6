import ChorusTesting
import Collectives
import CommunicationHooks
import DataParallel
import NeuralNet
import XCTest
@testable import GradientCompression

/// Through the engine (several buckets, overlapped on the communication thread):
/// after every step every rank holds bitwise the same parameters, whatever the
/// compressor, and the meter counts what the hook sent.
final class EngineFingerprintTests: XCTestCase {
    static func makeModel() throws -> Sequential {
        try Sequential([Linear("fc1", inputs: 30, outputs: 24), Linear("fc2", inputs: 24, outputs: 17),
                        Linear("fc3", inputs: 17, outputs: 5)], inputShape: [30], seed: 3)
    }

    func testEveryRankEndsEveryStepWithTheSameParameters() throws {
        let layers = try Self.makeModel().layers.count
        for ranks in [2, 3, 5] {
            for (name, compression) in CompressionHookTests.compressors {
                let fingerprints = InProcessGroup(size: ranks).run { member -> [[UInt32]] in
                    let model = try! Self.makeModel()
                    let configuration = DataParallelEngine.Configuration(bucketCapBytes: 2 << 10, firstBucketCapBytes: 512)
                    let engine = try! DataParallelEngine(parameters: model.parameters, communicator: member,
                                                         configuration: configuration, hook: compression.hook())
                    var steps: [[UInt32]] = []
                    for step in 1...4 {
                        for i in 0..<model.parameters.count {
                            model.parameters.gradients[i] = pseudoRandomGradient(member.rank, step, i)
                        }
                        engine.prepareForBackward()
                        for layer in (0..<layers).reversed() { engine.markLayerReady(layer) }
                        engine.finalizeBackward()
                        for i in 0..<model.parameters.count { model.parameters.values[i] -= 0.1 * model.parameters.gradients[i] }
                        steps.append(model.parameters.values.map(\.bitPattern))
                    }
                    XCTAssertGreaterThan(engine.plan.buckets.count, 1)
                    XCTAssertGreaterThan(engine.meter.payloadBytes, 0, name)
                    XCTAssertEqual(engine.meter.gradientBytes, 4 * 4 * model.parameters.count, name)
                    engine.close()
                    return steps
                }
                for rank in 1..<ranks {
                    XCTAssertEqual(fingerprints[rank], fingerprints[0], "\(name) at \(ranks) ranks: rank \(rank) drifted")
                }
            }
        }
    }
}
