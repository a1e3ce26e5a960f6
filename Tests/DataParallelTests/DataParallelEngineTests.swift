import ChorusTesting
import Collectives
import Communication
import CommunicationHooks
import Foundation
import NeuralNet
import XCTest
@testable import DataParallel

/// The engine and its reducer on fake ranks: the default hook averages exactly what
/// an all-reduce would, overlapping or not; a test hook sees every bucket in plan
/// order on every rank; a dropped engine leaves no thread behind.
final class DataParallelEngineTests: XCTestCase {
    /// A model of three linear layers: three buckets at a 1 KiB cap.
    static func makeModel() throws -> Sequential {
        try Sequential([Linear("fc1", inputs: 16, outputs: 12), Linear("fc2", inputs: 12, outputs: 10),
                        Linear("fc3", inputs: 10, outputs: 4)], inputShape: [16], seed: 3)
    }

    static let configuration = DataParallelEngine.Configuration(bucketCapBytes: 1 << 10, firstBucketCapBytes: 256)

    /// Rank r's gradient element i.
    static func gradient(_ rank: Int, _ i: Int) -> Float { Float((i * 7 + rank * 5) % 23) - 11 }

    /// Runs one backward's worth of engine calls on `ranks` fake ranks with gradients
    /// set per rank; returns each rank's gradients afterwards.
    func reduce(ranks: Int, overlap: Bool, nodeSize: Int? = nil, algorithm: AllreduceAlgorithm = .auto) throws -> [[Float]] {
        let layers = try Self.makeModel().layers.count
        return InProcessGroup(size: ranks, nodeSize: nodeSize).run { rank in
            let model = try! Self.makeModel()
            var configuration = Self.configuration
            configuration.overlap = overlap
            configuration.algorithm = algorithm
            let engine = try! DataParallelEngine(parameters: model.parameters, communicator: rank, configuration: configuration)
            XCTAssertEqual(engine.plan.buckets.count, 3)
            for step in 0..<2 {
                for i in 0..<model.parameters.count { model.parameters.gradients[i] = Self.gradient(rank.rank, i) * Float(step + 1) }
                engine.prepareForBackward()
                for layer in (0..<layers).reversed() { engine.markLayerReady(layer) }
                engine.finalizeBackward()
            }
            engine.close()
            return model.parameters.gradientArray
        }
    }

    func testTheDefaultHookAveragesEveryBucketOverlappingOrNot() throws {
        // Shared memory (one node), recursive doubling (a node per rank: `auto` for
        // small buckets), the ring and the hierarchical algorithm (two nodes).
        for (ranks, nodeSize, algorithm) in [(1, nil, AllreduceAlgorithm.auto), (2, nil, .auto), (3, nil, .auto), (5, nil, .auto),
                                             (3, 1, .auto), (5, 1, .auto), (3, nil, .ring), (4, 2, .hierarchical)] {
            let overlapped = try reduce(ranks: ranks, overlap: true, nodeSize: nodeSize, algorithm: algorithm)
            let serial = try reduce(ranks: ranks, overlap: false, nodeSize: nodeSize, algorithm: algorithm)
            let count = overlapped[0].count
            // Integer-valued inputs: every summation order gives the same sum; x2 for the second step.
            let expected = (0..<count).map { i in
                Float((0..<ranks).reduce(Float(0)) { $0 + Self.gradient($1, i) } * 2) * (1 / Float(ranks))
            }
            for rank in 0..<ranks {
                XCTAssertEqual(overlapped[rank], serial[rank], "ranks \(ranks): overlap changes timing, not bits")
                for i in 0..<count { XCTAssertEqual(overlapped[rank][i], expected[i], accuracy: 1e-5, "ranks \(ranks) rank \(rank) element \(i)") }
            }
        }
    }

    /// Records what the reducer hands it, and sums instead of averaging.
    final class RecordingHook: CommunicationHook, @unchecked Sendable {
        // @unchecked Sendable: `seen` is guarded by the lock.
        private let lock = NSLock()
        private var seen: [String] = []
        var configuration: String { "recording sum" }

        func communicate(_ bucket: GradientBucket, _ context: HookContext) {
            lock.lock()
            seen.append("step \(bucket.step) bucket \(bucket.index) [\(bucket.tensors.map(\.name).joined(separator: " "))] "
                        + "at \(bucket.offset) x\(bucket.gradients.count)")
            lock.unlock()
            context.allreducer.allreduce(bucket.gradients, .sum, algorithm: context.algorithm)
        }

        var calls: [String] { lock.lock(); defer { lock.unlock() }; return seen }
    }

    func testAHookSeesEveryBucketInPlanOrderOnEveryRankAndDecidesTheResult() throws {
        try checkHookOrder(marking: [2, 1, 0])
    }

    /// A model whose backward finishes layers in another order (a skip connection)
    /// still communicates the buckets in plan order, each once all its layers are done.
    func testBucketsGoInPlanOrderWhateverOrderLayersFinishIn() throws {
        try checkHookOrder(marking: [0, 2, 1])
        try checkHookOrder(marking: [1, 0, 2])
    }

