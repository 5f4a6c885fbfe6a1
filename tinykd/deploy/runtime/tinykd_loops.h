/* tinykd C backend runtime: loops that several kernels (or variants of one) share. */
#ifndef TINYKD_LOOPS_H_
#define TINYKD_LOOPS_H_

#include <stdint.h>

#include "tinykd_fixedpoint.h"
#include "tinykd_params.h"

/* A range of filter taps, [begin, end). */
typedef struct {
    int begin, end;
} tk_range;

/* The taps k of a filter `taps` long, placed at `origin` of an input `size` long, that fall inside it:
 * 0 <= origin + k * dilation < size. The others read the padding, which adds nothing to the sums. */
static inline tk_range tk_taps_inside(int origin, int dilation, int taps, int size)
{
    tk_range range;
    int k = 0;
    while (k < taps && origin + k * dilation < 0) {
        ++k;
    }
    range.begin = k;
    while (k < taps && origin + k * dilation < size) {
        ++k;
    }
    range.end = k;
    return range;
}

/* The reference loop of DEPTHWISE_CONV_2D, shared by the portable kernel and the Helium variant's
 * fallback (a depth multiplier other than 1). */
static inline void tk_depthwise_conv_2d_reference(const tk_conv_params *p, const int8_t *input, int8_t *output)
{
    int b, oy, ox, ic, m, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int y0 = oy * p->stride_h - p->pad_h;
            const tk_range rows = tk_taps_inside(y0, p->dilation_h, p->k_h, p->in_h);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int x0 = ox * p->stride_w - p->pad_w;
                const tk_range cols = tk_taps_inside(x0, p->dilation_w, p->k_w, p->in_w);
                for (ic = 0; ic < p->in_c; ++ic) {
                    for (m = 0; m < p->depth_multiplier; ++m) {
                        const int oc = ic * p->depth_multiplier + m;
                        int32_t acc = 0;
                        for (ky = rows.begin; ky < rows.end; ++ky) {
                            const int y = y0 + ky * p->dilation_h;
                            for (kx = cols.begin; kx < cols.end; ++kx) {
                                const int x = x0 + kx * p->dilation_w;
                                const int32_t value = input[((b * p->in_h + y) * p->in_w + x) * p->in_c + ic];
                                acc += (int32_t)p->weights[(ky * p->k_w + kx) * p->out_c + oc] *
                                       (value + p->input_offset);
                            }
                        }
                        if (p->bias) {
                            acc += p->bias[oc];
                        }
                        output[((b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] = tk_requantize(
                            acc, p->multiplier, p->shift, oc, p->output_offset, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

#endif /* TINYKD_LOOPS_H_ */
