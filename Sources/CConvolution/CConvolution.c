// Direct 2-D convolution for the small kernels of CPU models like LeNet.
//
// Both kernels keep eight output channels in one vector register and a block of six
// output pixels (forward) or six kernel taps (weight gradient) in six accumulators,
// so every weight or gradient vector loaded feeds six fused multiply-adds and the
// image is read where it lies: there is no im2col matrix to write and read back, and
// no GEMM packing of it. Per image, forward costs Cout/8 x P x taps vector FMAs
// (P output pixels, taps = Cin x k x k), as does the weight gradient.
//
// The same source is compiled twice: for AVX2 with FMA (chosen at run time when the
// CPU has both) and for the baseline instruction set. The two differ in rounding
// (a fused multiply-add rounds once), so results are bitwise reproducible on one
// kind of CPU, as with OpenBLAS, whose kernels are chosen the same way.

#include "CConvolution.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

// The vector helpers below are always inlined, so the ABI for passing 32-byte vectors
// without AVX, which this warning is about, is never used.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float v8 __attribute__((vector_size(32)));

enum {
    LANES = 8,   // output channels per vector
    BLOCK = 6,   // accumulators per register block: 6 + the loaded vector + a broadcast fit 16 registers
};

#define INLINE static inline __attribute__((always_inline))

INLINE v8 splat(float f) { return (v8){f, f, f, f, f, f, f, f}; }
INLINE v8 load8(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
INLINE void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

static void *zeroed(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size);
    if (!p) abort();  // as a Swift array allocation would
    return p;
}

/// How one image is laid out for the kernels: zero-padded on every side, so no tap
/// needs a bounds test, and each tap's offset within it.
typedef struct {
    int taps, blocks, padded_width, plane;
    int *offset;   // offset[(ci * k + i) * k + j] = ci * plane + i * padded_width + j
    float *image;  // in_channels planes of padded_height x padded_width
} layout;

static layout make_layout(const chorus_conv_geometry *g) {
    layout l;
    const int k = g->kernel, padded_height = g->height + 2 * g->padding;
    l.taps = g->in_channels * k * k;
    l.blocks = (g->out_channels + LANES - 1) / LANES;
    l.padded_width = g->width + 2 * g->padding;
    l.plane = padded_height * l.padded_width;
    l.offset = zeroed((size_t)l.taps, sizeof(int));
    for (int ci = 0; ci < g->in_channels; ci++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) l.offset[(ci * k + i) * k + j] = ci * l.plane + i * l.padded_width + j;
    l.image = zeroed((size_t)g->in_channels * l.plane, sizeof(float));
    return l;
}

static void free_layout(layout *l) {
    free(l->offset);
    free(l->image);
}

/// Copies image `b` into the padded buffer's interior (its border stays zero).
INLINE void pad_image(const chorus_conv_geometry *g, const layout *l, const float *x, int b) {
    const size_t image = (size_t)g->in_channels * g->height * g->width;
    for (int ci = 0; ci < g->in_channels; ci++)
        for (int y = 0; y < g->height; y++)
            memcpy(l->image + ci * l->plane + (y + g->padding) * l->padded_width + g->padding,
                   x + b * image + ((size_t)ci * g->height + y) * g->width, (size_t)g->width * sizeof(float));
}

/// Channel-blocked copy of a [out_channels, count] matrix: packed[cb][n][lane] =
/// m[cb * 8 + lane][n], lanes past out_channels left as they are (zero).
INLINE void pack_channels(const float *m, int channels, int count, float *packed) {
    for (int c = 0; c < channels; c++)
        for (int n = 0; n < count; n++)
            packed[((size_t)(c / LANES) * count + n) * LANES + c % LANES] = m[(size_t)c * count + n];
}

