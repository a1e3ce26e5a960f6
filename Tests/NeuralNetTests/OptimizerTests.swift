import XCTest
@testable import NeuralNet

/// Every optimizer against PyTorch: three steps from p0 with gradients g1, g2, g3. The
/// expected values were produced by torch.optim (2.13, float64) with the same
/// hyper-parameters; Chorus computes in float32, hence the tolerance.
final class OptimizerTests: XCTestCase {
    let start: [Float] = [1.0, -2.0, 0.5]
    let gradientSteps: [[Float]] = [[0.1, -0.2, 0.3], [-0.4, 0.5, 0.05], [0.2, 0.2, -0.1]]

    func run(_ optimizer: Optimizer) -> [Float] {
        var values = start
        for step in gradientSteps {
            var gradients = step
            values.withUnsafeMutableBufferPointer { v in
                gradients.withUnsafeMutableBufferPointer { optimizer.step(values: v, gradients: $0) }
            }
        }
        return values
    }

    func check(_ optimizer: Optimizer, _ torch: [Double], file: StaticString = #filePath, line: UInt = #line) {
        let ours = run(optimizer)
        for (a, b) in zip(ours, torch) {
            XCTAssertEqual(Double(a), b, accuracy: 2e-6, "got \(ours), PyTorch \(torch)", file: file, line: line)
        }
    }

    func testSGD() { check(SGD(learningRate: 0.1), [1.01, -2.05, 0.475]) }

    func testMomentumWithWeightDecay() {
        check(SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01), [1.023292789, -2.049615578, 0.4165163695])
    }

    func testNesterov() {
        check(SGD(learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01), [1.0279334126, -2.0886751251, 0.3985892348])
    }

    func testAdamWithL2() { check(Adam(learningRate: 0.01, weightDecay: 0.01), [0.9960732282, -1.9989462865, 0.4781167903]) }

    func testAdamWDecouplesTheDecay() {
        check(Adam(learningRate: 0.01, weightDecay: 0.1, decoupledWeightDecay: true), [0.9937141663, -1.9938731487, 0.4769415092])
    }

    func testAdagrad() { check(Adagrad(learningRate: 0.1, weightDecay: 0.01), [0.9503431793, -2.0231706665, 0.412219374]) }

    func testRMSprop() { check(RMSprop(learningRate: 0.01, weightDecay: 0.01), [0.9501829319, -2.0234198217, 0.4124031479]) }

    func testSettingsBuildTheNamedOptimizer() {
        XCTAssertTrue(OptimizerSettings(kind: .adamw).make(learningRate: 1) is Adam)
        XCTAssertTrue(OptimizerSettings(kind: .nesterov).make(learningRate: 1) is SGD)
        XCTAssertTrue(OptimizerSettings(kind: .rmsprop).make(learningRate: 1) is RMSprop)
        XCTAssertEqual(Set(OptimizerKind.allCases.map(\.rawValue)),
                       ["sgd", "momentum", "nesterov", "adam", "adamw", "adagrad", "rmsprop"])
    }
}

final class LearningRateScheduleTests: XCTestCase {
    func testLinearWarmupReachesThePeakAtTheLastWarmupStep() {
        let schedule = LearningRateSchedule(peak: 0.4, warmupSteps: 4, totalSteps: 100)
        XCTAssertEqual((0..<6).map(schedule.rate(atStep:)), [0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    }

    func testCosineFallsFromThePeakToZeroAfterWarmup() {
        let schedule = LearningRateSchedule(peak: 1, warmupSteps: 10, totalSteps: 110, decay: .cosine)
        XCTAssertEqual(schedule.rate(atStep: 10), 1, accuracy: 1e-6)
        XCTAssertEqual(schedule.rate(atStep: 60), 0.5, accuracy: 1e-6)
        XCTAssertEqual(schedule.rate(atStep: 110), 0, accuracy: 1e-6)
    }

    func testStepDecayMultipliesByGammaEveryStepSize() {
        let schedule = LearningRateSchedule(peak: 1, totalSteps: 100, decay: .step(every: 30, gamma: 0.1))
        XCTAssertEqual(schedule.rate(atStep: 29), 1)
        XCTAssertEqual(schedule.rate(atStep: 30), 0.1, accuracy: 1e-7)
        XCTAssertEqual(schedule.rate(atStep: 65), 0.01, accuracy: 1e-8)
    }
}
