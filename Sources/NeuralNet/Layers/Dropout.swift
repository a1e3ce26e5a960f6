/// Inverted dropout: while training, zeroes each element with probability `rate` and
/// scales the survivors by 1/(1 - rate), so inference is the identity.
///
/// The layer draws its masks from its own seeded generator; give each rank a
/// different seed (`reseed`) so ranks do not drop the same units.
public final class Dropout: Layer {
    public let name: String
    public let rate: Float
    private var generator: SeededGenerator

    public init(_ name: String = "dropout", rate: Float, seed: UInt64 = 0) {
        require(rate >= 0 && rate < 1, "dropout rate must be in [0, 1)")
        self.name = name
        self.rate = rate
        self.generator = SeededGenerator(seed: seed, stream: 0xD20)
    }

    public func reseed(_ seed: UInt64) { generator = SeededGenerator(seed: seed, stream: 0xD20) }

    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(_ input: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        guard training && rate > 0 else { return (input, Saved()) }
        let scale = 1 / (1 - rate)
        let mask = Tensor(shape: input.shape) { m in
            for i in 0..<m.count { m[i] = generator.nextUnitFloat() < rate ? 0 : scale }
        }
        let output = Tensor(shape: input.shape) { y in
            input.storage.withUnsafeBufferPointer { x in
                mask.storage.withUnsafeBufferPointer { m in
                    for i in 0..<x.count { y[i] = x[i] * m[i] }
                }
            }
        }
        return (output, Saved(tensors: [mask]))
    }

    public func backward(_ gradOutput: Tensor, saved: Saved, needInputGradient: Bool) -> Tensor? {
        guard needInputGradient else { return nil }
        guard let mask = saved.tensors.first else { return gradOutput }
        return Tensor(shape: gradOutput.shape) { dx in
            gradOutput.storage.withUnsafeBufferPointer { dy in
                mask.storage.withUnsafeBufferPointer { m in
                    for i in 0..<dy.count { dx[i] = dy[i] * m[i] }
                }
            }
        }
    }
}
