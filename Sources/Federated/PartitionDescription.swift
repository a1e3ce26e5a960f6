/// A partition as text: a summary line (starting with #), then one CSV row per client
/// with its sample count, how many labels it holds and its samples per label. The
/// rows are what `make plots` draws (Benchmarks/scripts/plots.py, partition-*.csv).
public struct PartitionDescription {
    public let partition: ClientPartition
    public let labels: [UInt8]
    public let classes: Int
    public let scheme: PartitionScheme

    public init(partition: ClientPartition, labels: [UInt8], classes: Int, scheme: PartitionScheme) {
        self.partition = partition
        self.labels = labels
        self.classes = classes
        self.scheme = scheme
    }

    public var text: String {
        let histogram = partition.histogram(labels: labels, classes: classes)
        let sizes = partition.sizes
        let held = histogram.map { $0.filter { $0 > 0 }.count }
        let assigned = sizes.reduce(0, +)
        let summary = "# \(scheme): \(partition.count) clients, \(assigned) of \(labels.count) samples assigned, "
            + "\(sizes.min() ?? 0)-\(sizes.max() ?? 0) per client (mean \(assigned / max(partition.count, 1))), "
            + "labels per client \(held.min() ?? 0)-\(held.max() ?? 0)"
        let header = (["client", "samples", "labels"] + (0..<classes).map { "label_\($0)" }).joined(separator: ",")
        let rows = histogram.enumerated().map { client, counts in
            ([client, sizes[client], held[client]] + counts).map(String.init).joined(separator: ",")
        }
        return ([summary, header] + rows).joined(separator: "\n")
    }
}
