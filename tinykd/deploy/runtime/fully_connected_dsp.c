/* FULLY_CONNECTED for cores with the DSP extension: the same sums and requantization as
 * fully_connected.c, two output units per pass over the input, four inputs per step (tk_dot2). */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_DSP

#include "tinykd_dsp.h"

static void row_in_pairs(const tk_fully_connected_params *p, const int8_t *row, int8_t *out)
{
    const int depth = p->accum_depth, units = p->out_depth;
    int o;
    for (o = 0; o < units; o += 2) {
        const int pair = o + 1 < units;
        int32_t acc0 = p->bias ? p->bias[o] : 0;
        int32_t acc1 = p->bias && pair ? p->bias[o + 1] : 0;
        tk_dot2(row, p->weights + o * depth, pair ? depth : 0, depth, p->input_offset, &acc0, &acc1);
        out[o] = tk_requantize_dsp(acc0, p->multiplier[o], p->shift[o], p->output_offset, p->act_min, p->act_max);
        if (pair) {
            out[o + 1] = tk_requantize_dsp(acc1, p->multiplier[o + 1], p->shift[o + 1], p->output_offset, p->act_min,
                                           p->act_max);
        }
    }
}

void tk_fully_connected(const tk_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    tk_fully_connected_rows(p, input, output, row_in_pairs);
}

#endif /* TK_KERNELS == TK_KERNELS_DSP */
