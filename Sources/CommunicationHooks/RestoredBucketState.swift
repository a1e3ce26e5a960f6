/// A hook's per-bucket tensors read back from a checkpoint before the buckets they
/// belong to are seen again: each is handed out once, by name, when its bucket
/// first needs it; what has not been claimed yet stays part of the hook's state, so
/// a checkpoint written before every bucket ran still holds all of it.
public struct RestoredBucketState: Sendable {
    private var pending: [String: [Float]]

    public init(_ state: [String: [Float]] = [:]) {
        pending = state
    }

    /// The tensor saved as `name`, which must have `count` elements. A checkpoint's
    /// layout records the bucket boundaries, so a mismatch here means a checkpoint
    /// that bypassed that check: a programming error, reported as such.
    public mutating func take(_ name: String, count: Int) -> [Float]? {
        guard let values = pending.removeValue(forKey: name) else { return nil }
        if values.count != count {
            fatalError("the checkpoint's \(name) has \(values.count) elements where its gradient bucket has \(count); "
                       + "resume with the model, bucket cap and compression of the run that wrote it")
        }
        return values
    }

    /// What has not been taken: to be saved again with the hook's state.
    public var unclaimed: [String: [Float]] { pending }
}
