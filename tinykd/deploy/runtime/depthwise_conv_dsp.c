/* DEPTHWISE_CONV_2D for cores with the DSP extension: the same sums and requantization as
 * depthwise_conv.c, reordered.
 *
 * With a depth multiplier of 1, four channels at a time: per tap one word of four inputs and one of
 * four weights (the 1HWO filter keeps a tap's channels contiguous), widened into 16-bit halves (the
 * input offset added on the way) and multiplied half by half into four sums. Other channels, and every
 * channel with a depth multiplier above 1, go through the taps one by one. The taps inside the input
 * are found once per output pixel, so the padding border needs no test inside the loops. The
 * parameters are copied to a local (writing the output could alias *p as far as the compiler knows).
 */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_DSP

#include "tinykd_dsp.h"

/* Output channel c's int8 from its sum. */
static inline int8_t tk_depthwise_output(const tk_conv_params *p, int32_t acc, int c)
{
    return tk_requantize_dsp(acc, p->multiplier[c], p->shift[c], p->output_offset, p->act_min, p->act_max);
}

void tk_depthwise_conv_2d(const tk_conv_params *params, const int8_t *input, int8_t *output)
{
    const tk_conv_params copy = *params, *p = &copy;
    const uint32_t offset2 = tk_pair(p->input_offset);
    const int in_row = p->in_w * p->in_c, tap_step = p->dilation_w * p->in_c;
    const int wide = p->depth_multiplier == 1 ? p->in_c / 4 * 4 : 0; /* channels done four at a time */
    int b, oy, ox, c, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int y0 = oy * p->stride_h - p->pad_h;
            const tk_range rows = tk_taps_inside(y0, p->dilation_h, p->k_h, p->in_h);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int x0 = ox * p->stride_w - p->pad_w;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                const tk_range cols = tk_taps_inside(x0, p->dilation_w, p->k_w, p->in_w);
                for (c = 0; c < wide; c += 4) {
                    int32_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
                    for (ky = rows.begin; ky < rows.end; ++ky) {
                        const int8_t *x = image + (y0 + ky * p->dilation_h) * in_row +
                                          (x0 + cols.begin * p->dilation_w) * p->in_c + c;
                        const int8_t *w = p->weights + (ky * p->k_w + cols.begin) * p->out_c + c;
                        for (kx = cols.begin; kx < cols.end; ++kx) {
                            const uint32_t xq = tk_read_quad(x), wq = tk_read_quad(w);
                            const uint32_t xe = tk_add_even(offset2, xq), xo = tk_add_odd(offset2, xq);
                            const uint32_t we = tk_even(wq), wo = tk_odd(wq);
                            acc0 = tk_mac_low(xe, we, acc0);
                            acc2 = tk_mac_high(xe, we, acc2);
                            acc1 = tk_mac_low(xo, wo, acc1);
                            acc3 = tk_mac_high(xo, wo, acc3);
                            x += tap_step;
                            w += p->out_c;
                        }
                    }
                    if (p->bias) {
                        acc0 += p->bias[c];
                        acc1 += p->bias[c + 1];
                        acc2 += p->bias[c + 2];
                        acc3 += p->bias[c + 3];
                    }
                    out[c] = tk_depthwise_output(p, acc0, c);
                    out[c + 1] = tk_depthwise_output(p, acc1, c + 1);
                    out[c + 2] = tk_depthwise_output(p, acc2, c + 2);
                    out[c + 3] = tk_depthwise_output(p, acc3, c + 3);
                }
                for (c = wide; c < p->out_c; ++c) { /* output channel c reads input channel c / multiplier */
                    const int ic = c / p->depth_multiplier;
                    int32_t acc = p->bias ? p->bias[c] : 0;
                    for (ky = rows.begin; ky < rows.end; ++ky) {
                        const int8_t *x = image + (y0 + ky * p->dilation_h) * in_row +
                                          (x0 + cols.begin * p->dilation_w) * p->in_c + ic;
                        const int8_t *w = p->weights + (ky * p->k_w + cols.begin) * p->out_c + c;
                        for (kx = cols.begin; kx < cols.end; ++kx) {
                            acc += (int32_t)*w * ((int32_t)*x + p->input_offset);
                            x += tap_step;
                            w += p->out_c;
                        }
                    }
                    out[c] = tk_depthwise_output(p, acc, c);
                }
            }
        }
    }
}

#endif /* TK_KERNELS == TK_KERNELS_DSP */
