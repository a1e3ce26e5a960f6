/// The indices of the `count` entries of `values` with the largest magnitude, in
/// ascending index order; among equal magnitudes the lower index wins, and NaN
/// counts as larger than any number, so the result is a function of the values
/// alone and includes a non-finite entry whenever there is one (all of them if
/// there are at most `count`).
///
/// Magnitudes are compared as the integers of their bit patterns without the sign:
/// for IEEE floats that order is the order of |x|, with infinity above every number
/// and NaN above infinity. The exact threshold (the count-th largest) comes from
/// quickselect, but not over all n entries: a strided sample estimates a threshold
/// a little below it (Deep Gradient Compression's sampling), one pass keeps the
/// candidates at or above the estimate, and quickselect runs on those. Every entry
/// at or above the exact threshold is a candidate, so the result is exact; when the
/// estimate is too high to leave `count` candidates, quickselect runs on everything.
func largestMagnitudes(_ values: UnsafeBufferPointer<Float>, count: Int) -> [Int] {
    let n = values.count
    precondition(count >= 0 && count <= n)
    guard count > 0 else { return [] }
    guard count < n else { return Array(0..<n) }
    @inline(__always) func key(_ x: Float) -> UInt32 { x.bitPattern & 0x7FFF_FFFF }

    // Candidates: every index whose magnitude reaches the sample's estimate.
    var candidates: [Int] = []
    let sampleSize = min(n, 1 << 15)
    if n > 4 * sampleSize {
        var sample = (0..<sampleSize).map { key(values[$0 * (n / sampleSize)]) }
        // Aim below the threshold: twice the sample's share of the entries asked for.
        let rank = min(sampleSize, max(1, (2 * count * sampleSize + n - 1) / n + 8))
        let estimate = sample.withUnsafeMutableBufferPointer { kthLargest($0, rank) }
        candidates.reserveCapacity(4 * count)
        for i in 0..<n where key(values[i]) >= estimate { candidates.append(i) }
    }
    if candidates.count < count { candidates = Array(0..<n) }

    var keys = candidates.map { key(values[$0]) }
    let threshold = keys.withUnsafeMutableBufferPointer { kthLargest($0, count) }
    var above = 0
    for i in candidates where key(values[i]) > threshold { above += 1 }
    var equalsAllowed = count - above
    var chosen: [Int] = []
    chosen.reserveCapacity(count)
    for i in candidates {
        let m = key(values[i])
        if m > threshold {
            chosen.append(i)
        } else if m == threshold && equalsAllowed > 0 {
            chosen.append(i)
            equalsAllowed -= 1
        }
    }
    return chosen
}

/// The k-th largest (1-based) of `values`, which it reorders: iterative quickselect
/// with a median-of-three pivot.
private func kthLargest(_ values: UnsafeMutableBufferPointer<UInt32>, _ k: Int) -> UInt32 {
    var low = 0, high = values.count - 1
    let target = k - 1  // position in descending order
    while low < high {
        let middle = low + (high - low) / 2
        // Median of three, for sorted and constant inputs alike.
        let a = values[low], b = values[middle], c = values[high]
        let pivot = max(min(a, b), min(max(a, b), c))
        var i = low, j = high
        while i <= j {
            while values[i] > pivot { i += 1 }
            while values[j] < pivot { j -= 1 }
            if i <= j {
                values.swapAt(i, j)
                i += 1
                j -= 1
            }
        }
        if target <= j {
            high = j
        } else if target >= i {
            low = i
        } else {
            return values[target]
        }
    }
    return values[target]
}
