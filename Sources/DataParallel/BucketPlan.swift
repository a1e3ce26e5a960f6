import NeuralNet

/// Which gradients are all-reduced together, and when each group is ready.
///
/// Parameters are assigned to buckets in reverse layer order, the order backward
/// produces their gradients (PyTorch DDP's `Reducer`, Horovod's fusion buffer). Because
/// `FlatParameters` lays parameters out in layer order, a run of parameters in reverse
/// order is a contiguous range of the flat gradient buffer: a bucket is just a range,
/// reduced in place, with no copy in or out.
///
///     flat gradients:  [ conv1 | conv2 | fc1 ............ | fc2 | fc3 ]
///     buckets:           └─── bucket 2 ───┘ └─ bucket 1 ─┘ └─ bucket 0 ┘
///     reduced in order:  0 (ready after fc2's backward), 1, 2
///
/// Layers are packed whole: a bucket closes when the next layer's tensors would not
/// fit under the cap, because a layer's tensors all become ready at once and a bucket
/// holding part of a layer would wait for all of that layer's backward (with
/// tensor-by-tensor packing, a 16 MiB layer's 8 KiB bias kept the 80 KiB bucket before
/// it waiting 70 ms in a traced run). A layer larger than the cap is split between its
/// tensors; a tensor larger than the cap gets a bucket of its own (tensors are never
/// split). The first bucket is capped lower, as in DDP, so communication starts as
/// early as possible. The plan depends only on the model's layout and the caps, so every rank
/// computes the same one; the trainer checks that they agree anyway.
public struct BucketPlan: Equatable, Sendable {
    public struct Bucket: Equatable, Sendable {
        /// Elements of the flat gradient buffer.
        public let range: Range<Int>
        /// The lowest layer index with a parameter in the bucket: in a backward that
        /// visits layers last to first, once that layer has run every gradient in the
        /// bucket is final.
        public let readyAfterLayer: Int
        /// Every layer with a parameter in the bucket (ascending): the bucket is ready
        /// when all of them are, in whatever order a model's backward finishes them.
        public let layers: [Int]
        /// Parameter names, for logs and traces.
        public let parameters: [String]
    }

    /// 25 MiB, PyTorch DDP's `bucket_cap_mb`: large enough that per-call latency (a few
    /// µs here, tens over a network) is amortised, small enough that a 10 M-parameter
    /// model is cut into a few buckets whose reduction overlaps the rest of backward.
    public static let defaultCapBytes = 25 << 20
    /// 1 MiB for the first bucket (DDP's `first_bucket_bytes`): the last layers' small
    /// gradients start travelling while backward has most of its work still ahead.
    public static let defaultFirstCapBytes = 1 << 20

    /// In reduction order: bucket 0 holds the last layers' gradients.
    public let buckets: [Bucket]

    public init(slots: [ParameterSlot], capBytes: Int = defaultCapBytes, firstCapBytes: Int = defaultFirstCapBytes) {
        precondition(capBytes > 0 && firstCapBytes > 0)
        var buckets: [Bucket] = []
        var current: [ParameterSlot] = []
        func close() {
            guard let lowest = current.last, let highest = current.first else { return }
            let layers = Set(current.map(\.layerIndex)).sorted()
            buckets.append(Bucket(range: lowest.offset..<(highest.offset + highest.count),
                                  readyAfterLayer: layers[0], layers: layers, parameters: current.map(\.name)))
            current = []
        }
        func bytes(_ slots: [ParameterSlot]) -> Int { slots.reduce(0) { $0 + $1.count } * MemoryLayout<Float>.stride }
        // Whole layers, last layer first: a layer's tensors all become ready together,
        // so a bucket holding part of a layer would wait for all of its backward.
        let layers = Dictionary(grouping: slots, by: \.layerIndex)
        for layer in layers.keys.sorted(by: >) {
            let group = layers[layer]!.sorted { $0.offset > $1.offset }
            let cap = buckets.isEmpty ? firstCapBytes : capBytes
            if !current.isEmpty && bytes(current) + bytes(group) > cap { close() }
            if bytes(group) <= (buckets.isEmpty ? firstCapBytes : capBytes) {
                current += group
                continue
            }
            // A layer larger than the cap: its tensors one by one, each alone if it
            // exceeds the cap by itself.
            for slot in group {
                let cap = buckets.isEmpty ? firstCapBytes : capBytes
                if !current.isEmpty && bytes(current) + bytes([slot]) > cap { close() }
                current.append(slot)
            }
        }
        close()
        self.buckets = buckets
    }

    /// Buckets that become ready when layer `layer`'s backward has finished.
    public func bucketsReady(afterLayer layer: Int) -> [Int] {
        buckets.indices.filter { buckets[$0].readyAfterLayer == layer }
    }

    /// A fingerprint of the assignment, to check that all ranks agree.
    public var fingerprint: Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for bucket in buckets {
            for value in [bucket.range.lowerBound, bucket.range.upperBound, bucket.readyAfterLayer] {
                hash = (hash ^ UInt64(bitPattern: Int64(value))) &* 0x100_0000_01b3
            }
        }
        return Int64(bitPattern: hash)
    }
}
