import Foundation
import NeuralNet

/// The safetensors file format (Hugging Face), float32 tensors only:
///
///     [8 bytes: N, little-endian UInt64][N bytes: JSON header][raw little-endian data]
///
/// The header maps each tensor name to `{"dtype": "F32", "shape": [...],
/// "data_offsets": [begin, end]}` (byte offsets into the data section) and may hold a
/// `"__metadata__"` object of strings. Python loads the files with
/// `safetensors.numpy.load_file` or `safetensors.torch.load_file`.
public enum Safetensors {
    public struct Entry: Equatable {
        public let name: String
        public let shape: [Int]
        public let values: [Float]

        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Largest header accepted when reading (the format's own limit is 100 MB).
    static let maximumHeaderBytes = 100_000_000

    /// Encodes tensors (in the given order) and string metadata.
    public static func encode(_ entries: [Entry], metadata: [String: String] = [:]) -> [UInt8] {
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for entry in entries {
            precondition(entry.shape.reduce(1, *) == entry.values.count, "\(entry.name): shape and values disagree")
            let end = offset + entry.values.count * 4
            fields.append("\(jsonQuoted(entry.name)):{\"dtype\":\"F32\",\"shape\":[\(entry.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array("{\(fields.joined(separator: ","))}".utf8)
        // Pad with spaces so the data section starts 8-byte aligned.
        while header.count % 8 != 0 { header.append(0x20) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: header)
        for entry in entries {
            for value in entry.values {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            }
        }
        return bytes
    }

    /// Decodes and validates a file's bytes: header length, JSON, dtypes, shapes and
    /// offsets (inside the data, matching the shape, not overlapping).
    public static func decode(_ bytes: [UInt8], name: String = "safetensors file") throws -> (entries: [Entry], metadata: [String: String]) {
        func fail(_ why: String) -> FileError { FileError("\(name): not a valid safetensors file: \(why)") }
        guard bytes.count >= 8 else { throw fail("only \(bytes.count) bytes") }
        let headerLength = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(min(maximumHeaderBytes, bytes.count - 8)) else {
            throw fail("header length \(headerLength) exceeds the file (\(bytes.count) bytes)")
        }
        let dataStart = 8 + Int(headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart]))
        } catch {
            throw fail("header is not JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("header is not a JSON object") }
        var metadata: [String: String] = [:]
        var spans: [(name: String, shape: [Int], begin: Int, end: Int)] = []
        for (key, value) in header {
            if key == "__metadata__" {
                guard let m = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw fail("tensor \(key) lacks dtype, shape or data_offsets") }
            guard dtype == "F32" else { throw fail("tensor \(key) has dtype \(dtype); only F32 is supported") }
            guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[0] <= offsets[1],
                  offsets[1] <= bytes.count - dataStart
            else { throw fail("tensor \(key) has offsets \(offsets) outside the \(bytes.count - dataStart) data bytes") }
            guard offsets[1] - offsets[0] == shape.reduce(1, *) * 4 else {
                throw fail("tensor \(key) has shape \(shape) but \(offsets[1] - offsets[0]) bytes")
            }
            spans.append((key, shape, offsets[0], offsets[1]))
        }
        // File order; empty tensors occupy no bytes and may share an offset with the next.
        spans.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        let occupied = spans.filter { $0.end > $0.begin }
        for (a, b) in zip(occupied, occupied.dropFirst()) where a.end > b.begin {
            throw fail("tensors \(a.name) and \(b.name) overlap")
        }
        let entries = spans.map { span in
            let count = (span.end - span.begin) / 4
            let values = [Float](unsafeUninitializedCapacity: count) { out, initialized in
                for i in 0..<count {
                    let at = dataStart + span.begin + 4 * i
                    let bits = UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
                    out[i] = Float(bitPattern: bits)
                }
                initialized = count
            }
            return Entry(name: span.name, shape: span.shape, values: values)
        }
        return (entries, metadata)
    }
}

/// Model files: a model's flat parameters as named safetensors tensors.
public enum ModelFile {
    /// Writes `parameters` as safetensors; the metadata names the model, and the tool
    /// and Chorus version that wrote it.
    public static func save(_ parameters: FlatParameters, model: String, tool: String = "chorus", to path: String) throws {
        let entries = parameters.slots.map { slot in
            Safetensors.Entry(name: slot.name, shape: slot.shape, values: Array(parameters.values[slot.range]))
        }
        let metadata = ["format": "pt", "model": model, "producer": "chorus", "tool": tool, "chorus_version": Chorus.version]
        try AtomicFile.write(Safetensors.encode(entries, metadata: metadata), to: path)
    }

    /// Loads a file into `parameters`, refusing one whose tensors or shapes differ.
    public static func load(_ path: String, into parameters: FlatParameters) throws {
        let (entries, metadata) = try Safetensors.decode(AtomicFile.read(path), name: path)
        try copy(entries, into: parameters, slots: parameters.slots, from: path, model: metadata["model"])
    }

    /// Copies `entries` into the tensors `slots` of `parameters`, refusing entries that
    /// are missing, extra or shaped differently (checked before anything is copied).
    static func copy(_ entries: [Safetensors.Entry], into parameters: FlatParameters, slots: [ParameterSlot],
                     from path: String, model: String?) throws {
        let byName = Dictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let model = model.map { " (model \($0))" } ?? ""
        for slot in slots {
            guard let entry = byName[slot.name] else {
                throw FileError("\(path) holds a different model\(model): it has no tensor \(slot.name)")
            }
            guard entry.shape == slot.shape else {
                throw FileError("\(path) holds a different model\(model): tensor \(slot.name) has shape \(entry.shape), this model needs \(slot.shape)")
            }
        }
        guard entries.count == slots.count else {
            throw FileError("\(path) holds a different model\(model): \(entries.count) tensors, this model has \(slots.count)")
        }
        for slot in slots {
            _ = UnsafeMutableBufferPointer(rebasing: parameters.values[slot.range]).update(fromContentsOf: byName[slot.name]!.values)
        }
    }
}
