import NeuralNet

/// x / (1 + |x|), element-wise: a layer Chorus does not have, written against its
/// `Layer` protocol (forward returns what backward needs; no parameters).
final class Softsign: Layer {
    let name: String

    init(_ name: String) { self.name = name }

    func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    func forward(_ input: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        let output = Tensor(shape: input.shape) { y in
            for i in 0..<input.count { y[i] = input.storage[i] / (1 + abs(input.storage[i])) }
        }
        return (output, Saved(tensors: [input]))
    }

    /// d/dx x / (1 + |x|) = 1 / (1 + |x|)².
    func backward(_ gradOutput: Tensor, saved: Saved, needInputGradient: Bool) -> Tensor? {
        guard needInputGradient else { return nil }
        let input = saved.tensors[0]
        return Tensor(shape: input.shape) { dx in
            for i in 0..<input.count {
                let d = 1 + abs(input.storage[i])
                dx[i] = gradOutput.storage[i] / (d * d)
            }
        }
    }
}

/// A model that is not a `Sequential`: two linear layers around a softsign and a
/// skip connection from the hidden layer to the output, with its parameters laid out
/// by `FlatParameters(binding:)` so Chorus's engine can bucket them.
final class SkipNet: Classifier {
    let hidden: Linear, activation: Softsign, output: Linear, skip: Linear
    let parameters: FlatParameters
    var layers: [Layer] { [hidden, activation, output, skip] }

    init(inputs: Int, width: Int, classes: Int, seed: UInt64) {
        hidden = Linear("hidden", inputs: inputs, outputs: width)
        activation = Softsign("softsign")
        output = Linear("output", inputs: width, outputs: classes)
        skip = Linear("skip", inputs: width, outputs: classes)
        parameters = FlatParameters(binding: [hidden, activation, output, skip])
        parameters.initialize(layers: layers, seed: seed)
    }

    struct Tape { let saved: [Saved] }

    func forward(_ images: Tensor) -> (logits: Tensor, tape: Tape) {
        let x = images.reshaped([images.batch, images.itemCount])
        let (h, s0) = hidden.forward(x, training: true)
        let (a, s1) = activation.forward(h, training: true)
        let (y, s2) = output.forward(a, training: true)
        let (z, s3) = skip.forward(h, training: true)
        let logits = Tensor(shape: y.shape) { out in for i in 0..<y.count { out[i] = y.storage[i] + z.storage[i] } }
        return (logits, Tape(saved: [s0, s1, s2, s3]))
    }

    /// Backward in reverse, telling `layerDone` (the engine) as each layer's gradients are final.
    func backward(_ gradient: Tensor, tape: Tape, layerDone: (Int) -> Void) {
        let gradSkip = skip.backward(gradient, saved: tape.saved[3], needInputGradient: true)!
        layerDone(3)
        let gradA = output.backward(gradient, saved: tape.saved[2], needInputGradient: true)!
        layerDone(2)
        var gradH = activation.backward(gradA, saved: tape.saved[1], needInputGradient: true)!
        for i in 0..<gradH.count { gradH.storage[i] += gradSkip.storage[i] }
        _ = hidden.backward(gradH, saved: tape.saved[0], needInputGradient: false)
        layerDone(0)
    }

    func predict(_ input: Tensor) -> Tensor { forward(input).logits }
}
