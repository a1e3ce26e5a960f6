/// How a parameter tensor is initialised.
public enum Initializer: Sendable, Equatable {
    /// Uniform in [-bound, bound]; PyTorch's default for Linear and Conv2d weights and
    /// biases uses bound = 1/sqrt(fan_in), which is what the models here use.
    case uniform(bound: Float)
    case zeros
}

/// A parameter tensor a layer declares: name within the layer, shape, initialiser.
public struct ParameterSpec: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let initializer: Initializer

    public init(name: String, shape: [Int], initializer: Initializer) {
        self.name = name
        self.shape = shape
        self.initializer = initializer
    }

    public var count: Int { shape.reduce(1, *) }
}

/// Where one named parameter tensor lives in the flat buffers.
public struct ParameterSlot: Sendable, Equatable {
    /// Full name, `layer.parameter` (e.g. `conv1.weight`), as in the model file.
    public let name: String
    public let shape: [Int]
    /// Offset in elements into `FlatParameters.values` and `.gradients`.
    public let offset: Int
    /// Index of the owning layer in the model.
    public let layerIndex: Int

    public init(name: String, shape: [Int], offset: Int, layerIndex: Int) {
        require(offset >= 0 && shape.allSatisfy { $0 >= 0 }, "a parameter slot needs a non-negative offset and shape")
        self.name = name
        self.shape = shape
        self.offset = offset
        self.layerIndex = layerIndex
    }

    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }
}

/// All of a model's parameters in one contiguous buffer, and their gradients in a
/// second one with the same layout: layer order, and within a layer in declaration
/// order (weight before bias).
///
/// One buffer means one message for a whole-model all-reduce, a bucket is just a
/// range, and a model file is a walk over the slots. Layers hold pointers into these
/// buffers, which is why this is a class that owns (and never reallocates) them.
public final class FlatParameters: @unchecked Sendable {
    // @unchecked Sendable: the buffers' addresses never change; their contents are
    // written by one thread at a time by protocol (backward and the optimizer on the
    // training thread; a gradient bucket by the communication thread only between
    // `prepareForBackward` and `finalizeBackward`, which order the hand-over).
    public let slots: [ParameterSlot]
    public let values: UnsafeMutableBufferPointer<Float>
    public let gradients: UnsafeMutableBufferPointer<Float>

    /// Buffers for `slots`, which must tile 0..<count in order without gaps.
    public init(slots: [ParameterSlot]) {
        var next = 0
        var names = Set<String>()
        for slot in slots {
            // fatalError, not precondition: misuse of a public API, whose message a
            // release build would otherwise drop.
            if slot.offset != next {
                fatalError("parameter \(slot.name) starts at \(slot.offset), expected \(next): slots must be contiguous and in order")
            }
            if !names.insert(slot.name).inserted {
                fatalError("two parameters are named \(slot.name): give the layers distinct names (model files key tensors by name)")
            }
            next += slot.count
        }
        self.slots = slots
        let count = next
        values = .allocate(capacity: count)
        values.initialize(repeating: 0)
        gradients = .allocate(capacity: count)
        gradients.initialize(repeating: 0)
    }

    deinit {
        values.deallocate()
        gradients.deallocate()
    }

    public var count: Int { values.count }

    public func zeroGradients() {
        gradients.update(repeating: 0)
    }

    public func slot(named name: String) -> ParameterSlot? { slots.first { $0.name == name } }

    /// A copy of the values (for tests and files).
    public var valueArray: [Float] { Array(values) }
    public var gradientArray: [Float] { Array(gradients) }

    public func setValues(_ source: [Float]) {
        precondition(source.count == count)
        _ = values.update(fromContentsOf: source)
    }
}

extension FlatParameters {
    /// Lays out the parameters of `layers` in order (layer order, and within a layer
    /// in declaration order), names them `layer.parameter`, and gives every layer its
    /// window (`bind`): what any model made of `Layer`s needs, `Sequential` or not.
    /// Values start at zero; initialise them with `initialize(layers:seed:)`.
    public convenience init(binding layers: [Layer]) {
        var slots: [ParameterSlot] = []
        var offset = 0
        for (index, layer) in layers.enumerated() {
            for spec in layer.parameterSpecs {
                slots.append(ParameterSlot(name: "\(layer.name).\(spec.name)", shape: spec.shape, offset: offset, layerIndex: index))
                offset += spec.count
            }
        }
        self.init(slots: slots)
        for (index, layer) in layers.enumerated() {
            let own = slots.filter { $0.layerIndex == index }
            let start = own.first?.offset ?? 0, count = own.reduce(0) { $0 + $1.count }
            layer.bind(ParameterView(values: values.baseAddress! + start, gradients: gradients.baseAddress! + start, count: count))
        }
    }

    /// Draws every parameter of `layers` (laid out by `init(binding:)`) from its
    /// initialiser, in slot order, from one generator seeded with `seed`: the same
    /// values on every rank.
    public func initialize(layers: [Layer], seed: UInt64) {
        var generator = SeededGenerator(seed: seed, stream: 0x1417)
        var slotIndex = 0
        for layer in layers {
            for spec in layer.parameterSpecs {
                let slot = slots[slotIndex]
                slotIndex += 1
                switch spec.initializer {
                case .zeros:
                    for i in slot.range { values[i] = 0 }
                case .uniform(let bound):
                    for i in slot.range { values[i] = generator.nextFloat(bound: bound) }
                }
            }
        }
        zeroGradients()
    }
}

/// A layer's window onto its own parameters in the flat buffers.
public struct ParameterView {
    public let values: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>
    public let count: Int

    public init(values: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, count: Int) {
        self.values = values
        self.gradients = gradients
        self.count = count
    }
}
