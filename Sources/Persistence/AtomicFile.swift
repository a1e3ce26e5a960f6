import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file that could not be read or written, or does not hold what it should.
public struct FileError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Writes files so that a reader (or a crash) never sees a partial file under the
/// final name: the bytes go to a temporary file in the same directory, are flushed
/// to disk with fsync, and the temporary file is renamed over the target (rename is
/// atomic within a file system); the directory is synced so the rename survives a
/// power loss too.
///
/// Only regular files are replaced that way. A path that is a symbolic link writes
/// its target (atomically, in the target's directory), as `cp` and shell redirection
/// do; a path that is a device, a FIFO, a socket or a directory is refused: renaming
/// over `/dev/null` would replace the device node for everyone.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to requested: String) throws {
        let path = try destination(of: requested)
        let directory = parent(of: path)
        let temporary = "\(path).tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw FileError("cannot write \(requested): \(String(cString: strerror(errno))) (directory \(directory))")
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
            throw FileError("cannot write \(requested): \(String(cString: strerror(writeError)))")
        }
        guard rename(temporary, path) == 0 else {
            let renameError = errno
            unlink(temporary)
            throw FileError("cannot replace \(requested): \(String(cString: strerror(renameError)))")
        }
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Array(text.utf8), to: path)
    }

    /// Checks, before any work is done, that `path` can be written: its directory
    /// exists and is writable, and the path is a regular file, a link to one, or
    /// nothing yet. Writes nothing.
    public static func checkWritable(file path: String) throws {
        let target = try destination(of: path)
        let directory = parent(of: target)
        var info = stat()
        guard stat(directory, &info) == 0 else {
            throw FileError("cannot write \(path): its directory \(directory) does not exist")
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw FileError("cannot write \(path): \(directory) is not a directory")
        }
        guard access(directory, W_OK) == 0 else {
            throw FileError("cannot write \(path): \(String(cString: strerror(errno))) (directory \(directory))")
        }
    }

    /// Removes what a write to `path` left when its process died before the rename
    /// (`path.tmp.<pid>`): a crash leaves only whole files under their own names,
    /// and this clears the rest on the next run.
    public static func removeInterruptedWrites(of path: String) {
        let directory = parent(of: path), name = (path as NSString).lastPathComponent + ".tmp."
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where entry.hasPrefix(name) && !entry.dropFirst(name.count).isEmpty && entry.dropFirst(name.count).allSatisfy(\.isNumber) {
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(entry))
        }
    }

    /// Creates `directory` if needed and checks that files can be written in it.
    public static func checkWritable(directory: String) throws {
        var info = stat()
        if stat(directory, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR {
            throw FileError("cannot use \(directory) as a directory: it exists and is not one")
        }
        if mkdirs(directory) != 0 {
            throw FileError("cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        guard access(directory, W_OK) == 0 else {
            throw FileError("cannot write in \(directory): \(String(cString: strerror(errno)))")
        }
    }

    /// Whole file contents.
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

    /// The file a write to `path` replaces: `path` itself, or the file a chain of
    /// symbolic links ends at; refused if that is anything but a regular file.
    static func destination(of path: String) throws -> String {
        var current = path
        for _ in 0..<40 {  // the kernel's own limit on links followed (ELOOP)
            var info = stat()
            guard lstat(current, &info) == 0 else { return current }  // nothing there yet
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                return current
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = readlink(current, &buffer, buffer.count - 1)
                guard length >= 0 else { throw FileError("cannot follow the link \(current): \(String(cString: strerror(errno)))") }
                let target = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                current = target.hasPrefix("/") ? target : parent(of: current) + "/" + target
            default:
                let kind = switch info.st_mode & S_IFMT {
                case S_IFDIR: "a directory"
                case S_IFCHR, S_IFBLK: "a device"
                case S_IFIFO: "a FIFO"
                case S_IFSOCK: "a socket"
                default: "not a regular file"
                }
                throw FileError("refusing to write \(path): \(current == path ? "it" : current) is \(kind), not a regular file")
            }
        }
        throw FileError("cannot write \(path): too many levels of symbolic links")
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    /// mkdir -p: 0 on success (including when the directory exists), -1 with errno set.
    private static func mkdirs(_ path: String) -> Int32 {
        var info = stat()
        if stat(path, &info) == 0 { return (info.st_mode & S_IFMT) == S_IFDIR ? 0 : { errno = ENOTDIR; return -1 }() }
        let above = parent(of: path)
        if above != path && above != "." && above != "/" {
            let made = mkdirs(above)
            if made != 0 { return made }
        }
        if mkdir(path, 0o755) == 0 || errno == EEXIST { return 0 }
        return -1
    }
}
