/* FULLY_CONNECTED for cores with the DSP extension: the same sums and requantization as
 * fully_connected.c, two output units per pass over the input, four inputs per step (tk_dot2). */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_DSP

#include "tinykd_dsp.h"

void tk_fully_connected(const tk_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    /* locals: the compiler cannot know that writing the output leaves *p unchanged */
    const int depth = p->accum_depth, units = p->out_depth;
    const int32_t input_offset = p->input_offset, output_offset = p->output_offset;
    const int32_t act_min = p->act_min, act_max = p->act_max;
    const int8_t *const weights = p->weights;
    const int32_t *const bias = p->bias, *const multiplier = p->multiplier, *const shift = p->shift;
    int b, o;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *row = input + b * depth;
        int8_t *out = output + b * units;
        for (o = 0; o < units; o += 2) {
            const int pair = o + 1 < units;
            int32_t acc0 = bias ? bias[o] : 0;
            int32_t acc1 = bias && pair ? bias[o + 1] : 0;
            tk_dot2(row, weights + o * depth, pair ? depth : 0, depth, input_offset, &acc0, &acc1);
            out[o] = tk_requantize(acc0, multiplier, shift, o, output_offset, act_min, act_max);
            if (pair) {
                out[o + 1] = tk_requantize(acc1, multiplier, shift, o + 1, output_offset, act_min, act_max);
            }
        }
    }
}

#endif /* TK_KERNELS == TK_KERNELS_DSP */
