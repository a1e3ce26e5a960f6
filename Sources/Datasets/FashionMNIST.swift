/// Fashion-MNIST (Zalando's 28x28 clothing images, 10 classes) from IDX files.
public enum FashionMNIST {
    /// Where Debian's `dataset-fashion-mnist` package installs the files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    static let files = (trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
                        testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte")

    /// Loads both splits from `directory`, accepting `NAME.gz` or plain `NAME` for each file.
    public static func load(directory: String = defaultDirectory) throws -> DatasetSplits {
        let train = try split(images: files.trainImages, labels: files.trainLabels, in: directory)
        let test = try split(images: files.testImages, labels: files.testLabels, in: directory)
        return DatasetSplits(name: "fashion-mnist", train: train, test: test)
    }

    static func split(images: String, labels: String, in directory: String) throws -> LabeledImages {
        let imageArray = try IDXArray.read(path: locate(images, in: directory))
        let labelArray = try IDXArray.read(path: locate(labels, in: directory))
        guard imageArray.dimensions.count == 3 else {
            throw DataError("\(images): expected 3 dimensions (count, rows, columns), found \(imageArray.dimensions)")
        }
        guard labelArray.dimensions.count == 1 else {
            throw DataError("\(labels): expected 1 dimension (count), found \(labelArray.dimensions)")
        }
        guard imageArray.dimensions[0] == labelArray.dimensions[0] else {
            throw DataError("\(images) has \(imageArray.dimensions[0]) images but \(labels) has \(labelArray.dimensions[0]) labels")
        }
        do {
            return try LabeledImages(pixels: imageArray.bytes, labels: labelArray.bytes,
                                     imageShape: [1, imageArray.dimensions[1], imageArray.dimensions[2]], classes: 10)
        } catch let error as DataError {
            throw DataError("\(directory)/\(labels): \(error)")  // which file
        }
    }

    static func locate(_ name: String, in directory: String) throws -> String {
        for candidate in ["\(directory)/\(name).gz", "\(directory)/\(name)"] where fileExists(candidate) {
            return candidate
        }
        throw MissingDatasetFile(path: "\(directory)/\(name).gz", inDefaultDirectory: directory == defaultDirectory)
    }
}

/// A file of the dataset is not where it was looked for.
public struct MissingDatasetFile: Error, CustomStringConvertible {
    public let path: String
    /// The packaged location was searched (not a directory the user chose).
    public let inDefaultDirectory: Bool

    public var description: String { describe(directory: "the data directory") }

    /// The message, naming how the user chooses the directory (a command line names its flag).
    public func describe(directory: String) -> String {
        "missing Fashion-MNIST file \(path): " + (inDefaultDirectory
            ? "install it with `apt-get install dataset-fashion-mnist`, or choose \(directory)"
            : "check \(directory), or use the packaged copy: `apt-get install dataset-fashion-mnist`")
    }
}

#if canImport(Glibc)
import Glibc
#endif

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }
