/* DEPTHWISE_CONV_2D: int8 depthwise convolution with a depth multiplier and per-channel
 * requantization. */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_PORTABLE

#include "tinykd_portable.h"

/* Each output pixel's channels in order, each from its taps read in place:
 * from the input where the filter lies inside it, else from a patch of the pixel's taps (the padding as
 * the zero point, which adds nothing once the input offset is folded into the sums). Stack: the patch
 * (TK_DEPTHWISE_PATCH bytes: taps x input channels) and the sums' starts (4 * TK_CONV_CHANNELS bytes); a
 * larger layer takes the reference loop. 3x3 filters are written out. */
#ifndef TK_DEPTHWISE_PATCH
#define TK_DEPTHWISE_PATCH 576
#endif

/* acc + the k_h x k_w taps of one channel: values at x (next column cs, next row rs further on), weights
 * at w (next tap c further on). */
static inline int32_t depthwise_taps(const int8_t *x, int cs, int rs, const int8_t *w, int c, int k_h, int k_w,
                                     int32_t acc)
{
    int ky, kx;
    for (ky = 0; ky < k_h; ++ky) {
        for (kx = 0; kx < k_w; ++kx) {
            acc += (int32_t)x[kx * cs] * w[kx * c];
        }
        x += rs;
        w += k_w * c;
    }
    return acc;
}

/* The same for a 3x3 filter, written out. */
static inline int32_t depthwise_3x3(const int8_t *x, int cs, int rs, const int8_t *w, int c, int32_t acc)
{
    const int cs2 = 2 * cs, c2 = 2 * c;
    acc += x[0] * w[0] + x[cs] * w[c] + x[cs2] * w[c2];
    x += rs;
    w += 3 * c;
    acc += x[0] * w[0] + x[cs] * w[c] + x[cs2] * w[c2];
    x += rs;
    w += 3 * c;
    return acc + x[0] * w[0] + x[cs] * w[c] + x[cs2] * w[c2];
}

/* Output channel oc of one output pixel from input channel ic, its taps at x (see depthwise_taps). */
static TK_ALWAYS_INLINE void depthwise_channel(const tk_conv_params *p, const int8_t *x, int cs, int rs,
                                               const int32_t *sums, int8_t *out, int ic, int oc)
{
    const int32_t acc = p->k_h == 3 && p->k_w == 3
                            ? depthwise_3x3(x + ic, cs, rs, p->weights + oc, p->out_c, sums[oc])
                            : depthwise_taps(x + ic, cs, rs, p->weights + oc, p->out_c, p->k_h, p->k_w, sums[oc]);
    out[oc] = tk_requantize_fast(acc, p->multiplier, p->shift, oc, p->output_offset, p->act_min, p->act_max);
}

/* Every channel of one output pixel, in order: output channel ic * multiplier + m from input channel ic. */
static void depthwise_pixel(const tk_conv_params *p, const int8_t *x, int cs, int rs, const int32_t *sums,
                            int8_t *out)
{
    const int in_c = p->in_c, multiplier = p->depth_multiplier;
    int ic, m, oc = 0;
    if (multiplier == 1) {
        for (ic = 0; ic < in_c; ++ic) {
            depthwise_channel(p, x, cs, rs, sums, out, ic, ic);
        }
        return;
    }
    for (ic = 0; ic < in_c; ++ic) {
        for (m = 0; m < multiplier; ++m, ++oc) {
            depthwise_channel(p, x, cs, rs, sums, out, ic, oc);
        }
    }
}

void tk_depthwise_conv_2d(const tk_conv_params *p, const int8_t *input, int8_t *output)
{
    const int in_c = p->in_c, out_c = p->out_c, taps = p->k_h * p->k_w;
    const int in_w = p->in_w, dil_h = p->dilation_h, dil_w = p->dilation_w;
    const int8_t pad = (int8_t)-p->input_offset;
    int32_t sums[TK_CONV_CHANNELS];
    int8_t patch[TK_DEPTHWISE_PATCH];
    int b, oy, ox;
    if (out_c > TK_CONV_CHANNELS || taps * in_c > TK_DEPTHWISE_PATCH) {
        tk_depthwise_conv_2d_reference(p, input, output);
        return;
    }
    tk_start_sums(p->weights, out_c, taps, 1, out_c, p->bias, p->input_offset, sums);
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int y0 = oy * p->stride_h - p->pad_h;
            const int rows_inside = y0 >= 0 && y0 + (p->k_h - 1) * dil_h < p->in_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int x0 = ox * p->stride_w - p->pad_w;
                if (rows_inside && x0 >= 0 && x0 + (p->k_w - 1) * dil_w < in_w) {
                    depthwise_pixel(p, image + (y0 * in_w + x0) * in_c, dil_w * in_c, dil_h * in_w * in_c, sums,
                                    output);
                } else {
                    tk_patch(p, image, y0, x0, pad, patch);
                    depthwise_pixel(p, patch, in_c, p->k_w * in_c, sums, output);
                }
                output += out_c;
            }
        }
    }
}

#endif /* TK_KERNELS == TK_KERNELS_PORTABLE */
