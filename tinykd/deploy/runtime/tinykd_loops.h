/* tinykd C backend runtime: loops that several kernels (or variants of one) share. */
#ifndef TINYKD_LOOPS_H_
#define TINYKD_LOOPS_H_

#include <stdint.h>

#include "tinykd_fixedpoint.h"
#include "tinykd_params.h"

/* The reference loop of DEPTHWISE_CONV_2D, shared by the portable kernel and the variants' fallbacks
 * (a depth multiplier other than 1). */
static inline void tk_depthwise_conv_2d_reference(const tk_conv_params *p, const int8_t *input, int8_t *output)
{
    int b, oy, ox, ic, m, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const int y0 = oy * p->stride_h - p->pad_h;
                const int x0 = ox * p->stride_w - p->pad_w;
                for (ic = 0; ic < p->in_c; ++ic) {
                    for (m = 0; m < p->depth_multiplier; ++m) {
                        const int oc = ic * p->depth_multiplier + m;
                        int32_t acc = 0;
                        for (ky = 0; ky < p->k_h; ++ky) {
                            const int y = y0 + ky * p->dilation_h;
                            if (y < 0 || y >= p->in_h) {
                                continue;
                            }
                            for (kx = 0; kx < p->k_w; ++kx) {
                                const int x = x0 + kx * p->dilation_w;
                                int32_t value;
                                if (x < 0 || x >= p->in_w) {
                                    continue;
                                }
                                value = input[((b * p->in_h + y) * p->in_w + x) * p->in_c + ic];
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
