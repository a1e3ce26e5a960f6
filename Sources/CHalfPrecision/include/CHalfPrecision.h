// Conversions between float32 and the 16-bit formats gradient compression sends
// (IEEE binary16, bfloat16), and the reduction kernels of the collectives on them:
// the addition and the scaling in float32, the result rounded to nearest even to the
// 16-bit format (with scale 1, as the compression hooks use them, one rounding). binary16
// uses the CPU's F16C instructions when it has them (8 values per instruction),
// exact software conversion otherwise; both give the same bits for every number.
#ifndef CHORUS_HALF_PRECISION_H
#define CHORUS_HALF_PRECISION_H
#include <stddef.h>
#include <stdint.h>

// y[i] = narrow(x[i] * scale)
void chorus_f32_to_f16(const float *x, uint16_t *y, size_t n, float scale);
void chorus_f32_to_bf16(const float *x, uint16_t *y, size_t n, float scale);
// y[i] = float(x[i])
void chorus_f16_to_f32(const uint16_t *x, float *y, size_t n);
void chorus_bf16_to_f32(const uint16_t *x, float *y, size_t n);
// out[i] = narrow((float(a[i]) + float(b[i])) * scale); `out` may alias `a` or `b`.
void chorus_f16_sum(const uint16_t *a, const uint16_t *b, uint16_t *out, size_t n, float scale);
void chorus_bf16_sum(const uint16_t *a, const uint16_t *b, uint16_t *out, size_t n, float scale);
// x[i] = narrow(float(x[i]) * scale)
void chorus_f16_scale(uint16_t *x, size_t n, float scale);
void chorus_bf16_scale(uint16_t *x, size_t n, float scale);

#endif
