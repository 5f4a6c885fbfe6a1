/* tinykd C backend runtime: loops that several kernels (or variants of one) share. */
#ifndef TINYKD_LOOPS_H_
#define TINYKD_LOOPS_H_

#include <stdint.h>

#include "tinykd_compiler.h"
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

/* One batch row of FULLY_CONNECTED: every output unit from one row of accum_depth inputs. */
typedef void (*tk_fully_connected_row)(const tk_fully_connected_params *p, const int8_t *row, int8_t *out);

/* The batch loop of FULLY_CONNECTED, shared by its variants. Each row sees a copy of the parameters,
 * which writing the output cannot change (as far as the compiler knows, writing *p could). */
static TK_ALWAYS_INLINE void tk_fully_connected_rows(const tk_fully_connected_params *p, const int8_t *input,
                                                     int8_t *output, tk_fully_connected_row compute_row)
{
    const tk_fully_connected_params q = *p;
    int b;
    for (b = 0; b < q.batches; ++b) {
        compute_row(&q, input + b * q.accum_depth, output + b * q.out_depth);
    }
}

/* An element-wise op of two int8 inputs into one int8 output, given its layer's parameters. */
typedef int8_t (*tk_binary_op)(const void *params, int32_t a, int32_t b);

/* The loop of ADD and MUL: every element of a 4-D output in order, from input1 and input2 at offsets
 * i0 * strides[0] + ... + i3 * strides[3] (a stride of 0 broadcasts that input along that axis).
 * Inlined into each kernel, where `op` is known, so the element's arithmetic is inlined too. */
static TK_ALWAYS_INLINE void tk_broadcast(const int dims[4], const int strides1[4], const int strides2[4],
                                          const int8_t *input1, const int8_t *input2, int8_t *output,
                                          const void *params, tk_binary_op op)
{
    int i0, i1, i2, i3;
    for (i0 = 0; i0 < dims[0]; ++i0) {
        for (i1 = 0; i1 < dims[1]; ++i1) {
            for (i2 = 0; i2 < dims[2]; ++i2) {
                for (i3 = 0; i3 < dims[3]; ++i3) {
                    const int32_t a = input1[i0 * strides1[0] + i1 * strides1[1] + i2 * strides1[2] + i3 * strides1[3]];
                    const int32_t b = input2[i0 * strides2[0] + i1 * strides2[1] + i2 * strides2[2] + i3 * strides2[3]];
                    *output++ = op(params, a, b);
                }
            }
        }
    }
}

#endif /* TINYKD_LOOPS_H_ */
