/* CONV_2D for cores with Helium (MVE): the same sums and requantization as conv.c, in the same
 * order over output pixels and channels (so the same in-place rules hold). Each filter row's taps
 * inside the input are one dot product (tk_mve_dot) when they are contiguous (dilation 1 along x:
 * in_c * taps consecutive bytes of both the input row and the filter row). */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_MVE

#include "tinykd_mve.h"

void tk_conv_2d(const tk_conv_params *p, const int8_t *input, int8_t *output)
{
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c;
    const int k_h = p->k_h, k_w = p->k_w, dil_h = p->dilation_h, dil_w = p->dilation_w;
    const int32_t input_offset = p->input_offset, output_offset = p->output_offset;
    const int32_t act_min = p->act_min, act_max = p->act_max;
    const int8_t *const weights = p->weights;
    const int32_t *const bias = p->bias, *const multiplier = p->multiplier, *const shift = p->shift;
    int b, oy, ox, oc, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int y0 = oy * p->stride_h - p->pad_h;
            const tk_range rows = tk_taps_inside(y0, dil_h, k_h, in_h);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int x0 = ox * p->stride_w - p->pad_w;
                const tk_range cols = tk_taps_inside(x0, dil_w, k_w, in_w);
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * out_c;
                const int x = x0 + cols.begin * dil_w; /* the first tap inside */
                for (oc = 0; oc < out_c; ++oc) {
                    int32_t acc = bias ? bias[oc] : 0;
                    if (cols.end > cols.begin) {
                        for (ky = rows.begin; ky < rows.end; ++ky) {
                            const int8_t *pixel = input + ((b * in_h + y0 + ky * dil_h) * in_w + x) * in_c;
                            const int8_t *filter = weights + ((oc * k_h + ky) * k_w + cols.begin) * in_c;
                            if (dil_w == 1) {
                                acc = tk_mve_dot(pixel, filter, (cols.end - cols.begin) * in_c, input_offset, acc);
                            } else {
                                for (kx = cols.begin; kx < cols.end; ++kx) {
                                    acc = tk_mve_dot(pixel, filter, in_c, input_offset, acc);
                                    pixel += dil_w * in_c;
                                    filter += in_c;
                                }
                            }
                        }
                    }
                    out[oc] = tk_requantize(acc, multiplier, shift, oc, output_offset, act_min, act_max);
                }
            }
        }
    }
}

#endif /* TK_KERNELS == TK_KERNELS_MVE */
