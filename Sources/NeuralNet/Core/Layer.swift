/// What a layer keeps from its forward pass for its backward pass.
///
/// It is returned by `forward` rather than stored in the layer, so one layer can
/// have several micro-batches in flight (pipeline schedules) and the caller decides
/// how long activations live and can count their bytes.
public struct Saved: Sendable {
    public var tensors: [Tensor]
    public var indices: [Int32]
    public var inputShape: [Int]

    public init(tensors: [Tensor] = [], indices: [Int32] = [], inputShape: [Int] = []) {
        self.tensors = tensors
        self.indices = indices
        self.inputShape = inputShape
    }

    public var byteCount: Int {
        tensors.reduce(0) { $0 + $1.byteCount } + indices.count * MemoryLayout<Int32>.stride
    }
}

/// A differentiable layer over a batch (leading dimension of every tensor).
///
/// Backward *accumulates* parameter gradients (`+=`) so micro-batches and gradient
/// accumulation need no extra buffers; the owner zeroes them once per optimizer step.
public protocol Layer: AnyObject {
    /// Name used for the layer's parameters in model files, e.g. `conv1`.
    var name: String { get }

    /// The parameter tensors, in the order they are laid out in the flat buffers.
    var parameterSpecs: [ParameterSpec] { get }

    /// Gives the layer its window onto the flat parameter and gradient buffers.
    func bind(_ view: ParameterView)

    /// The per-item output shape for a per-item input shape, or an error naming the
    /// mismatch.
    func outputShape(for inputShape: [Int]) throws -> [Int]

    /// Multiply-adds of the forward pass per batch item (for balancing pipeline stages).
    func forwardMACs(for inputShape: [Int]) -> Int

    func forward(_ input: Tensor, training: Bool) -> (output: Tensor, saved: Saved)

    /// Returns the gradient with respect to the input, or nil when
    /// `needInputGradient` is false (the first layer of a model needs none).
    func backward(_ gradOutput: Tensor, saved: Saved, needInputGradient: Bool) -> Tensor?
}

extension Layer {
    public var parameterSpecs: [ParameterSpec] { [] }
    public func bind(_ view: ParameterView) {}
    public func forwardMACs(for inputShape: [Int]) -> Int { 0 }
}

/// A shape that does not fit a layer.
public struct ShapeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
