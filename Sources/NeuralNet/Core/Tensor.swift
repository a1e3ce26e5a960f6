/// A dense Float32 array with a shape, stored row-major (images as NCHW).
///
/// A value type backed by Swift's copy-on-write array; the hot loops reach the
/// storage through buffer pointers.
public struct Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var storage: [Float]

    public init(shape: [Int], storage: [Float]) {
        require(shape.reduce(1, *) == storage.count,
                     "shape \(shape) holds \(shape.reduce(1, *)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, storage: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// A tensor whose storage is written by `body` (every element must be written).
    public init(shape: [Int], uninitialized body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = shape.reduce(1, *)
        self.shape = shape
        self.storage = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            body(buffer)
            initialized = count
        }
    }

    public var count: Int { storage.count }

    /// Multiplies every element by `factor`.
    public mutating func scale(by factor: Float) {
        storage.withUnsafeMutableBufferPointer { values in
            for i in values.indices { values[i] *= factor }
        }
    }

    /// The leading (batch) dimension.
    public var batch: Int { shape.first ?? 0 }

    /// Elements per batch item.
    public var itemCount: Int { shape.dropFirst().reduce(1, *) }

    public var byteCount: Int { storage.count * MemoryLayout<Float>.stride }

    public func reshaped(_ newShape: [Int]) -> Tensor { Tensor(shape: newShape, storage: storage) }

    /// Batch items `range` as a new tensor.
    public func items(_ range: Range<Int>) -> Tensor {
        let n = itemCount
        return Tensor(shape: [range.count] + shape.dropFirst(), storage: Array(storage[(range.lowerBound * n)..<(range.upperBound * n)]))
    }
}
