// Acquire/release flags in memory shared between processes (an MPI shared window),
// where Swift's Synchronization.Atomic cannot live: it must own its storage.
#ifndef CHORUS_CATOMICS_H
#define CHORUS_CATOMICS_H
#include <stdint.h>

static inline int64_t chorus_load_acquire(const int64_t *address) {
    return __atomic_load_n(address, __ATOMIC_ACQUIRE);
}

static inline void chorus_store_release(int64_t *address, int64_t value) {
    __atomic_store_n(address, value, __ATOMIC_RELEASE);
}

// A hint to the core that this is a spin-wait loop (saves power, frees the sibling
// hyperthread, avoids a memory-order mis-speculation on exit).
static inline void chorus_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
#endif
