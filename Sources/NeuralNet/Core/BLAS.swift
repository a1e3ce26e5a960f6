import COpenBLAS

/// Row-major single-precision matrix multiply and friends, through OpenBLAS.
public enum BLAS {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, all row-major and densely packed.
    /// op(A) is m×k (A stored k×m when `transposeA`), op(B) is k×n (B stored n×k when
    /// `transposeB`).
    @inline(__always)
    public static func gemm(_ a: UnsafePointer<Float>, transposeA: Bool = false,
                            _ b: UnsafePointer<Float>, transposeB: Bool = false,
                            _ c: UnsafeMutablePointer<Float>,
                            m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0) {
        guard m > 0 && n > 0 else { return }
        guard k > 0 else {
            // BLAS leaves C untouched for k = 0 only when beta = 1; make the contract explicit.
            if beta == 0 { c.update(repeating: 0, count: m * n) } else if beta != 1 {
                for i in 0..<(m * n) { c[i] *= beta }
            }
            return
        }
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans,
                    transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(transposeA ? m : k),
                    b, Int32(transposeB ? k : n),
                    beta, c, Int32(n))
    }

    /// Sets how many threads OpenBLAS may use in this process. With several ranks on
    /// one node each should use its share of the cores, or they oversubscribe them.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }
}

/// Every training step allocates the same large activation buffers (LeNet's im2col
/// matrix alone is megabytes). By default glibc serves such sizes with fresh mmap
/// pages and returns them on free, so each step pays for page faults and zeroing
/// again; keeping them in the heap makes the next step reuse the same memory (what
/// PyTorch's caching allocator achieves for tensors).
public func keepLargeAllocationsInHeap() {
    chorus_keep_large_allocations_in_heap()
}