    func checkHookOrder(marking order: [Int]) throws {
        let model = try Self.makeModel()
        let ranks = InProcessGroup(size: 3).run { rank in
            let model = try! Self.makeModel()
            let hook = RecordingHook()
            let engine = try! DataParallelEngine(parameters: model.parameters, communicator: rank,
                                                 configuration: Self.configuration, hook: hook)
            for i in 0..<model.parameters.count { model.parameters.gradients[i] = Self.gradient(rank.rank, i) }
            engine.prepareForBackward()
            for layer in order { engine.markLayerReady(layer) }
            engine.finalizeBackward()
            engine.close()
            return (hook, model.parameters.gradientArray)
        }
        let slots = model.parameters.slots
        let expectedCalls = [
            "step 1 bucket 0 [fc3.weight fc3.bias] at \(slots[4].offset) x\(slots[4].count + slots[5].count)",
            "step 1 bucket 1 [fc2.weight fc2.bias] at \(slots[2].offset) x\(slots[2].count + slots[3].count)",
            "step 1 bucket 2 [fc1.weight fc1.bias] at 0 x\(slots[0].count + slots[1].count)",
        ]
        for (hook, _) in ranks { XCTAssertEqual(hook.calls, expectedCalls, "layers marked \(order)") }
        let sums = (0..<model.parameters.count).map { i in (0..<3).reduce(Float(0)) { $0 + Self.gradient($1, i) } }
        for (_, result) in ranks { XCTAssertEqual(result, sums, "the hook's sum, not the default average") }
    }

    func testRanksWithDifferentBucketPlansFailTogetherInsteadOfCorruptingSteps() {
        let errors = InProcessGroup(size: 2).run { rank -> String in
            let model = try! Self.makeModel()
            var configuration = Self.configuration
            if rank.rank == 1 { configuration.bucketCapBytes = 1 << 20 }
            do {
                _ = try DataParallelEngine(parameters: model.parameters, communicator: rank, configuration: configuration)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        for error in errors { XCTAssertTrue(error.contains("different gradient bucket plans"), error) }
    }

    /// With overlap, the buckets before the last go to the communication thread as
    /// they become ready; the last, ready when backward ends, is reduced by the thread
    /// that ends the step, and a plan of one bucket starts no thread.
    func testOnlyBucketsBeforeTheLastGoToTheCommunicationThread() throws {
        final class ThreadHook: CommunicationHook, @unchecked Sendable {
            // @unchecked Sendable: `threads` is guarded by the lock.
            private let lock = NSLock()
            private var threads: [pthread_t] = []
            var configuration: String { "thread probe" }
            func communicate(_ bucket: GradientBucket, _ context: HookContext) {
                lock.lock(); threads.append(pthread_self()); lock.unlock()
                context.allreducer.allreduce(bucket.gradients, .sum, algorithm: context.algorithm)
            }
            var seen: [pthread_t] { lock.lock(); defer { lock.unlock() }; return threads }
        }
        for (cap, buckets) in [(Self.configuration.bucketCapBytes, 3), (BucketPlan.defaultCapBytes, 1)] {
            let onCaller = InProcessGroup(size: 2).run { rank -> [Bool] in
                let model = try! Self.makeModel()
                let hook = ThreadHook()
                var configuration = Self.configuration
                configuration.bucketCapBytes = cap
                if buckets == 1 { configuration.firstBucketCapBytes = cap }
                let engine = try! DataParallelEngine(parameters: model.parameters, communicator: rank,
                                                     configuration: configuration, hook: hook)
                XCTAssertEqual(engine.plan.buckets.count, buckets)
                engine.prepareForBackward()
                for layer in [2, 1, 0] { engine.markLayerReady(layer) }
                engine.finalizeBackward()
                engine.close()
                let caller = pthread_self()
                return hook.seen.map { pthread_equal($0, caller) != 0 }
            }
            for calls in onCaller {
                XCTAssertEqual(calls, Array(repeating: false, count: buckets - 1) + [true], "\(buckets) bucket(s)")
            }
        }
    }

    func testADroppedReducerStopsItsCommunicationThread() throws {
        let probe = WeakReference<SerialWorker>()
        InProcessGroup(size: 1).run { rank in
            let model = try! Self.makeModel()
            let allreducer = Allreducer(world: rank)
            // Three buckets: a single-bucket plan needs no thread.
            let plan = BucketPlan(slots: model.parameters.slots, capBytes: Self.configuration.bucketCapBytes,
                                  firstCapBytes: Self.configuration.firstBucketCapBytes)
            XCTAssertEqual(plan.buckets.count, 3)
            let reducer = GradientReducer(plan: plan, parameters: model.parameters,
                                          hook: AveragingHook(),
                                          context: HookContext(communicator: rank, allreducer: allreducer, algorithm: .auto),
                                          overlap: true, trace: nil, watchdog: nil)
            probe.object = reducer.worker
            XCTAssertNotNil(reducer.worker)
            reducer.beginStep()
            for layer in [2, 1, 0] { reducer.layerFinished(layer) }  // every bucket queued
            // Dropped here without close() or finish(): its deinit stops the thread.
        }
        // The worker is kept alive only by its thread; once that has exited it is freed.
        let deadline = Date().addingTimeInterval(5)
        while probe.object != nil && Date() < deadline { usleep(10_000) }
        XCTAssertNil(probe.object, "the communication thread still holds its worker")
    }
}

/// A weak reference the fake ranks' threads set and the test reads.
final class WeakReference<Object: AnyObject>: @unchecked Sendable {
    // @unchecked Sendable: every access takes the lock.
    private let lock = NSLock()
    private weak var stored: Object?
    var object: Object? {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}

