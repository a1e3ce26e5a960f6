/// The models the command-line tools can build by name.
public enum ModelKind: String, CaseIterable, Sendable {
    case lenet
    case mlp
}

/// Everything needed to rebuild a model: the same description gives the same layers,
/// shapes and parameter layout on every rank.
public struct ModelDescription: Equatable, Sendable, CustomStringConvertible {
    public var kind: ModelKind
    /// Hidden layer widths for `mlp`.
    public var hidden: [Int]
    public var inputShape: [Int]
    public var classes: Int

    public init(kind: ModelKind, hidden: [Int] = [512, 512], inputShape: [Int] = [1, 28, 28], classes: Int = 10) {
        self.kind = kind
        self.hidden = hidden
        self.inputShape = inputShape
        self.classes = classes
    }

    public var description: String {
        switch kind {
        case .lenet: "lenet"
        case .mlp: "mlp(\(hidden.map(String.init).joined(separator: ",")))"
        }
    }

    /// The layer list, in order.
    public func makeLayers() -> [Layer] {
        switch kind {
        case .lenet:
            // Classic LeNet-5 with ReLU and max pooling, as in the PyTorch peer, with
            // each pooling before its ReLU rather than after: max commutes with
            // max(·, 0), so the function and its gradient are the same bit for bit
            // (a test checks), and the ReLU touches a quarter of the elements.
            return [Conv2d("conv1", inChannels: inputShape[0], outChannels: 6, kernel: 5, padding: 2),
                    MaxPool2d("pool1", kernel: 2), ReLU("relu1"),
                    Conv2d("conv2", inChannels: 6, outChannels: 16, kernel: 5),
                    MaxPool2d("pool2", kernel: 2), ReLU("relu2"),
                    Flatten("flatten"),
                    Linear("fc1", inputs: 16 * 5 * 5, outputs: 120), ReLU("relu3"),
                    Linear("fc2", inputs: 120, outputs: 84), ReLU("relu4"),
                    Linear("fc3", inputs: 84, outputs: classes)]
        case .mlp:
            var layers: [Layer] = [Flatten("flatten")]
            var width = inputShape.reduce(1, *)
            for (i, h) in hidden.enumerated() {
                layers.append(Linear("fc\(i + 1)", inputs: width, outputs: h))
                layers.append(ReLU("relu\(i + 1)"))
                width = h
            }
            layers.append(Linear("fc\(hidden.count + 1)", inputs: width, outputs: classes))
            return layers
        }
    }

    public func build(seed: UInt64) throws -> Sequential {
        try Sequential(makeLayers(), inputShape: inputShape, seed: seed)
    }
}

/// What a model occupies, known before anything is allocated.
public struct ModelFootprint: Sendable, Equatable {
    /// Parameters (each has a value and a gradient, and optimizers keep state per parameter).
    public let parameters: Int
    /// Floats of layer outputs per batch item in one forward pass (what backward keeps).
    public let activationsPerItem: Int
}

/// A model too large to describe in this process's integers.
public struct ModelTooLarge: Error, CustomStringConvertible {
    public let model: String
    public var description: String { "\(model) has more parameters or activations than this machine can count" }
}

extension ModelDescription {
    /// Parameter and activation counts from the layers' declarations and shapes, with
    /// overflow checked: nothing is allocated, so a model too large for the node can
    /// be refused before it is built.
    public func footprint() throws -> ModelFootprint {
        let layers = makeLayers()
        var shape = inputShape, parameters = 0, activations = 0
        func add(_ a: Int, _ b: Int) throws -> Int {
            let (sum, overflow) = a.addingReportingOverflow(b)
            if overflow { throw ModelTooLarge(model: description) }
            return sum
        }
        func elements(_ shape: [Int]) throws -> Int {
            try shape.reduce(1) { product, dimension in
                let (result, overflow) = product.multipliedReportingOverflow(by: dimension)
                if overflow { throw ModelTooLarge(model: description) }
                return result
            }
        }
        for layer in layers {
            for spec in layer.parameterSpecs { parameters = try add(parameters, try elements(spec.shape)) }
            shape = try layer.outputShape(for: shape)
            activations = try add(activations, try elements(shape))
        }
        return ModelFootprint(parameters: parameters, activationsPerItem: activations)
    }
}
