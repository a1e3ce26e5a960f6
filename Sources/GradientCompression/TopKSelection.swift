/// The indices of the `count` entries of `values` with the largest magnitude, in
/// ascending index order; among equal magnitudes the lower index wins, and NaN
/// counts as larger than any number, so the result is a function of the values
/// alone and never drops a non-finite entry.
///
/// Quickselect on the magnitudes finds the threshold (the count-th largest) in
/// O(n) expected time; one more pass takes every entry above it and the first
/// entries equal to it.
func largestMagnitudes(_ values: UnsafeBufferPointer<Float>, count: Int) -> [Int] {
    let n = values.count
    precondition(count >= 0 && count <= n)
    guard count > 0 else { return [] }
    guard count < n else { return Array(0..<n) }
    @inline(__always) func key(_ x: Float) -> Float { x.isNaN ? .infinity : abs(x) }
    var magnitudes = values.map(key)
    let threshold = magnitudes.withUnsafeMutableBufferPointer { kthLargest($0, count) }
    var above = 0
    for i in 0..<n where key(values[i]) > threshold { above += 1 }
    var equalsAllowed = count - above
    var chosen: [Int] = []
    chosen.reserveCapacity(count)
    for i in 0..<n {
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
private func kthLargest(_ values: UnsafeMutableBufferPointer<Float>, _ k: Int) -> Float {
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