INLINE void forward_body(const chorus_conv_geometry *g, const float *x, const float *weight,
                         const float *bias, float *y) {
    layout l = make_layout(g);
    const int taps = l.taps, s = g->stride, ow = g->out_width, pixels = g->out_height * ow;
    float *packed = zeroed((size_t)l.blocks * taps * LANES, sizeof(float));
    pack_channels(weight, g->out_channels, taps, packed);
    // at[p]: where output pixel p's window starts in the padded image. Blocks of six
    // consecutive pixels run across row ends, so rows of any width fill the blocks.
    int *at = zeroed((size_t)pixels, sizeof(int));
    for (int oy = 0; oy < g->out_height; oy++)
        for (int ox = 0; ox < ow; ox++) at[oy * ow + ox] = oy * s * l.padded_width + ox * s;
    for (int b = 0; b < g->batch; b++) {
        pad_image(g, &l, x, b);
        for (int cb = 0; cb < l.blocks; cb++) {
            const float *w = packed + (size_t)cb * taps * LANES;
            const int lanes = g->out_channels - cb * LANES < LANES ? g->out_channels - cb * LANES : LANES;
            v8 start = splat(0);
            for (int lane = 0; lane < lanes; lane++) start[lane] = bias[cb * LANES + lane];
            float *out = y + ((size_t)b * g->out_channels + cb * LANES) * pixels;
            for (int p0 = 0; p0 < pixels; p0 += BLOCK) {
                // A short last block repeats its last pixel in the spare accumulators
                // and stores only its own: one accumulator alone would wait on each
                // FMA's latency.
                const int count = pixels - p0 < BLOCK ? pixels - p0 : BLOCK;
                int p[BLOCK];
                for (int n = 0; n < BLOCK; n++) p[n] = p0 + (n < count ? n : count - 1);
                const float *q0 = l.image + at[p[0]], *q1 = l.image + at[p[1]], *q2 = l.image + at[p[2]],
                            *q3 = l.image + at[p[3]], *q4 = l.image + at[p[4]], *q5 = l.image + at[p[5]];
                v8 a0 = start, a1 = start, a2 = start, a3 = start, a4 = start, a5 = start;
                for (int t = 0; t < taps; t++) {
                    const v8 wv = load8(w + t * LANES);
                    const int o = l.offset[t];
                    a0 += splat(q0[o]) * wv;
                    a1 += splat(q1[o]) * wv;
                    a2 += splat(q2[o]) * wv;
                    a3 += splat(q3[o]) * wv;
                    a4 += splat(q4[o]) * wv;
                    a5 += splat(q5[o]) * wv;
                }
                const v8 a[BLOCK] = {a0, a1, a2, a3, a4, a5};
                for (int lane = 0; lane < lanes; lane++)
                    for (int n = 0; n < count; n++) out[(size_t)lane * pixels + p0 + n] = a[n][lane];
            }
        }
    }
    free(at);
    free(packed);
    free_layout(&l);
}

