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
    public let slots: [ParameterSlot]
    public let values: UnsafeMutableBufferPointer<Float>
    public let gradients: UnsafeMutableBufferPointer<Float>

    public init(slots: [ParameterSlot]) {
        self.slots = slots
        let count = slots.last.map { $0.offset + $0.count } ?? 0
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

/// A layer's window onto its own parameters in the flat buffers.
public struct ParameterView {
    public let values: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>
    public let count: Int
}
