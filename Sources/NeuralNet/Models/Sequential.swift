/// A stack of layers applied in order, with all parameters in one `FlatParameters`.
public final class Sequential {
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
        var slots: [ParameterSlot] = []
        var ranges: [Range<Int>] = []
        var offset = 0
        for (index, layer) in layers.enumerated() {
            shapes.append(try layer.outputShape(for: shapes.last!))
            let start = offset
            for spec in layer.parameterSpecs {
                slots.append(ParameterSlot(name: "\(layer.name).\(spec.name)", shape: spec.shape,
                                           offset: offset, layerIndex: index))
                offset += spec.count
            }
            ranges.append(start..<offset)
        }
        self.shapes = shapes
        self.layerRanges = ranges
        parameters = FlatParameters(slots: slots)
        for (index, layer) in layers.enumerated() {
            let range = ranges[index]
            layer.bind(ParameterView(values: parameters.values.baseAddress! + range.lowerBound,
                                     gradients: parameters.gradients.baseAddress! + range.lowerBound,
                                     count: range.count))
        }
        initialize(seed: seed)
    }

    /// Draws every parameter from its initialiser, in slot order, from one generator.
    public func initialize(seed: UInt64) {
        var generator = SeededGenerator(seed: seed, stream: 0x1417)
        var slotIndex = 0
        for layer in layers {
            for spec in layer.parameterSpecs {
                let slot = parameters.slots[slotIndex]
                slotIndex += 1
                switch spec.initializer {
                case .zeros:
                    for i in slot.range { parameters.values[i] = 0 }
                case .uniform(let bound):
                    for i in slot.range { parameters.values[i] = generator.nextFloat(bound: bound) }
                }
            }
        }
        parameters.zeroGradients()
    }

    public var outputShape: [Int] { shapes.last! }

    /// `layerDone(i)` is called after layer i's forward (for timelines).
    public func forward(_ input: Tensor, training: Bool, layerDone: ((Int) -> Void)? = nil) -> (output: Tensor, tape: Tape) {
        precondition(Array(input.shape.dropFirst()) == inputShape,
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
        var g: Tensor? = gradOutput
        for index in layers.indices.reversed() {
            let needed = index > 0 || needInputGradient
            g = layers[index].backward(g!, saved: tape.saved[index], needInputGradient: needed)
            layerDone?(index)
        }
        return g
    }

    /// Logits without keeping activations (evaluation).
    public func predict(_ input: Tensor) -> Tensor { forward(input, training: false).output }
}
