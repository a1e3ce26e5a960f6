// Direct 2-D convolution for the small kernels of CPU models like LeNet.
//
// Two layouts of the work, both reading the image where it lies (a zero-padded
// copy): there is no im2col matrix to write and read back, and no GEMM packing of it.
//
// - Channel lanes (the general case): eight output channels in one vector register,
//   a block of six output pixels (forward) or six kernel taps (weight gradient) in
//   six accumulators, one or two channel blocks per pass, so every weight or
//   gradient vector loaded feeds six or twelve fused multiply-adds. Per image,
//   forward costs ceil(Cout/8) x P x taps vector FMAs (P output pixels,
//   taps = Cin x k x k), as does the weight gradient.
// - Pixel lanes (stride 1, at most six output channels, rows of at least 16 output
//   pixels, like LeNet's first layer): consecutive pixels of a row in the lanes, six
//   channels, twelve accumulators: sixteen pixels in two registers (forward) or
//   eight pixels for two taps (weight gradient). With six channels, channel lanes
//   would leave a quarter of every vector empty and spend as long storing its
//   results as computing them. The input gradient of a stride-1 layer with at most
//   six input channels (LeNet's second) is the same layout over the input's pixels
//   and channels, reading the output gradient from a zero-bordered copy.
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
    GROUP = 6,   // output channels of a pixel-lane block: 6 x 2 vectors + 2 loaded + 1 broadcast fit 16
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
    // A vector's worth of slack after the image: the pixel-lane weight gradient reads
    // whole vectors, up to 7 floats past a row's end (the last row's into the slack);
    // the output gradient there is zero, so those values add nothing (when finite).
    l.image = zeroed((size_t)g->in_channels * l.plane + LANES, sizeof(float));
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

/// Channel-blocked copy of a [channels, count] matrix: packed[n][c / 8][c % 8] =
/// m[c][n], lanes past `channels` left as they are (zero). All blocks of one n are
/// adjacent, so a pair of blocks is read from one place.
INLINE void pack_channels(const float *m, int channels, int count, float *packed) {
    const int blocks = (channels + LANES - 1) / LANES;
    for (int c = 0; c < channels; c++)
        for (int n = 0; n < count; n++)
            packed[((size_t)n * blocks + c / LANES) * LANES + c % LANES] = m[(size_t)c * count + n];
}

/// Output channels in block `cb`: 8, or fewer in the last block.
INLINE int lanes_in(const chorus_conv_geometry *g, int cb) {
    const int rest = g->out_channels - cb * LANES;
    return rest < LANES ? rest : LANES;
}

/// The indices of a register block starting at `first` of `total`: a short last
/// block repeats its last index in the spare accumulators, which are not stored,
/// since one accumulator alone would wait on each FMA's latency. Returns how many
/// are its own.
INLINE int block_indices(int first, int total, int index[BLOCK]) {
    const int count = total - first < BLOCK ? total - first : BLOCK;
    for (int n = 0; n < BLOCK; n++) index[n] = first + (n < count ? n : count - 1);
    return count;
}

