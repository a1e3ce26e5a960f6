import NeuralNet

/// One pipeline stage's slice of the model: a contiguous run of its layers, and the
/// matching contiguous range of the flat parameter buffers (layers own consecutive
/// parameter ranges, so a stage's parameters are one slice).
struct StageRunner {
    let model: Sequential
    let layers: Range<Int>

    /// Per-item shapes entering and leaving the stage.
    var inputShape: [Int] { model.shapes[layers.lowerBound] }
    var outputShape: [Int] { model.shapes[layers.upperBound] }

    /// This stage's elements of `FlatParameters.values` / `.gradients`.
    var parameterRange: Range<Int> {
        model.layerRanges[layers.lowerBound].lowerBound..<model.layerRanges[layers.upperBound - 1].upperBound
    }

    func forward(_ input: Tensor, training: Bool = true) -> (output: Tensor, saved: [Saved]) {
        var x = input
        var saved: [Saved] = []
        saved.reserveCapacity(layers.count)
        for index in layers {
            let (y, s) = model.layers[index].forward(x, training: training)
            saved.append(s)
            x = y
        }
        return (x, saved)
    }

    /// Accumulates this stage's parameter gradients; returns the input gradient when
    /// the previous stage needs it.
    func backward(_ gradOutput: Tensor, saved: [Saved], needInputGradient: Bool) -> Tensor? {
        model.backward(gradOutput, saved: saved, layers: layers, needInputGradient: needInputGradient)
    }
}
