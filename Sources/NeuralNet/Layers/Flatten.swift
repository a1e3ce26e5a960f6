/// Collapses every dimension but the batch into one.
public final class Flatten: Layer {
    public let name: String

    public init(_ name: String = "flatten") { self.name = name }

    public func outputShape(for inputShape: [Int]) throws -> [Int] { [inputShape.reduce(1, *)] }

    public func forward(_ input: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        (input.reshaped([input.batch, input.itemCount]), Saved(inputShape: input.shape))
    }

    public func backward(_ gradOutput: Tensor, saved: Saved, needInputGradient: Bool) -> Tensor? {
        needInputGradient ? gradOutput.reshaped(saved.inputShape) : nil
    }
}
