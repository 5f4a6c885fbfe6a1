/* CONV_2D: int8 convolution with per-channel requantization. */
#include <stdint.h>

#ifndef TK_CONV_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_CONV_DECLARATIONS

/* CONV_2D and DEPTHWISE_CONV_2D (NHWC input, OHWI / 1HWO filter, per-channel requantization). */
typedef struct {
    int batches, in_h, in_w, in_c, out_h, out_w, out_c;
    int k_h, k_w, stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
    int depth_multiplier; /* depthwise only */
    int32_t input_offset, output_offset, act_min, act_max;
    const int8_t *weights;
    const int32_t *bias; /* may be NULL */
    const int32_t *multiplier, *shift; /* one per output channel */
} tk_conv_params;

void tk_conv_2d(const tk_conv_params *p, const int8_t *input, int8_t *output);
void tk_depthwise_conv_2d(const tk_conv_params *p, const int8_t *input, int8_t *output);

#endif /* TK_CONV_DECLARATIONS */

#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_PORTABLE

#include "tinykd_portable.h"

/* Each output pixel's taps are first copied into a patch (the padding as the input's zero point, so it
 * adds nothing once the offset is folded into the sums), then four output channels at a time take their
 * dot products with it (tk_dot_rows). The patch is read from the input before any of the pixel's outputs
 * is written. Stack: the patch (TK_CONV_PATCH bytes), the sums' starts (4 * TK_CONV_CHANNELS bytes) and
 * the sums of TK_DOT_ROWS channels (128 bytes; tinykd_portable.h), 1.2 KB; a larger layer takes the
 * reference loop. */
#ifndef TK_CONV_PATCH
#define TK_CONV_PATCH 576
#endif

/* The reference loop: every tap of every output channel, the input offset added to each. */
static void conv_reference(const tk_conv_params *p, const int8_t *input, int8_t *output)
{
    int b, oy, ox, oc, ky, kx, ic;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int y0 = oy * p->stride_h - p->pad_h;
            const tk_range rows = tk_taps_inside(y0, p->dilation_h, p->k_h, p->in_h);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int x0 = ox * p->stride_w - p->pad_w;
                const tk_range cols = tk_taps_inside(x0, p->dilation_w, p->k_w, p->in_w);
                for (oc = 0; oc < p->out_c; ++oc) {
                    int32_t acc = 0;
                    for (ky = rows.begin; ky < rows.end; ++ky) {
                        const int y = y0 + ky * p->dilation_h;
                        for (kx = cols.begin; kx < cols.end; ++kx) {
                            const int x = x0 + kx * p->dilation_w;
                            const int8_t *pixel = input + ((b * p->in_h + y) * p->in_w + x) * p->in_c;
                            const int8_t *filter = p->weights + ((oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
                            for (ic = 0; ic < p->in_c; ++ic) {
                                acc += (int32_t)filter[ic] * ((int32_t)pixel[ic] + p->input_offset);
                            }
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

void tk_conv_2d(const tk_conv_params *p, const int8_t *input, int8_t *output)
{
    const int filter = p->k_h * p->k_w * p->in_c, out_c = p->out_c;
    const int8_t pad = (int8_t)-p->input_offset; /* the zero point: x + offset = 0 */
    int32_t sums[TK_CONV_CHANNELS];
    int8_t patch[TK_CONV_PATCH];
    int b, oy, ox;
    if (filter > TK_CONV_PATCH || out_c > TK_CONV_CHANNELS) {
        conv_reference(p, input, output);
        return;
    }
    tk_start_sums(p->weights, out_c, filter, filter, 1, p->bias, p->input_offset, sums);
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * p->in_w * p->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                tk_patch(p, image, oy * p->stride_h - p->pad_h, ox * p->stride_w - p->pad_w, pad, patch);
                tk_dot_rows(patch, p->weights, filter, out_c, sums, p->multiplier, p->shift, p->output_offset,
                            p->act_min, p->act_max, output);
                output += out_c;
            }
        }
    }
}

#endif /* TK_KERNELS == TK_KERNELS_PORTABLE */
