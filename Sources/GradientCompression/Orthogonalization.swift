/// Makes the columns of a row-major `rows × columns` matrix orthonormal, in place:
/// modified Gram-Schmidt, each column normalised and then projected out of the
/// columns after it (PyTorch PowerSGD's `_orthogonalize_gram_schmidt`).
///
/// Dot products and norms accumulate in float64, so for the ranks PowerSGD uses (1
/// to 8 columns) the columns come out orthogonal to float32 rounding even when the
/// input's columns are nearly parallel. A column that is zero, or becomes zero once
/// the earlier ones are projected out (a matrix of lower rank than asked for), is
/// set to zero instead of dividing by its norm: its share of the approximation is
/// then zero, where a division would make every gradient NaN (PyTorch added an
/// epsilon for this). Every rank passes the same matrix and so gets the same bits.
///
/// Cost: rows · columns² multiply-adds.
func orthogonalizeColumns(_ matrix: UnsafeMutableBufferPointer<Float>, rows: Int, columns: Int) {
    precondition(matrix.count == rows * columns)
    for j in 0..<columns {
        var squares = 0.0
        for i in 0..<rows { squares += Double(matrix[i * columns + j]) * Double(matrix[i * columns + j]) }
        let norm = squares.squareRoot()
        // Below this the column is rounding noise of the projections before it.
        guard norm > 1e-30 else {
            for i in 0..<rows { matrix[i * columns + j] = 0 }
            continue
        }
        let inverse = 1 / norm
        for i in 0..<rows { matrix[i * columns + j] = Float(Double(matrix[i * columns + j]) * inverse) }
        for k in (j + 1)..<max(columns, j + 1) {
            var dot = 0.0
            for i in 0..<rows { dot += Double(matrix[i * columns + j]) * Double(matrix[i * columns + k]) }
            for i in 0..<rows {
                matrix[i * columns + k] = Float(Double(matrix[i * columns + k]) - dot * Double(matrix[i * columns + j]))
            }
        }
    }
}
