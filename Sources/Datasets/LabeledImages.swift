import NeuralNet

/// A set of 8-bit grey images with class labels, kept as bytes (a quarter of the
/// memory of floats); batches are converted to Float32 in [0, 1] on demand.
public struct LabeledImages: Sendable {
    public let pixels: [UInt8]
    public let labels: [UInt8]
    /// Per-image shape, [channels, height, width].
    public let imageShape: [Int]
    public let classes: Int

    public init(pixels: [UInt8], labels: [UInt8], imageShape: [Int], classes: Int) throws {
        let size = imageShape.reduce(1, *)
        guard size > 0, pixels.count % size == 0 else {
            throw DataError("\(pixels.count) pixel bytes are not a whole number of \(imageShape) images")
        }
        guard pixels.count / size == labels.count else {
            throw DataError("image and label counts differ: \(pixels.count / size) images, \(labels.count) labels")
        }
        if let index = labels.firstIndex(where: { Int($0) >= classes }) {
            throw DataError("label \(labels[index]) of item \(index) is out of range for \(classes) classes")
        }
        self.pixels = pixels
        self.labels = labels
        self.imageShape = imageShape
        self.classes = classes
    }

    public var count: Int { labels.count }

    /// Images `indices` as a [n, C, H, W] tensor scaled to [0, 1], and their labels.
    public func batch<C: Collection>(_ indices: C) -> (images: Tensor, labels: [Int32]) where C.Element == Int {
        let size = imageShape.reduce(1, *)
        let images = Tensor(shape: [indices.count] + imageShape) { out in
            pixels.withUnsafeBufferPointer { src in
                var o = 0
                for index in indices {
                    // One image through pointers: checked index arithmetic per pixel
                    // kept this loop from vectorising (3% of a LeNet step).
                    precondition(index >= 0 && index < count, "image \(index) of \(count)")
                    let image = src.baseAddress! + index * size, target = out.baseAddress! + o
                    for k in 0..<size { target[k] = Float(image[k]) * (1 / 255) }
                    o += size
                }
            }
        }
        return (images, indices.map { Int32(labels[$0]) })
    }
}

/// Training and test splits of one dataset.
public struct DatasetSplits: Sendable {
    public let name: String
    public let train: LabeledImages
    public let test: LabeledImages

    public init(name: String, train: LabeledImages, test: LabeledImages) {
        self.name = name
        self.train = train
        self.test = test
    }
}

extension LabeledImages {
    /// The samples at `indices`, in that order (a fold of a cross-validation).
    public func subset(_ indices: [Int]) throws -> LabeledImages {
        let size = imageShape.reduce(1, *)
        var pixels = [UInt8](), labels = [UInt8]()
        pixels.reserveCapacity(indices.count * size)
        labels.reserveCapacity(indices.count)
        for index in indices {
            pixels += self.pixels[index * size..<(index + 1) * size]
            labels.append(self.labels[index])
        }
        return try LabeledImages(pixels: pixels, labels: labels, imageShape: imageShape, classes: classes)
    }
}