/// Forward for channel blocks cb..cb+nb-1 (nb = 1 or 2, a constant once inlined) of
/// one padded image: six pixels at a time, each broadcast pixel feeding nb FMAs.
/// Two blocks at once (16 output channels) load 8 vectors per 12 FMAs instead of
/// 14, so the FMA units rather than the loads set the pace.
INLINE void forward_blocks(const int nb, const chorus_conv_geometry *g, const layout *l, const float *packed,
                           const int *at, const float *bias, int cb, float *out) {
    const int taps = l->taps, pixels = g->out_height * g->out_width, row = l->blocks * LANES;
    v8 start[2];
    for (int c = 0; c < nb; c++) {
        start[c] = splat(0);
        for (int lane = 0; lane < lanes_in(g, cb + c); lane++) start[c][lane] = bias[(cb + c) * LANES + lane];
    }
    for (int p0 = 0; p0 < pixels; p0 += BLOCK) {
        int p[BLOCK];
        const int count = block_indices(p0, pixels, p);
        const float *q[BLOCK];
        for (int n = 0; n < BLOCK; n++) q[n] = l->image + at[p[n]];
        v8 acc[2][BLOCK];
        for (int c = 0; c < nb; c++)
            for (int n = 0; n < BLOCK; n++) acc[c][n] = start[c];
        for (int t = 0; t < taps; t++) {
            const float *w = packed + (size_t)t * row + cb * LANES;
            const int o = l->offset[t];
            v8 wv[2];
            for (int c = 0; c < nb; c++) wv[c] = load8(w + c * LANES);
            for (int n = 0; n < BLOCK; n++) {
                const v8 xv = splat(q[n][o]);
                for (int c = 0; c < nb; c++) acc[c][n] += xv * wv[c];
            }
        }
        for (int c = 0; c < nb; c++)
            for (int lane = 0; lane < lanes_in(g, cb + c); lane++)
                for (int n = 0; n < count; n++) out[(size_t)((cb + c) * LANES + lane) * pixels + p0 + n] = acc[c][n][lane];
    }
}

INLINE void forward_body(const chorus_conv_geometry *g, const float *x, const float *weight,
                         const float *bias, float *y) {
    layout l = make_layout(g);
    const int s = g->stride, ow = g->out_width, pixels = g->out_height * ow;
    float *packed = zeroed((size_t)l.taps * l.blocks * LANES, sizeof(float));
    pack_channels(weight, g->out_channels, l.taps, packed);
    // at[p]: where output pixel p's window starts in the padded image. Blocks of six
    // consecutive pixels run across row ends, so rows of any width fill the blocks.
    int *at = zeroed((size_t)pixels, sizeof(int));
    for (int oy = 0; oy < g->out_height; oy++)
        for (int ox = 0; ox < ow; ox++) at[oy * ow + ox] = oy * s * l.padded_width + ox * s;
    for (int b = 0; b < g->batch; b++) {
        pad_image(g, &l, x, b);
        float *out = y + (size_t)b * g->out_channels * pixels;
        int cb = 0;
        for (; cb + 2 <= l.blocks; cb += 2) forward_blocks(2, g, &l, packed, at, bias, cb, out);
        if (cb < l.blocks) forward_blocks(1, g, &l, packed, at, bias, cb, out);
    }
    free(at);
    free(packed);
    free_layout(&l);
}

/// Weight gradient of channel blocks cb..cb+nb-1 for one padded image, six taps at
/// a time, over every output pixel; `grad` and `dyt` are channel-blocked like the
/// packed weights of forward.
INLINE void weight_gradient_blocks(const int nb, const chorus_conv_geometry *g, const layout *l,
                                   const float *dyt, int cb, float *grad) {
    const int taps = l->taps, s = g->stride, ow = g->out_width, row = l->blocks * LANES;
    for (int t0 = 0; t0 < taps; t0 += BLOCK) {
        int t[BLOCK], o[BLOCK];
        const int count = block_indices(t0, taps, t);
        for (int n = 0; n < BLOCK; n++) o[n] = l->offset[t[n]];
        v8 acc[2][BLOCK];
        for (int c = 0; c < nb; c++)
            for (int n = 0; n < BLOCK; n++) acc[c][n] = load8(grad + (size_t)t[n] * row + (cb + c) * LANES);
        for (int oy = 0; oy < g->out_height; oy++) {
            const float *image_row = l->image + oy * s * l->padded_width;
            const float *d = dyt + (size_t)oy * ow * row + cb * LANES;
            for (int ox = 0; ox < ow; ox++) {
                const float *q = image_row + ox * s;
                v8 dv[2];
                for (int c = 0; c < nb; c++) dv[c] = load8(d + (size_t)ox * row + c * LANES);
                for (int n = 0; n < BLOCK; n++) {
                    const v8 xv = splat(q[o[n]]);
                    for (int c = 0; c < nb; c++) acc[c][n] += xv * dv[c];
                }
            }
        }
        for (int c = 0; c < nb; c++)
            for (int n = 0; n < count; n++) store8(grad + (size_t)t[n] * row + (cb + c) * LANES, acc[c][n]);
    }
}

