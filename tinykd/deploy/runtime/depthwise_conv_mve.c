/* DEPTHWISE_CONV_2D for cores with Helium (MVE): the same sums and requantization as depthwise_conv.c.
 * With a depth multiplier of 1, four channels at a time (one int32 lane each, the last block
 * tail-predicated): for each output pixel, a block's channels are read at every tap, then that block's
 * outputs written. A channel's output is written no earlier than in depthwise_conv.c relative to the
 * reads that follow it, so its in-place rules hold. Other multipliers take the portable loop. */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_MVE

#include "tinykd_mve.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#endif

/* sums[i] = sum over the valid taps of w * (x + offset) for channels c + i, i < n (1 to 4); `pixel0`
 * and `filter0` already point at channel c of the batch's first pixel and of the first tap. */
static void tk_dw_block(const tk_conv_params *p, const int8_t *pixel0, const int8_t *filter0, int y0, int x0,
                        int n, int32_t sums[4])
{
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c, k_h = p->k_h, k_w = p->k_w;
    const int32_t offset = p->input_offset;
    int ky, kx;
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
    const mve_pred16_t lanes = vctp32q((uint32_t)n);
    int32x4_t sum = vdupq_n_s32(0);
    for (ky = 0; ky < k_h; ++ky) {
        const int y = y0 + ky * p->dilation_h;
        if (y < 0 || y >= in_h) {
            continue;
        }
        for (kx = 0; kx < k_w; ++kx) {
            const int x = x0 + kx * p->dilation_w;
            int32x4_t xv, wv;
            if (x < 0 || x >= in_w) {
                continue;
            }
            xv = vldrbq_z_s32(pixel0 + (y * in_w + x) * in_c, lanes); /* inactive lanes read as 0 */
            wv = vldrbq_z_s32(filter0 + (ky * k_w + kx) * out_c, lanes);
            sum = vaddq_s32(sum, vmulq_s32(vaddq_n_s32(xv, offset), wv));
        }
    }
    vstrwq_s32(sums, sum);
#else
    int i;
    for (i = 0; i < 4; ++i) {
        sums[i] = 0;
    }
    for (ky = 0; ky < k_h; ++ky) {
        const int y = y0 + ky * p->dilation_h;
        if (y < 0 || y >= in_h) {
            continue;
        }
        for (kx = 0; kx < k_w; ++kx) {
            const int x = x0 + kx * p->dilation_w;
            const int8_t *xs, *ws;
            if (x < 0 || x >= in_w) {
                continue;
            }
            xs = pixel0 + (y * in_w + x) * in_c;
            ws = filter0 + (ky * k_w + kx) * out_c;
            for (i = 0; i < n; ++i) {
                sums[i] = (int32_t)((uint32_t)sums[i] + (uint32_t)((int32_t)ws[i] * ((int32_t)xs[i] + offset)));
            }
        }
    }
#endif
}

void tk_depthwise_conv_2d(const tk_conv_params *p, const int8_t *input, int8_t *output)
{
    const int channels = p->out_c;
    const int32_t *const bias = p->bias;
    int b, oy, ox, c, i;
    if (p->depth_multiplier != 1) {
        tk_depthwise_conv_2d_reference(p, input, output);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * p->in_w * p->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int y0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int x0 = ox * p->stride_w - p->pad_w;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * channels;
                for (c = 0; c < channels; c += 4) {
                    const int n = channels - c < 4 ? channels - c : 4;
                    int32_t sums[4];
                    tk_dw_block(p, image + c, p->weights + c, y0, x0, n, sums);
                    for (i = 0; i < n; ++i) {
                        const int32_t acc = bias ? (int32_t)((uint32_t)sums[i] + (uint32_t)bias[c + i]) : sums[i];
                        out[c + i] = tk_requantize(acc, p->multiplier, p->shift, c + i, p->output_offset,
                                                   p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

#endif /* TK_KERNELS == TK_KERNELS_MVE */
