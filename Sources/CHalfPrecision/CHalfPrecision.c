#include "CHalfPrecision.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// ---- exact software conversions ------------------------------------------------

static inline uint32_t bits_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float float_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

// float32 -> binary16, round to nearest even; overflow to infinity, NaN stays a quiet
// NaN, subnormals rounded correctly (the F16C instruction's results, bit for bit).
static inline uint16_t soft_to_f16(float f) {
    uint32_t u = bits_of(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7FFFFFFF;
    if (a > 0x7F800000) return sign | 0x7E00 | (uint16_t)((a >> 13) & 0x3FF);  // NaN: quiet, payload's top bits
    if (a >= 0x477FF000) return sign | 0x7C00;  // rounds to 65536 or more: infinity
    if (a < 0x38800000) {  // below 2^-14: a binary16 subnormal (or zero)
        if (a < 0x33000000) return sign;  // below 2^-25: rounds to zero
        uint32_t mantissa = (a & 0x7FFFFF) | 0x800000;
        int shift = 126 - (int)(a >> 23);  // 14..24 bits to drop
        uint32_t kept = mantissa >> shift, rest = mantissa & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (kept & 1))) kept += 1;
        return sign | (uint16_t)kept;
    }
    uint32_t rounded = a - 0x38000000;  // rebias the exponent: 127 - 15 = 112
    rounded += 0xFFF + ((rounded >> 13) & 1);  // to nearest even at bit 13; a carry bumps the exponent
    return sign | (uint16_t)(rounded >> 13);
}

static inline float soft_from_f16(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    if (exponent == 0x1F) return float_of(sign | 0x7F800000 | (mantissa << 13));
    if (exponent == 0) {
        // zero or subnormal: mantissa · 2^-24, exact in float32
        float magnitude = (float)mantissa * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    return float_of(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

static inline uint16_t to_bf16(float f) {
    uint32_t u = bits_of(f);
    if ((u & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7FFF + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static inline float from_bf16(uint16_t h) { return float_of((uint32_t)h << 16); }

// ---- binary16 with F16C ----------------------------------------------------------

#if defined(__x86_64__)
#define F16C __attribute__((target("avx,f16c")))

static int has_f16c(void) { return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c"); }

F16C static inline __m256 load8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
F16C static inline void store8(uint16_t *p, __m256 v) {
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

F16C static size_t f16c_to_f16(const float *x, uint16_t *y, size_t n, float scale) {
    __m256 s = _mm256_set1_ps(scale);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) store8(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), s));
    return i;
}

F16C static size_t f16c_from_f16(const uint16_t *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load8(x + i));
    return i;
}

F16C static size_t f16c_sum(const uint16_t *a, const uint16_t *b, uint16_t *out, size_t n, float scale) {
    __m256 s = _mm256_set1_ps(scale);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) store8(out + i, _mm256_mul_ps(_mm256_add_ps(load8(a + i), load8(b + i)), s));
    return i;
}

F16C static size_t f16c_scale(uint16_t *x, size_t n, float scale) {
    __m256 s = _mm256_set1_ps(scale);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) store8(x + i, _mm256_mul_ps(load8(x + i), s));
    return i;
}
#endif

void chorus_f32_to_f16(const float *x, uint16_t *y, size_t n, float scale) {
    size_t i = 0;
#if defined(__x86_64__)
    if (has_f16c()) i = f16c_to_f16(x, y, n, scale);
#endif
    for (; i < n; i++) y[i] = soft_to_f16(x[i] * scale);
}

void chorus_f16_to_f32(const uint16_t *x, float *y, size_t n) {
    size_t i = 0;
#if defined(__x86_64__)
    if (has_f16c()) i = f16c_from_f16(x, y, n);
#endif
    for (; i < n; i++) y[i] = soft_from_f16(x[i]);
}

void chorus_f16_sum(const uint16_t *a, const uint16_t *b, uint16_t *out, size_t n, float scale) {
    size_t i = 0;
#if defined(__x86_64__)
    if (has_f16c()) i = f16c_sum(a, b, out, n, scale);
#endif
    for (; i < n; i++) out[i] = soft_to_f16((soft_from_f16(a[i]) + soft_from_f16(b[i])) * scale);
}

void chorus_f16_scale(uint16_t *x, size_t n, float scale) {
    size_t i = 0;
#if defined(__x86_64__)
    if (has_f16c()) i = f16c_scale(x, n, scale);
#endif
    for (; i < n; i++) x[i] = soft_to_f16(soft_from_f16(x[i]) * scale);
}

// ---- bfloat16: integer arithmetic the compiler vectorises -------------------------

void chorus_f32_to_bf16(const float *x, uint16_t *y, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) y[i] = to_bf16(x[i] * scale);
}

void chorus_bf16_to_f32(const uint16_t *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = from_bf16(x[i]);
}

void chorus_bf16_sum(const uint16_t *a, const uint16_t *b, uint16_t *out, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) out[i] = to_bf16((from_bf16(a[i]) + from_bf16(b[i])) * scale);
}

void chorus_bf16_scale(uint16_t *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = to_bf16(from_bf16(x[i]) * scale);
}