INLINE void weight_gradient_body(const chorus_conv_geometry *g, const float *x, const float *dy,
                                 float *weight_grad, float *bias_grad) {
    layout l = make_layout(g);
    const int taps = l.taps, pixels = g->out_height * g->out_width, row = l.blocks * LANES;
    // Sums over the batch, channel-blocked like the packed weights of forward.
    float *grad = zeroed((size_t)taps * row, sizeof(float));
    float *bias_sum = zeroed((size_t)row, sizeof(float));
    // One image's output gradient, channel-blocked: dyt[p][cb][lane].
    float *dyt = zeroed((size_t)pixels * row, sizeof(float));
    for (int b = 0; b < g->batch; b++) {
        pad_image(g, &l, x, b);
        pack_channels(dy + (size_t)b * g->out_channels * pixels, g->out_channels, pixels, dyt);
        int cb = 0;
        for (; cb + 2 <= l.blocks; cb += 2) weight_gradient_blocks(2, g, &l, dyt, cb, grad);
        if (cb < l.blocks) weight_gradient_blocks(1, g, &l, dyt, cb, grad);
        for (int c = 0; c < l.blocks; c++) {
            v8 sum = load8(bias_sum + c * LANES);
            for (int p = 0; p < pixels; p++) sum += load8(dyt + (size_t)p * row + c * LANES);
            store8(bias_sum + c * LANES, sum);
        }
    }
    for (int co = 0; co < g->out_channels; co++) {
        const float *blocked = grad + (size_t)(co / LANES) * LANES + co % LANES;
        for (int t = 0; t < taps; t++) weight_grad[(size_t)co * taps + t] += blocked[(size_t)t * row];
        bias_grad[co] += bias_sum[co];
    }
    free(dyt);
    free(bias_sum);
    free(grad);
    free_layout(&l);
}

// ---- pixel lanes ---------------------------------------------------------------

/// Whether `g` takes the pixel-lane kernels (see the top of this file).
INLINE int uses_pixel_lanes(const chorus_conv_geometry *g) {
    return g->stride == 1 && g->out_channels <= GROUP && g->out_width >= 2 * LANES;
}

/// The weights as wg[tap][GROUP], channels past out_channels zero.
INLINE float *grouped_weights(const chorus_conv_geometry *g, int taps, const float *weight) {
    float *wg = zeroed((size_t)taps * GROUP, sizeof(float));
    for (int co = 0; co < g->out_channels; co++)
        for (int t = 0; t < taps; t++) wg[(size_t)t * GROUP + co] = weight[(size_t)co * taps + t];
    return wg;
}

INLINE void forward_pixel_lanes(const chorus_conv_geometry *g, const float *x, const float *weight,
                                const float *bias, float *y) {
    layout l = make_layout(g);
    const int taps = l.taps, ow = g->out_width, pixels = g->out_height * ow;
    float *wg = grouped_weights(g, taps, weight);
    float start[GROUP] = {0};
    for (int co = 0; co < g->out_channels; co++) start[co] = bias[co];
    for (int b = 0; b < g->batch; b++) {
        pad_image(g, &l, x, b);
        float *out = y + (size_t)b * g->out_channels * pixels;
        for (int oy = 0; oy < g->out_height; oy++) {
            for (int ox0 = 0; ox0 < ow; ox0 += 2 * LANES) {
                // A row's last block ends at the row's end, overlapping the one
                // before: recomputed pixels get the same values.
                const int first = ox0 + 2 * LANES <= ow ? ox0 : ow - 2 * LANES;
                const float *base = l.image + oy * l.padded_width + first;
                v8 acc[GROUP][2];
                for (int c = 0; c < GROUP; c++) acc[c][0] = acc[c][1] = splat(start[c]);
                for (int t = 0; t < taps; t++) {
                    const float *q = base + l.offset[t], *w = wg + (size_t)t * GROUP;
                    const v8 x0 = load8(q), x1 = load8(q + LANES);
                    for (int c = 0; c < GROUP; c++) {
                        const v8 wv = splat(w[c]);
                        acc[c][0] += wv * x0;
                        acc[c][1] += wv * x1;
                    }
                }
                for (int c = 0; c < g->out_channels; c++) {
                    float *row = out + (size_t)c * pixels + oy * ow + first;
                    store8(row, acc[c][0]);
                    store8(row + LANES, acc[c][1]);
                }
            }
        }
    }
    free(wg);
    free_layout(&l);
}

