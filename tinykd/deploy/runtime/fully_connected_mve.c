/* FULLY_CONNECTED for cores with Helium (MVE): the same sums and requantization as fully_connected.c,
 * each output unit's dot product 16 int8 lanes a step (tk_mve_dot). */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_MVE

#include "tinykd_mve.h"

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
        for (o = 0; o < units; ++o) {
            const int32_t acc = tk_mve_dot(row, weights + o * depth, depth, input_offset, bias ? bias[o] : 0);
            out[o] = tk_requantize(acc, multiplier, shift, o, output_offset, act_min, act_max);
        }
    }
}

#endif /* TK_KERNELS == TK_KERNELS_MVE */
