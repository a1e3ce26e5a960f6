// The C surface of the numeric code: CBLAS from OpenBLAS, and the allocator knob the
// tensor code needs. No stable Swift API: only NeuralNet imports this module.
#ifndef CHORUS_COPENBLAS_SHIM_H
#define CHORUS_COPENBLAS_SHIM_H
#include <cblas.h>

#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
// Serve large blocks from the heap and keep freed memory there (see
// keepLargeAllocationsInHeap in NeuralNet).
static inline void chorus_keep_large_allocations_in_heap(void) {
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
#else
static inline void chorus_keep_large_allocations_in_heap(void) {}
#endif
#endif
