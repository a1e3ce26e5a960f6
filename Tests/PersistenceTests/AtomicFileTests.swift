import Foundation
import XCTest
@testable import Persistence

/// Only regular files are replaced; a link writes its target; a device, a FIFO or a
/// directory is refused and left as it was.
final class AtomicFileTests: XCTestCase {
    func directory() throws -> String {
        let path = NSTemporaryDirectory() + "chorus-atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func testASymbolicLinkWritesItsTargetAndStaysALink() throws {
        let dir = try directory()
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.json", withDestinationPath: "sub/target.json")
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try AtomicFile.write("{}", to: dir + "/link.json")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/link.json"), "sub/target.json")
        XCTAssertEqual(String(decoding: try AtomicFile.read(dir + "/sub/target.json"), as: UTF8.self), "{}")
    }

    func testAFIFOAndADirectoryAreRefusedAndLeftAlone() throws {
        let dir = try directory()
        XCTAssertEqual(mkfifo(dir + "/fifo", 0o644), 0)
        try FileManager.default.createDirectory(atPath: dir + "/folder", withIntermediateDirectories: true)
        for (name, kind) in [("fifo", "a FIFO"), ("folder", "a directory")] {
            XCTAssertThrowsError(try AtomicFile.write("x", to: "\(dir)/\(name)")) { error in
                XCTAssertTrue("\(error)".contains("is \(kind), not a regular file"), "\(error)")
            }
            XCTAssertThrowsError(try AtomicFile.checkWritable(file: "\(dir)/\(name)"))
        }
        var info = stat()
        XCTAssertEqual(lstat(dir + "/fifo", &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFIFO, "the FIFO is still a FIFO")
    }

    func testCheckingAPathInAMissingDirectoryFailsAndWritesNothing() throws {
        let dir = try directory()
        XCTAssertThrowsError(try AtomicFile.checkWritable(file: dir + "/missing/m.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("does not exist"), "\(error)")
        }
        try AtomicFile.checkWritable(file: dir + "/new.json")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}
