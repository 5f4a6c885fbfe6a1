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

/* A block's four int32 sums, one lane per channel. */
typedef int32x4_t tk_lanes;

static inline tk_lanes tk_lanes_zero(void)
{
    return vdupq_n_s32(0);
}

/* sum + w * (x + offset) per lane, for the first n lanes (the others' loads read as 0). */
static inline tk_lanes tk_lanes_mac(tk_lanes sum, const int8_t *x, const int8_t *w, int n, int32_t offset)
{
    const mve_pred16_t lanes = vctp32q((uint32_t)n);
    const int32x4_t xv = vldrbq_z_s32(x, lanes), wv = vldrbq_z_s32(w, lanes);
    return vaddq_s32(sum, vmulq_s32(vaddq_n_s32(xv, offset), wv));
}

static inline void tk_lanes_store(int32_t sums[4], tk_lanes sum)
{
    vstrwq_s32(sums, sum);
}

#else /* the same sums in plain C */

typedef struct {
    int32_t lane[4];
} tk_lanes;

static inline tk_lanes tk_lanes_zero(void)
{
    const tk_lanes zero = {{0, 0, 0, 0}};
    return zero;
}

static inline tk_lanes tk_lanes_mac(tk_lanes sum, const int8_t *x, const int8_t *w, int n, int32_t offset)
{
    int i;
    for (i = 0; i < n; ++i) {
        sum.lane[i] = (int32_t)((uint32_t)sum.lane[i] + (uint32_t)((int32_t)w[i] * ((int32_t)x[i] + offset)));
    }
    return sum;
}

static inline void tk_lanes_store(int32_t sums[4], tk_lanes sum)
{
    int i;
    for (i = 0; i < 4; ++i) {
        sums[i] = sum.lane[i];
    }
}

#endif

/* sums[i] = sum over the taps inside the input of w * (x + offset) for channels c + i, i < n (1 to 4);
 * `pixel0` and `filter0` already point at channel c of the batch's first pixel and of the first tap. */
static void tk_dw_block(const tk_conv_params *p, const int8_t *pixel0, const int8_t *filter0, int y0, int x0,
                        tk_range rows, tk_range cols, int n, int32_t sums[4])
{
    const int in_w = p->in_w, in_c = p->in_c, out_c = p->out_c, k_w = p->k_w;
    const int32_t offset = p->input_offset;
    tk_lanes sum = tk_lanes_zero();
    int ky, kx;
    for (ky = rows.begin; ky < rows.end; ++ky) {
        const int y = y0 + ky * p->dilation_h;
        for (kx = cols.begin; kx < cols.end; ++kx) {
            const int x = x0 + kx * p->dilation_w;
            sum = tk_lanes_mac(sum, pixel0 + (y * in_w + x) * in_c, filter0 + (ky * k_w + kx) * out_c, n, offset);
        }
    }
    tk_lanes_store(sums, sum);
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
            const tk_range rows = tk_taps_inside(y0, p->dilation_h, p->k_h, p->in_h);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int x0 = ox * p->stride_w - p->pad_w;
                const tk_range cols = tk_taps_inside(x0, p->dilation_w, p->k_w, p->in_w);
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * channels;
                for (c = 0; c < channels; c += 4) {
                    const int n = channels - c < 4 ? channels - c : 4;
                    int32_t sums[4];
                    tk_dw_block(p, image + c, p->weights + c, y0, x0, rows, cols, n, sums);
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
