import Foundation
import NeuralNet

/// A training checkpoint: parameters, optimizer state and the position in the data,
/// enough for a resumed run to continue bitwise as if it had never stopped (the data
/// order and initialisation are functions of the seed, so no RNG state is needed).
///
/// One safetensors file (`step-00000020.ckpt.safetensors`) with the parameters under
/// their model-file names, the optimizer's buffers as `optimizer.<name>`, the state of
/// anything else later steps depend on (a communication hook's residuals) as
/// `state.<name>`, and the
/// rest in the metadata. Written atomically (temporary file, fsync, rename, directory
/// fsync): a crash during a save leaves the previous checkpoints and no partial file
/// under a checkpoint's name. The newest `keep` are kept.
public struct Checkpoint {
    public static let formatVersion = "1"
    public static let suffix = ".ckpt.safetensors"

    /// Optimizer steps completed.
    public var step: Int
    /// Where the next step starts: epoch and step within it.
    public var epoch: Int
    public var stepInEpoch: Int
    /// What a resuming run must match (model, ranks, global batch, optimizer, ...).
    public var layout: [String: String]
    public var optimizerState: [String: [Float]]
    /// Other state later steps depend on, by name.
    public var extraState: [String: [Float]]
    public var parameters: [Safetensors.Entry]

    public static func fileName(step: Int) -> String { String(format: "step-%08d", step) + suffix }

