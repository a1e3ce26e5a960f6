import NeuralNet

/// A generated, learnable stand-in for Fashion-MNIST with the same shapes: each class
/// has a random smooth prototype image; a sample is its class prototype plus noise.
/// The same seed gives the same data on every rank.
public enum SyntheticImages {
    public static func make(trainCount: Int = 60_000, testCount: Int = 10_000, imageShape: [Int] = [1, 28, 28],
                            classes: Int = 10, seed: UInt64 = 1234) throws -> DatasetSplits {
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
        func split(_ count: Int) throws -> LabeledImages {
            var pixels = [UInt8](repeating: 0, count: count * size)
            var labels = [UInt8](repeating: 0, count: count)
            for i in 0..<count {
                let label = Int(generator.next() % UInt64(classes))
                labels[i] = UInt8(label)
                for k in 0..<size {
                    let v = prototypes[label][k] + 0.35 * generator.nextGaussian()
                    pixels[i * size + k] = UInt8(max(0, min(255, (v * 255).rounded())))
                }
            }
            return try LabeledImages(pixels: pixels, labels: labels, imageShape: imageShape, classes: classes)
        }
        return DatasetSplits(name: "synthetic", train: try split(trainCount), test: try split(testCount))
    }
}
