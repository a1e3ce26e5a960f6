extension CommunicationHook {
    /// The hook's state under the names a checkpoint keeps it by (`hook.<name>`), so
    /// it never collides with a strategy's own extra state.
    public var checkpointState: [String: [Float]] {
        state.reduce(into: [:]) { $0[Self.checkpointPrefix + $1.key] = $1.value }
    }

    /// Restores what `checkpointState` saved, ignoring a checkpoint's other entries.
    public func restore(checkpointState: [String: [Float]]) throws {
        try restore(checkpointState.reduce(into: [:]) { result, entry in
            if entry.key.hasPrefix(Self.checkpointPrefix) { result[String(entry.key.dropFirst(Self.checkpointPrefix.count))] = entry.value }
        })
    }

    private static var checkpointPrefix: String { "hook." }
}
