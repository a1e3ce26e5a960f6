/// A model that maps a batch of inputs to one score per class: what evaluation needs
/// of a model, built-in or not.
public protocol Classifier: AnyObject {
    /// Logits for `input` (no activations kept).
    func predict(_ input: Tensor) -> Tensor
}

/// A stack of layers applied in order, with all parameters in one `FlatParameters`.
public final class Sequential: Classifier {
    public let layers: [Layer]
    /// Per-item input shape, e.g. [1, 28, 28].
    public let inputShape: [Int]
    /// Per-item shape entering each layer, then the model's output shape (layers.count + 1 entries).
    public let shapes: [[Int]]
    public let parameters: FlatParameters
    /// The range of parameter elements each layer owns (empty for layers without parameters).
    public let layerRanges: [Range<Int>]

    /// What one forward pass saved for the backward pass, one entry per layer.
    public struct Tape {
        public var saved: [Saved]
        public var byteCount: Int { saved.reduce(0) { $0 + $1.byteCount } }
    }

    /// Builds the model, checks that the shapes chain, lays the parameters out and
    /// initialises them from `seed`.
    public init(_ layers: [Layer], inputShape: [Int], seed: UInt64) throws {
        self.layers = layers
        self.inputShape = inputShape
        var shapes = [inputShape]
        for layer in layers { shapes.append(try layer.outputShape(for: shapes.last!)) }
        self.shapes = shapes
        parameters = FlatParameters(binding: layers)
        var offset = 0
        layerRanges = layers.map { layer in
            let start = offset
            offset += layer.parameterSpecs.reduce(0) { $0 + $1.count }
            return start..<offset
        }
        initialize(seed: seed)
    }

    /// Draws every parameter from its initialiser, in slot order, from one generator.
    public func initialize(seed: UInt64) {
        parameters.initialize(layers: layers, seed: seed)
    }

    public var outputShape: [Int] { shapes.last! }

    /// `layerDone(i)` is called after layer i's forward (for timelines).
    public func forward(_ input: Tensor, training: Bool, layerDone: ((Int) -> Void)? = nil) -> (output: Tensor, tape: Tape) {
        require(Array(input.shape.dropFirst()) == inputShape,
                     "model expects items of shape \(inputShape), got \(Array(input.shape.dropFirst()))")
        var x = input
        var saved: [Saved] = []
        saved.reserveCapacity(layers.count)
        for (index, layer) in layers.enumerated() {
            let (y, s) = layer.forward(x, training: training)
            saved.append(s)
            x = y
            layerDone?(index)
        }
        return (x, Tape(saved: saved))
    }

    /// Accumulates parameter gradients; returns the input gradient when asked for.
    /// `layerDone(i)` is called as soon as layer i's gradients are final, in reverse
    /// layer order: the hook a data-parallel reducer uses to start communicating early.
    @discardableResult
    public func backward(_ gradOutput: Tensor, tape: Tape, needInputGradient: Bool = false,
                         layerDone: ((Int) -> Void)? = nil) -> Tensor? {
        backward(gradOutput, saved: tape.saved, layers: layers.indices, needInputGradient: needInputGradient, layerDone: layerDone)
    }

    /// The backward of the contiguous run `range` of layers (a pipeline stage), whose
    /// forward saved `saved` (one entry per layer of the run).
    ///
    /// A layer computes its input gradient only when a layer below it in the run has
    /// parameters or the caller wants the run's input gradient; the layers below the
    /// run's first layer with parameters are not run backward at all. An MLP's first
    /// Linear sits after a Flatten: its input gradient would be a third of its backward,
    /// thrown away.
    @discardableResult
    public func backward(_ gradOutput: Tensor, saved: [Saved], layers range: Range<Int>, needInputGradient: Bool,
                         layerDone: ((Int) -> Void)? = nil) -> Tensor? {
        precondition(saved.count == range.count, "\(saved.count) saved activations for layers \(range)")
        let firstTrainable = range.first { !layerRanges[$0].isEmpty } ?? range.upperBound
        var g: Tensor? = gradOutput
        for index in range.reversed() {
            let needed = needInputGradient || index > firstTrainable
            if let output = g, needed || index >= firstTrainable {
                g = layers[index].backward(output, saved: saved[index - range.lowerBound], needInputGradient: needed)
            } else {
                g = nil
            }
            layerDone?(index)
        }
        return g
    }

    /// Multiply-adds of one training step per item, layer by layer: the forward, the
    /// weight gradient of a layer with parameters and the input gradient where
    /// `backward` computes one, plus one per output element for each pass of the
    /// element-wise work. What balancing pipeline stages weighs: forward work alone
    /// undercounts a model's later layers, whose backward has both gradients.
    public func trainingMACs() -> [Double] {
        let firstTrainable = layers.indices.first { !layerRanges[$0].isEmpty } ?? layers.count
        return layers.indices.map { i in
            let forward = Double(layers[i].forwardMACs(for: shapes[i])), outputs = Double(shapes[i + 1].reduce(1, *))
            let passes = 1.0 + (i > firstTrainable ? 1 : 0)
            return forward * (passes + (layerRanges[i].isEmpty ? 0 : 1)) + outputs * passes
        }
    }

    /// Logits without keeping activations (evaluation).
    public func predict(_ input: Tensor) -> Tensor { forward(input, training: false).output }
}
