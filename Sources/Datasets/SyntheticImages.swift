import Foundation
import NeuralNet

/// A generated, learnable stand-in for Fashion-MNIST with the same shapes: each class
/// has a random smooth prototype image; a sample is its class prototype plus noise.
/// The same seed gives the same data on every rank.
public enum SyntheticImages {
    public static func make(trainCount: Int = 60_000, testCount: Int = 10_000, imageShape: [Int] = [1, 28, 28],
                            classes: Int = 10, seed: UInt64 = 1234) throws -> DatasetSplits {
        let key = Key(trainCount: trainCount, testCount: testCount, imageShape: imageShape, classes: classes, seed: seed)
        return try latest.splits(for: key) {
            try generate(trainCount: trainCount, testCount: testCount, imageShape: imageShape, classes: classes, seed: seed)
        }
    }

    /// The last set made, for the next caller asking for the same one: ranks simulated
    /// by threads in one process (tests, a search's trials) all load the same data,
    /// and generating 70,000 images costs seconds. One set at most, shared copy-on-write;
    /// callers arriving while it is made wait for it instead of making their own.
    private static let latest = Latest()

    private struct Key: Equatable {
        let trainCount: Int, testCount: Int, imageShape: [Int], classes: Int, seed: UInt64
    }

    private final class Latest: @unchecked Sendable {
        private let lock = NSLock()
        private var entry: (key: Key, splits: DatasetSplits)?

        func splits(for key: Key, make: () throws -> DatasetSplits) rethrows -> DatasetSplits {
            try lock.withLock {
                if let entry, entry.key == key { return entry.splits }
                let made = try make()
                entry = (key, made)
                return made
            }
        }
    }

    private static func generate(trainCount: Int, testCount: Int, imageShape: [Int], classes: Int,
                                 seed: UInt64) throws -> DatasetSplits {
        var generator = SeededGenerator(seed: seed, stream: 0x5A)
        let size = imageShape.reduce(1, *)
        let prototypes: [[Float]] = (0..<classes).map { _ in
            // Sums of a few random bumps: smooth, distinct images in [0, 1].
            let (h, w) = (imageShape[imageShape.count - 2], imageShape[imageShape.count - 1])
            let bumps = (0..<4).map { _ in (Float(h) * generator.nextUnitFloat(), Float(w) * generator.nextUnitFloat(),
                                            2 + 4 * generator.nextUnitFloat()) }
            return (0..<size).map { k in
                let y = Float((k % (h * w)) / w), x = Float(k % w)
                let v = bumps.reduce(Float(0)) { acc, b in
                    let d2 = (y - b.0) * (y - b.0) + (x - b.1) * (x - b.1)
                    return acc + Float(1) / (1 + d2 / (b.2 * b.2))
                }
                return min(v, 1)
            }
        }
        // The noise comes from a table of 4,096 normal draws (σ = 0.35 of the range), 12
        // random bits picking each pixel's, so one 64-bit draw serves five pixels: once
        // rounded to bytes it looks like fresh draws, and it is an order of magnitude
        // faster than Box-Muller per pixel (70,000 images took 3 s, before every test run).
        let noise = (0..<4_096).map { _ in 0.35 * 255 * generator.nextGaussian() }
        let scaled = prototypes.map { $0.map { $0 * 255 } }
        func split(_ count: Int) throws -> LabeledImages {
            var pixels = [UInt8](repeating: 0, count: count * size)
            var labels = [UInt8](repeating: 0, count: count)
            pixels.withUnsafeMutableBufferPointer { pixels in
                noise.withUnsafeBufferPointer { noise in
                    for i in 0..<count {
                        let label = Int(generator.next() % UInt64(classes))
                        labels[i] = UInt8(label)
                        scaled[label].withUnsafeBufferPointer { prototype in
                            var bits: UInt64 = 0, left = 0
                            for k in 0..<size {
                                if left == 0 { bits = generator.next(); left = 5 }
                                let v = prototype[k] + noise[Int(bits & 4_095)]
                                bits >>= 12
                                left -= 1
                                pixels[i * size + k] = UInt8(max(0, min(255, v.rounded())))
                            }
                        }
                    }
                }
            }
            return try LabeledImages(pixels: pixels, labels: labels, imageShape: imageShape, classes: classes)
        }
        return DatasetSplits(name: "synthetic", train: try split(trainCount), test: try split(testCount))
    }
}