INLINE void weight_gradient_body(const chorus_conv_geometry *g, const float *x, const float *dy,
                                 float *weight_grad, float *bias_grad) {
    layout l = make_layout(g);
    const int taps = l.taps, s = g->stride, ow = g->out_width, pixels = g->out_height * ow;
    // Sums over the batch, channel-blocked like the packed weights of forward.
    float *grad = zeroed((size_t)l.blocks * taps * LANES, sizeof(float));
    float *bias_sum = zeroed((size_t)l.blocks * LANES, sizeof(float));
    // One image's output gradient, channel-blocked: dyt[cb][p][lane].
    float *dyt = zeroed((size_t)l.blocks * pixels * LANES, sizeof(float));
    for (int b = 0; b < g->batch; b++) {
        pad_image(g, &l, x, b);
        pack_channels(dy + (size_t)b * g->out_channels * pixels, g->out_channels, pixels, dyt);
        for (int cb = 0; cb < l.blocks; cb++) {
            const float *d = dyt + (size_t)cb * pixels * LANES;
            float *w = grad + (size_t)cb * taps * LANES;
            for (int t0 = 0; t0 < taps; t0 += BLOCK) {
                // A short last block repeats its last tap in the spare accumulators and
                // stores only its own: one accumulator alone would wait on each FMA's latency.
                const int count = taps - t0 < BLOCK ? taps - t0 : BLOCK;
                int t[BLOCK];
                for (int n = 0; n < BLOCK; n++) t[n] = t0 + (n < count ? n : count - 1);
                v8 a0 = load8(w + t[0] * LANES), a1 = load8(w + t[1] * LANES), a2 = load8(w + t[2] * LANES),
                   a3 = load8(w + t[3] * LANES), a4 = load8(w + t[4] * LANES), a5 = load8(w + t[5] * LANES);
                const int o0 = l.offset[t[0]], o1 = l.offset[t[1]], o2 = l.offset[t[2]],
                          o3 = l.offset[t[3]], o4 = l.offset[t[4]], o5 = l.offset[t[5]];
                for (int oy = 0; oy < g->out_height; oy++) {
                    const float *row = l.image + oy * s * l.padded_width;
                    const float *drow = d + (size_t)oy * ow * LANES;
                    for (int ox = 0; ox < ow; ox++) {
                        const float *q = row + ox * s;
                        const v8 dv = load8(drow + ox * LANES);
                        a0 += splat(q[o0]) * dv;
                        a1 += splat(q[o1]) * dv;
                        a2 += splat(q[o2]) * dv;
                        a3 += splat(q[o3]) * dv;
                        a4 += splat(q[o4]) * dv;
                        a5 += splat(q[o5]) * dv;
                    }
                }
                const v8 a[BLOCK] = {a0, a1, a2, a3, a4, a5};
                for (int n = 0; n < count; n++) store8(w + t[n] * LANES, a[n]);
            }
            v8 sum = load8(bias_sum + cb * LANES);
            for (int p = 0; p < pixels; p++) sum += load8(d + (size_t)p * LANES);
            store8(bias_sum + cb * LANES, sum);
        }
    }
    for (int co = 0; co < g->out_channels; co++) {
        const float *blocked = grad + (size_t)(co / LANES) * taps * LANES + co % LANES;
        for (int t = 0; t < taps; t++) weight_grad[(size_t)co * taps + t] += blocked[t * LANES];
        bias_grad[co] += bias_sum[co];
    }
    free(dyt);
    free(bias_sum);
    free(grad);
    free_layout(&l);
}

#if defined(__x86_64__)
#define AVX2_FMA __attribute__((target("avx2,fma")))

static int portable_only = 0;

static int has_avx2_fma(void) {
    return !portable_only && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

AVX2_FMA static void forward_avx2(const chorus_conv_geometry *g, const float *x, const float *weight,
                                  const float *bias, float *y) {
    forward_body(g, x, weight, bias, y);
}

AVX2_FMA static void weight_gradient_avx2(const chorus_conv_geometry *g, const float *x, const float *dy,
                                          float *weight_grad, float *bias_grad) {
    weight_gradient_body(g, x, dy, weight_grad, bias_grad);
}
#endif

void chorus_conv2d_use_portable_kernels(int portable) {
#if defined(__x86_64__)
    portable_only = portable;
#else
    (void)portable;
#endif
}

void chorus_conv2d_forward(const chorus_conv_geometry *g, const float *x, const float *weight,
                           const float *bias, float *y) {
#if defined(__x86_64__)
    if (has_avx2_fma()) {
        forward_avx2(g, x, weight, bias, y);
        return;
    }
#endif
    forward_body(g, x, weight, bias, y);
}

void chorus_conv2d_weight_gradient(const chorus_conv_geometry *g, const float *x, const float *dy,
                                   float *weight_grad, float *bias_grad) {
#if defined(__x86_64__)
    if (has_avx2_fma()) {
        weight_gradient_avx2(g, x, dy, weight_grad, bias_grad);
        return;
    }
#endif
    weight_gradient_body(g, x, dy, weight_grad, bias_grad);
}
