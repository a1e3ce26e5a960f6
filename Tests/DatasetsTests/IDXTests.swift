import XCTest
@testable import Datasets

final class IDXTests: XCTestCase {
    func header(_ dims: [Int], type: UInt8 = 0x08) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, type, UInt8(dims.count)]
        for d in dims { bytes += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        return bytes
    }

    func testParsesAValidFile() throws {
        let array = try IDXArray.parse(header([2, 3]) + [1, 2, 3, 4, 5, 6], name: "t")
        XCTAssertEqual(array.dimensions, [2, 3])
        XCTAssertEqual(array.bytes, [1, 2, 3, 4, 5, 6])
    }

    func testRejectsWrongMagic() {
        XCTAssertThrowsError(try IDXArray.parse([0x1F, 0x8B, 8, 1, 0, 0, 0, 1, 9], name: "t")) { error in
            XCTAssertTrue("\(error)".contains("wrong magic number"), "\(error)")
        }
    }

    func testRejectsUnsupportedType() {
        XCTAssertThrowsError(try IDXArray.parse(header([1], type: 0x0D) + [0, 0, 0, 0], name: "t")) { error in
            XCTAssertTrue("\(error)".contains("unsupported IDX element type"), "\(error)")
        }
    }

    func testRejectsTruncatedDataAndHeader() {
        XCTAssertThrowsError(try IDXArray.parse(header([2, 3]) + [1, 2, 3], name: "t")) { error in
            XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
            XCTAssertTrue("\(error)".contains("need 6 bytes"), "\(error)")
        }
        XCTAssertThrowsError(try IDXArray.parse([0, 0, 8, 3, 0, 0], name: "t")) { error in
            XCTAssertTrue("\(error)".contains("truncated IDX header"), "\(error)")
        }
        XCTAssertThrowsError(try IDXArray.parse([0, 0], name: "t"))
    }

    func testRejectsTrailingBytes() {
        XCTAssertThrowsError(try IDXArray.parse(header([2]) + [1, 2, 3], name: "t")) { error in
            XCTAssertTrue("\(error)".contains("trailing bytes"), "\(error)")
        }
    }

    func testReadsPlainAndGzipFilesAlike() throws {
        let bytes = header([4]) + [9, 8, 7, 6]
        let directory = NSTemporaryDirectory() + "chorus-idx-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let plain = directory + "/plain"
        _ = FileManager.default.createFile(atPath: plain, contents: Data(bytes))
        XCTAssertEqual(try IDXArray.read(path: plain).bytes, [9, 8, 7, 6])

        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-k", plain]
        try gzip.run()
        gzip.waitUntilExit()
        XCTAssertEqual(try IDXArray.read(path: plain + ".gz").bytes, [9, 8, 7, 6])

        // A gzip stream cut short is reported, not silently read as shorter data.
        let compressed = try Data(contentsOf: URL(fileURLWithPath: plain + ".gz"))
        _ = FileManager.default.createFile(atPath: directory + "/cut.gz", contents: compressed.prefix(compressed.count - 6))
        XCTAssertThrowsError(try IDXArray.read(path: directory + "/cut.gz"))
    }

    func testMismatchedImageAndLabelCountsAreReported() throws {
        let directory = NSTemporaryDirectory() + "chorus-mismatch-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = FileManager.default.createFile(atPath: directory + "/train-images-idx3-ubyte",
                                       contents: Data(header([3, 2, 2]) + [UInt8](repeating: 1, count: 12)))
        _ = FileManager.default.createFile(atPath: directory + "/train-labels-idx1-ubyte", contents: Data(header([2]) + [1, 2]))
        XCTAssertThrowsError(try FashionMNIST.split(images: "train-images-idx3-ubyte", labels: "train-labels-idx1-ubyte",
                                                    in: directory)) { error in
            XCTAssertTrue("\(error)".contains("has 3 images but"), "\(error)")
        }
    }

    func testLabelsOutOfRangeAreRejected() {
        XCTAssertThrowsError(try LabeledImages(pixels: [0, 0, 0, 0], labels: [3, 10], imageShape: [1, 1, 2], classes: 10)) { error in
            XCTAssertTrue("\(error)".contains("label 10 of item 1 is out of range for 10 classes"), "\(error)")
        }
    }

    func testMissingFileNamesThePackage() {
        XCTAssertThrowsError(try FashionMNIST.load(directory: FashionMNIST.defaultDirectory + "-nowhere")) { error in
            XCTAssertTrue("\(error)".contains("missing Fashion-MNIST file"), "\(error)")
        }
    }
}

final class SamplerTests: XCTestCase {
    func testRanksTogetherSeeExactlyTheSingleProcessGlobalBatch() throws {
        let single = try DistributedSampler(sampleCount: 1000, ranks: 1, rank: 0, batchPerRank: 64, seed: 5)
        let order = single.permutation(epoch: 2)
        XCTAssertEqual(Set(order), Set(0..<1000), "a permutation")
        for step in 0..<single.stepsPerEpoch {
            let parts = try (0..<4).map { rank in
                try DistributedSampler(sampleCount: 1000, ranks: 4, rank: rank, batchPerRank: 16, seed: 5)
                    .indices(step: step, of: order)
            }
            XCTAssertEqual(parts.flatMap { $0 }, Array(single.indices(step: step, of: order)))
        }
    }

    func testEpochsShuffleDifferentlyAndSeedsReproduce() throws {
        let s = try DistributedSampler(sampleCount: 100, ranks: 2, rank: 1, batchPerRank: 10, seed: 1)
        XCTAssertNotEqual(s.permutation(epoch: 0), s.permutation(epoch: 1))
        XCTAssertEqual(s.permutation(epoch: 3), s.permutation(epoch: 3))
        XCTAssertEqual(s.stepsPerEpoch, 5)
    }

    func testAGlobalBatchLargerThanTheDataIsAnError() {
        XCTAssertThrowsError(try DistributedSampler(sampleCount: 10, ranks: 3, rank: 0, batchPerRank: 4, seed: 0))
    }

    func testSyntheticDataIsLearnableShapedAndReproducible() throws {
        let a = try SyntheticImages.make(trainCount: 50, testCount: 10, seed: 3)
        let b = try SyntheticImages.make(trainCount: 50, testCount: 10, seed: 3)
        XCTAssertEqual(a.train.pixels, b.train.pixels)
        XCTAssertEqual(a.train.imageShape, [1, 28, 28])
        XCTAssertEqual(a.test.count, 10)
        XCTAssertEqual(Set(a.train.labels).count, 10, "all classes present")
    }
}