INLINE float sum_lanes(v8 v) {
    float sum = 0;
    for (int lane = 0; lane < LANES; lane++) sum += v[lane];
    return sum;
}

INLINE void weight_gradient_pixel_lanes(const chorus_conv_geometry *g, const float *x, const float *dy,
                                        float *weight_grad, float *bias_grad) {
    layout l = make_layout(g);
    const int taps = l.taps, ow = g->out_width, pixels = g->out_height * ow;
    // One image's output gradient in rows padded to whole vectors with zeros, and
    // GROUP channels (zero past out_channels): the padding multiplies whatever the
    // vectors read past a row's end by zero.
    const int vectors = (ow + LANES - 1) / LANES, padded_row = vectors * LANES;
    float *dyp = zeroed((size_t)GROUP * g->out_height * padded_row, sizeof(float));
    // Per (tap, channel), a vector of partial sums over the batch, added across its
    // lanes at the end.
    float *partial = zeroed((size_t)taps * GROUP * LANES, sizeof(float));
    v8 bias_partial[GROUP];
    for (int c = 0; c < GROUP; c++) bias_partial[c] = splat(0);
    for (int b = 0; b < g->batch; b++) {
        pad_image(g, &l, x, b);
        for (int c = 0; c < g->out_channels; c++)
            for (int oy = 0; oy < g->out_height; oy++)
                memcpy(dyp + ((size_t)c * g->out_height + oy) * padded_row,
                       dy + ((size_t)b * g->out_channels + c) * pixels + oy * ow, (size_t)ow * sizeof(float));
        for (int t0 = 0; t0 < taps; t0 += 2) {
            // Two taps at a time; an odd last tap repeats itself and is stored once.
            const int t1 = t0 + 1 < taps ? t0 + 1 : t0;
            const int o0 = l.offset[t0], o1 = l.offset[t1];
            v8 acc[GROUP][2];
            for (int c = 0; c < GROUP; c++) {
                acc[c][0] = load8(partial + ((size_t)t0 * GROUP + c) * LANES);
                acc[c][1] = load8(partial + ((size_t)t1 * GROUP + c) * LANES);
            }
            for (int oy = 0; oy < g->out_height; oy++) {
                const float *image_row = l.image + oy * l.padded_width;
                for (int v = 0; v < vectors; v++) {
                    const v8 x0 = load8(image_row + v * LANES + o0), x1 = load8(image_row + v * LANES + o1);
                    const float *d = dyp + (size_t)oy * padded_row + v * LANES;
                    for (int c = 0; c < GROUP; c++) {
                        const v8 dv = load8(d + (size_t)c * g->out_height * padded_row);
                        acc[c][0] += dv * x0;
                        acc[c][1] += dv * x1;
                    }
                }
            }
            for (int c = 0; c < GROUP; c++) {
                store8(partial + ((size_t)t0 * GROUP + c) * LANES, acc[c][0]);
                if (t1 != t0) store8(partial + ((size_t)t1 * GROUP + c) * LANES, acc[c][1]);
            }
        }
        for (int c = 0; c < g->out_channels; c++)
            for (int i = 0; i < g->out_height * padded_row; i += LANES)
                bias_partial[c] += load8(dyp + (size_t)c * g->out_height * padded_row + i);
    }
    for (int co = 0; co < g->out_channels; co++) {
        for (int t = 0; t < taps; t++)
            weight_grad[(size_t)co * taps + t] += sum_lanes(load8(partial + ((size_t)t * GROUP + co) * LANES));
        bias_grad[co] += sum_lanes(bias_partial[co]);
    }
    free(partial);
    free(dyp);
    free_layout(&l);
}

