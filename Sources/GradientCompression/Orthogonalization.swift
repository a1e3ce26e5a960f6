/// Makes the columns of a row-major `rows × columns` matrix orthonormal, in place:
/// Gram-Schmidt with reorthogonalisation ("twice is enough", Giraud et al. 2005).
///
///     for each column j, left to right:
///         twice: subtract from it its projection onto each column before it
///         divide it by its norm
///
/// One pass of classical or modified Gram-Schmidt (PyTorch PowerSGD's
/// `_orthogonalize_gram_schmidt`) loses orthogonality in proportion to how nearly
/// dependent the columns are; the second pass restores it to float32 rounding for
/// any input, and dot products and norms accumulate in float64. A column that the
/// projections reduce to rounding noise (below 10⁻⁶ of its norm: the matrix has
/// lower rank than asked for, as the gradient of a layer with a dead unit does) is
/// set to zero instead of normalising the noise: its share of the approximation is
/// zero, where a division by a zero norm would make every gradient NaN (PyTorch
/// added an epsilon for this). Every rank passes the same matrix and gets the same bits.
///
/// Cost: 2 · rows · columns² multiply-adds.
func orthogonalizeColumns(_ matrix: UnsafeMutableBufferPointer<Float>, rows: Int, columns: Int) {
    precondition(matrix.count == rows * columns)
    func dot(_ a: Int, _ b: Int) -> Double {
        var sum = 0.0
        for i in 0..<rows { sum += Double(matrix[i * columns + a]) * Double(matrix[i * columns + b]) }
        return sum
    }
    for j in 0..<columns {
        let original = dot(j, j).squareRoot()
        for _ in 0..<2 {
            for earlier in 0..<j {
                let projection = dot(earlier, j)
                for i in 0..<rows {
                    matrix[i * columns + j] = Float(Double(matrix[i * columns + j]) - projection * Double(matrix[i * columns + earlier]))
                }
            }
        }
        let remaining = dot(j, j).squareRoot()
        if remaining <= 1e-6 * original || remaining == 0 {
            for i in 0..<rows { matrix[i * columns + j] = 0 }
        } else {
            let inverse = 1 / remaining
            for i in 0..<rows { matrix[i * columns + j] = Float(Double(matrix[i * columns + j]) * inverse) }
        }
    }
}