    /// Writes the checkpoint into `directory` and removes all but the newest `keep`.
    /// `slots` limits it to some tensors (a pipeline stage's); by default all.
    public static func save(_ parameters: FlatParameters, slots: [ParameterSlot]? = nil, optimizer: Optimizer,
                            extraState: [String: [Float]] = [:], step: Int, epoch: Int, stepInEpoch: Int,
                            layout: [String: String], to directory: String, keep: Int) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var entries = (slots ?? parameters.slots).map { slot in
            Safetensors.Entry(name: slot.name, shape: slot.shape, values: Array(parameters.values[slot.range]))
        }
        for (name, values) in optimizer.state.sorted(by: { $0.key < $1.key }) {
            entries.append(Safetensors.Entry(name: "optimizer.\(name)", shape: [values.count], values: values))
        }
        for (name, values) in extraState.sorted(by: { $0.key < $1.key }) {
            entries.append(Safetensors.Entry(name: "state.\(name)", shape: [values.count], values: values))
        }
        var metadata = layout
        metadata["format"] = "chorus-checkpoint"
        metadata["version"] = formatVersion
        metadata["step"] = "\(step)"
        metadata["epoch"] = "\(epoch)"
        metadata["step_in_epoch"] = "\(stepInEpoch)"
        metadata["checksum"] = checksum(entries)
        metadata["producer"] = "chorus \(Chorus.version)"
        let path = (directory as NSString).appendingPathComponent(fileName(step: step))
        try AtomicFile.write(Safetensors.encode(entries, metadata: metadata), to: path)
        for old in try checkpointFiles(in: directory).dropFirst(max(1, keep)) {
            try? FileManager.default.removeItem(atPath: old)
        }
    }

    /// The checkpoint of exactly `step` in `directory`.
    public static func read(step: Int, in directory: String) throws -> (checkpoint: Checkpoint, path: String) {
        let path = (directory as NSString).appendingPathComponent(fileName(step: step))
        return (try read(path), path)
    }

    /// Checkpoint files in `directory`, newest first.
    static func checkpointFiles(in directory: String) throws -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(suffix) }.sorted(by: >)
            .map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Reads one checkpoint file, refusing anything that is not a complete checkpoint
    /// of this format.
    public static func read(_ path: String) throws -> Checkpoint {
        let (entries, metadata) = try Safetensors.decode(AtomicFile.read(path), name: path)
        guard metadata["format"] == "chorus-checkpoint" else { throw FileError("\(path) is not a Chorus checkpoint") }
        guard metadata["version"] == formatVersion else {
            throw FileError("\(path) is checkpoint format \(metadata["version"] ?? "?"); this build reads version \(formatVersion)")
        }
        // A flipped bit in the tensor data is damage the format's own checks cannot see.
        if let recorded = metadata["checksum"], recorded != checksum(entries) {
            throw FileError("\(path): the tensor data does not match its checksum (the file is damaged)")
        }
        guard let step = metadata["step"].flatMap(Int.init), let epoch = metadata["epoch"].flatMap(Int.init),
              let stepInEpoch = metadata["step_in_epoch"].flatMap(Int.init) else {
            throw FileError("\(path): the checkpoint's position (step, epoch) is missing or malformed")
        }
        // A NaN or infinity in a checkpoint is damage (or a diverged run): resuming from
        // it would only fail later, blaming the learning rate.
        if let bad = entries.first(where: { !$0.values.allSatisfy(\.isFinite) }) {
            throw FileError("\(path): \(bad.name) holds values that are not finite")
        }
        var layout = metadata
        for key in ["format", "version", "step", "epoch", "step_in_epoch", "checksum", "producer"] { layout[key] = nil }
        func named(_ prefix: String) -> [String: [Float]] {
            Dictionary(uniqueKeysWithValues: entries.filter { $0.name.hasPrefix(prefix) }.map {
                (String($0.name.dropFirst(prefix.count)), $0.values)
            })
        }
        return Checkpoint(step: step, epoch: epoch, stepInEpoch: stepInEpoch, layout: layout,
                          optimizerState: named("optimizer."), extraState: named("state."),
                          parameters: entries.filter { !$0.name.hasPrefix("optimizer.") && !$0.name.hasPrefix("state.") })
    }

    /// The newest checkpoint in `directory` that reads back whole, or nil when there
    /// is none at all. Unreadable newer files are reported in `skipped` and passed
    /// over (a crash can leave an older, valid one as the newest that is complete);
    /// if every file is unreadable that is an error, not a fresh start.
    public static func newestValid(in directory: String) throws -> (checkpoint: Checkpoint, path: String, skipped: [String])? {
        let files = try checkpointFiles(in: directory)
        var skipped: [String] = []
        for path in files {
            do {
                return (try read(path), path, skipped)
            } catch {
                skipped.append("\(error)")
            }
        }
        guard files.isEmpty else {
            throw FileError("no usable checkpoint in \(directory): " + skipped.joined(separator: "; "))
        }
        return nil
    }

    /// Puts the parameters and optimizer state into a run, after checking that the
    /// checkpoint was written by the same model and layout.
    /// `slots` limits it to some tensors (a pipeline stage's); by default all.
    public func apply(to parameters: FlatParameters, slots: [ParameterSlot]? = nil, optimizer: Optimizer,
                      expecting layout: [String: String], path: String) throws {
        let slots = slots ?? parameters.slots
        // The most telling difference first: another model before another rank count.
        let order = ["model", "ranks", "global_batch", "optimizer", "seed"]
        let keys = order.filter { layout[$0] != nil } + layout.keys.filter { !order.contains($0) }.sorted()
        for key in keys where self.layout[key] != layout[key] {
            throw CheckpointMismatch(path: path, key: key, checkpoint: self.layout[key], run: layout[key]!)
        }
        try ModelFile.copy(self.parameters, into: parameters, slots: slots, from: path, model: self.layout["model"])
        do {
            try optimizer.restore(optimizerState, parameterCount: slots.reduce(0) { $0 + $1.count })
        } catch {
            throw FileError("\(path): \(error)")
        }
    }
}

/// A checkpoint written by a run with another layout (model, ranks, global batch, ...).
public struct CheckpointMismatch: Error, CustomStringConvertible {
    public let path: String
    /// The layout field that differs.
    public let key: String
    public let checkpoint: String?
    public let run: String

    public var description: String {
        "\(path) was written by another run: its \(key) is \(checkpoint ?? "missing"), this run's is \(run)"
    }
}

extension Checkpoint {
    /// FNV-1a over every tensor's name and values, in file order: 64 bits that any
    /// change to the data changes (a check against damage, not against tampering).
    static func checksum(_ entries: [Safetensors.Entry]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for entry in entries {
            for byte in entry.name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            entry.values.withUnsafeBytes { bytes in
                for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            }
        }
        return String(hash, radix: 16)
    }
}