// ---- input gradient ------------------------------------------------------------

/// Whether `g`'s input gradient has a direct kernel here: stride 1, at most six input
/// channels, padding below the kernel, rows of at least 8 pixels (LeNet's second layer).
INLINE int has_direct_input_gradient(const chorus_conv_geometry *g) {
    return g->stride == 1 && g->in_channels <= GROUP && g->padding < g->kernel && g->width >= LANES;
}

/// dx[b, ci, y, x] = sum over (co, i, j) of weight[co, ci, i, j] * dy[b, co, y + p - i, x + p - j]
/// (zero outside dy), with pixel lanes: sixteen pixels of an input row (two vectors,
/// the last pair overlapping the one before) and six input channels, twelve
/// accumulators, each dy vector feeding six FMAs. dy is copied into a zero border of
/// k - 1 - p, so a vector never needs a bounds test, and the kernel rows that fall
/// wholly in the border are skipped (for LeNet's conv2, 20 of every 70).
INLINE void input_gradient_pixel_lanes(const chorus_conv_geometry *g, const float *dy, const float *weight, float *dx) {
    const int k = g->kernel, cin = g->in_channels, cout = g->out_channels, h = g->height, w = g->width;
    const int border = k - 1 - g->padding, padded_height = h + k - 1, padded_width = w + k - 1;
    const int oh = g->out_height, ow = g->out_width, pixels = oh * ow, taps = k * cout * k;
    float *dyp = zeroed((size_t)cout * padded_height * padded_width, sizeof(float));
    // Taps in the order (i, co, j), so the kernel rows a row of dx needs are one run
    // of taps: offset[t] into dyp for dx row 0, wg[t][c] = weight[co][c][i][j]
    // (input channels past in_channels zero). One flat tap loop, as in forward: with
    // three nested loops here the compiler spilled the accumulators.
    int *offset = zeroed((size_t)taps, sizeof(int));
    float *wg = zeroed((size_t)taps * GROUP, sizeof(float));
    for (int i = 0; i < k; i++)
        for (int co = 0; co < cout; co++)
            for (int j = 0; j < k; j++) {
                const int t = (i * cout + co) * k + j;
                offset[t] = (co * padded_height + k - 1 - i) * padded_width + k - 1 - j;
                for (int c = 0; c < cin; c++) wg[(size_t)t * GROUP + c] = weight[(((size_t)co * cin + c) * k + i) * k + j];
            }
    for (int b = 0; b < g->batch; b++) {
        for (int co = 0; co < cout; co++)
            for (int oy = 0; oy < oh; oy++)
                memcpy(dyp + ((size_t)co * padded_height + oy + border) * padded_width + border,
                       dy + ((size_t)b * cout + co) * pixels + oy * ow, (size_t)ow * sizeof(float));
        float *out = dx + (size_t)b * cin * h * w;
        for (int y = 0; y < h; y++) {
            // Kernel rows i whose dy row y + p - i exists: padded row y + k - 1 - i in [border, border + oh).
            const int i_low = y + k - 1 - (border + oh - 1) > 0 ? y + k - 1 - (border + oh - 1) : 0;
            const int i_high = y + k - 1 - border < k - 1 ? y + k - 1 - border : k - 1;
            const int first = i_low * cout * k, end = i_low <= i_high ? (i_high + 1) * cout * k : first;
            const float *row = dyp + (size_t)y * padded_width;
            for (int x0 = 0; x0 < w; x0 += 2 * LANES) {
                // Two vectors at a and a2, ending no later than the row's end.
                const int a = x0 + LANES <= w ? x0 : w - LANES;
                const int a2 = a + 2 * LANES <= w ? a + LANES : w - LANES;
                v8 acc[GROUP][2];
                for (int c = 0; c < GROUP; c++) acc[c][0] = acc[c][1] = splat(0);
                for (int t = first; t < end; t++) {
                    const float *q = row + offset[t], *wt = wg + (size_t)t * GROUP;
                    const v8 d0 = load8(q + a), d1 = load8(q + a2);
                    for (int c = 0; c < GROUP; c++) {
                        const v8 wv = splat(wt[c]);
                        acc[c][0] += wv * d0;
                        acc[c][1] += wv * d1;
                    }
                }
                for (int c = 0; c < cin; c++) {
                    store8(out + ((size_t)c * h + y) * w + a, acc[c][0]);
                    store8(out + ((size_t)c * h + y) * w + a2, acc[c][1]);
                }
            }
        }
    }
    free(wg);
    free(offset);
    free(dyp);
}

