#if canImport(Glibc)
import Foundation
import Glibc
#endif

/// An output file that could not be written.
public struct FileError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Writes files so that a reader (or a crash) never sees a partial file under the
/// final name: the bytes go to a temporary file in the same directory, are flushed
/// to disk with fsync, and the temporary file is renamed over the target (rename is
/// atomic within a file system); the directory is synced so the rename survives a
/// power loss too.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let temporary = "\(path).tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw FileError("cannot write \(path): \(String(cString: strerror(errno))) (directory \(directory.isEmpty ? "/" : directory))")
        }
        var written = 0
        let ok = bytes.withUnsafeBytes { raw -> Bool in
            while written < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return false }
                written += n
            }
            return fsync(fd) == 0
        }
        let writeError = errno
        close(fd)
        guard ok else {
            unlink(temporary)
            throw FileError("cannot write \(path): \(String(cString: strerror(writeError)))")
        }
        guard rename(temporary, path) == 0 else {
            let renameError = errno
            unlink(temporary)
            throw FileError("cannot replace \(path): \(String(cString: strerror(renameError)))")
        }
        let dirFD = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Array(text.utf8), to: path)
    }

    /// Whole file contents.
    /// Creates `directory` if needed and checks that files can be written in it.
    public static func checkWritable(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw FileError("cannot create \(directory): \((error as NSError).localizedDescription)")
        }
        guard access(directory, W_OK) == 0 else {
            throw FileError("cannot write in \(directory): \(String(cString: strerror(errno)))")
        }
    }

    public static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw FileError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }
}
