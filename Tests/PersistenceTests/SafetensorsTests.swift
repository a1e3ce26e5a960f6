import XCTest
import NeuralNet
@testable import Persistence

final class SafetensorsTests: XCTestCase {
    func testRoundTripAndLayout() throws {
        let entries = [Safetensors.Entry(name: "a.weight", shape: [2, 3], values: [1, 2, 3, 4, 5, -6.5]),
                       Safetensors.Entry(name: "a.bias", shape: [2], values: [0.25, .pi])]
        let bytes = Safetensors.encode(entries, metadata: ["model": "x"])
        let headerLength = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        XCTAssertEqual(headerLength % 8, 0, "data starts 8-byte aligned")
        XCTAssertEqual(bytes.count, 8 + headerLength + 8 * 4)
        let header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.contains(#""a.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}"#), header)
        let (decoded, metadata) = try Safetensors.decode(bytes)
        XCTAssertEqual(decoded, entries)
        XCTAssertEqual(metadata["model"], "x")
    }

    func testRejectsCorruptFiles() {
        let good = Safetensors.encode([Safetensors.Entry(name: "w", shape: [4], values: [1, 2, 3, 4])])
        XCTAssertThrowsError(try Safetensors.decode(Array(good.prefix(5))))
        XCTAssertThrowsError(try Safetensors.decode(Array(good.dropLast(4))), "data shorter than the offsets")
        var badLength = good
        badLength[0] = 0xFF
        badLength[1] = 0xFF
        XCTAssertThrowsError(try Safetensors.decode(badLength))
        var badJSON = good
        badJSON[8] = UInt8(ascii: "[")
        XCTAssertThrowsError(try Safetensors.decode(badJSON))
    }

    func testModelFileRefusesAnotherModel() throws {
        let lenet = try ModelDescription(kind: .lenet).build(seed: 1)
        let mlp = try ModelDescription(kind: .mlp, hidden: [32]).build(seed: 1)
        let path = NSTemporaryDirectory() + "chorus-model-\(getpid()).safetensors"
        defer { unlink(path) }
        try ModelFile.save(lenet.parameters, model: "lenet", to: path)
        XCTAssertThrowsError(try ModelFile.load(path, into: mlp.parameters)) { error in
            XCTAssertTrue("\(error)".contains("holds a different model (model lenet)"), "\(error)")
        }
        let copy = try ModelDescription(kind: .lenet).build(seed: 2)
        try ModelFile.load(path, into: copy.parameters)
        XCTAssertEqual(copy.parameters.valueArray, lenet.parameters.valueArray)
    }

    func testAtomicWriteLeavesNoTemporaryFiles() throws {
        let directory = NSTemporaryDirectory() + "chorus-atomic-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try AtomicFile.write("first", to: directory + "/f")
        try AtomicFile.write("second", to: directory + "/f")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["f"])
        XCTAssertEqual(String(decoding: try AtomicFile.read(directory + "/f"), as: UTF8.self), "second")
        XCTAssertThrowsError(try AtomicFile.write("x", to: directory + "/missing/f"))
    }

    func testEmptyTensorsRoundTripNextToOthers() throws {
        // A pipeline stage without parameters saves empty optimizer buffers beside a
        // one-element step count: all at data offset 0.
        let entries = [Safetensors.Entry(name: "a", shape: [0], values: []),
                       Safetensors.Entry(name: "b", shape: [0], values: []),
                       Safetensors.Entry(name: "step", shape: [1], values: [7])]
        let decoded = try Safetensors.decode(Safetensors.encode(entries)).entries
        XCTAssertEqual(decoded.sorted { $0.name < $1.name }, entries)
    }
}