// ---- entry points ----------------------------------------------------------------

INLINE void forward_any(const chorus_conv_geometry *g, const float *x, const float *weight, const float *bias, float *y) {
    if (uses_pixel_lanes(g)) forward_pixel_lanes(g, x, weight, bias, y);
    else forward_body(g, x, weight, bias, y);
}

INLINE void weight_gradient_any(const chorus_conv_geometry *g, const float *x, const float *dy,
                                float *weight_grad, float *bias_grad) {
    if (uses_pixel_lanes(g)) weight_gradient_pixel_lanes(g, x, dy, weight_grad, bias_grad);
    else weight_gradient_body(g, x, dy, weight_grad, bias_grad);
}

// The AVX2 builds of the three kernels: on other architectures the same functions
// without the target attribute, never chosen (has_avx2_fma is 0), so the entry
// points below need no #if of their own.
#if defined(__x86_64__)
#define AVX2_FMA __attribute__((target("avx2,fma")))
#else
#define AVX2_FMA
#endif

// Set by tests (chorus_conv2d_use_portable_kernels); atomic, as any thread may read it.
static int portable_only = 0;

static int has_avx2_fma(void) {
#if defined(__x86_64__)
    return !__atomic_load_n(&portable_only, __ATOMIC_RELAXED) && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

AVX2_FMA static void forward_avx2(const chorus_conv_geometry *g, const float *x, const float *weight,
                                  const float *bias, float *y) {
    forward_any(g, x, weight, bias, y);
}

AVX2_FMA static void weight_gradient_avx2(const chorus_conv_geometry *g, const float *x, const float *dy,
                                          float *weight_grad, float *bias_grad) {
    weight_gradient_any(g, x, dy, weight_grad, bias_grad);
}

AVX2_FMA static void input_gradient_avx2(const chorus_conv_geometry *g, const float *dy, const float *weight, float *dx) {
    input_gradient_pixel_lanes(g, dy, weight, dx);
}

void chorus_conv2d_use_portable_kernels(int portable) { __atomic_store_n(&portable_only, portable, __ATOMIC_RELAXED); }

const char *chorus_conv2d_kernels(const chorus_conv_geometry *g) {
    const int avx2 = has_avx2_fma(), pixels = uses_pixel_lanes(g);
    return avx2 ? (pixels ? "avx2-fma pixel lanes" : "avx2-fma channel lanes")
                : (pixels ? "portable pixel lanes" : "portable channel lanes");
}

void chorus_conv2d_forward(const chorus_conv_geometry *g, const float *x, const float *weight,
                           const float *bias, float *y) {
    if (has_avx2_fma()) forward_avx2(g, x, weight, bias, y);
    else forward_any(g, x, weight, bias, y);
}

int chorus_conv2d_has_direct_input_gradient(const chorus_conv_geometry *g) { return has_direct_input_gradient(g); }

void chorus_conv2d_input_gradient(const chorus_conv_geometry *g, const float *dy, const float *weight, float *dx) {
    if (has_avx2_fma()) input_gradient_avx2(g, dy, weight, dx);
    else input_gradient_pixel_lanes(g, dy, weight, dx);
}

void chorus_conv2d_weight_gradient(const chorus_conv_geometry *g, const float *x, const float *dy,
                                   float *weight_grad, float *bias_grad) {
    if (has_avx2_fma()) weight_gradient_avx2(g, x, dy, weight_grad, bias_grad);
    else weight_gradient_any(g, x, dy, weight_grad, bias_grad);
}
