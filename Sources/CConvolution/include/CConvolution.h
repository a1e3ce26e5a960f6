#ifndef CHORUS_CCONVOLUTION_H
#define CHORUS_CCONVOLUTION_H

/// One convolution's shapes: NCHW images, a square kernel, the same stride and
/// zero padding on both axes. `out_height` and `out_width` follow from the rest;
/// the caller has checked that they are positive.
typedef struct {
    int batch;
    int in_channels, height, width;
    int out_channels, kernel, stride, padding;
    int out_height, out_width;
} chorus_conv_geometry;

/// y[b, co, oy, ox] = bias[co] + sum over (ci, i, j) of
///     weight[co, ci, i, j] * x[b, ci, oy*stride - padding + i, ox*stride - padding + j]
/// (zero outside the image). Overwrites y.
void chorus_conv2d_forward(const chorus_conv_geometry *g, const float *x, const float *weight,
                           const float *bias, float *y);

/// weight_grad[co, ci, i, j] += sum over (b, oy, ox) of dy[b, co, oy, ox] * x[b, ci, ...]
/// (the same taps as forward) and bias_grad[co] += sum of dy[b, co, ., .].
void chorus_conv2d_weight_gradient(const chorus_conv_geometry *g, const float *x, const float *dy,
                                   float *weight_grad, float *bias_grad);

/// Nonzero when `g`'s input gradient has a direct kernel (stride 1, at most six input
/// channels, padding below the kernel size, rows of at least 8 pixels).
int chorus_conv2d_has_direct_input_gradient(const chorus_conv_geometry *g);

/// dx[b, ci, y, x] = sum over (co, i, j) of weight[co, ci, i, j] * dy[b, co, y + padding - i,
/// x + padding - j] (zero outside dy). Overwrites dx. Only where
/// chorus_conv2d_has_direct_input_gradient(g).
void chorus_conv2d_input_gradient(const chorus_conv_geometry *g, const float *dy, const float *weight, float *dx);

/// Which kernels `g` takes on this CPU, e.g. "avx2-fma pixel lanes" (for tests and
/// reports).
const char *chorus_conv2d_kernels(const chorus_conv_geometry *g);

/// Nonzero: use the baseline-instruction-set kernels even where AVX2 and FMA are
/// present (for tests of that path); zero: choose by the CPU (the default).
void chorus_conv2d_use_portable_kernels(int portable);

#endif
