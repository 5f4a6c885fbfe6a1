/* FULLY_CONNECTED for cores with Helium (MVE): the same sums and requantization as fully_connected.c,
 * each output unit's dot product 16 int8 lanes a step (tk_mve_dot). */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_MVE

#include "tinykd_mve.h"

static void row_by_unit(const tk_fully_connected_params *p, const int8_t *row, int8_t *out)
{
    const int depth = p->accum_depth;
    int o;
    for (o = 0; o < p->out_depth; ++o) {
        const int32_t acc = tk_mve_dot(row, p->weights + o * depth, depth, p->input_offset, p->bias ? p->bias[o] : 0);
        out[o] = tk_requantize(acc, p->multiplier, p->shift, o, p->output_offset, p->act_min, p->act_max);
    }
}

void tk_fully_connected(const tk_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    tk_fully_connected_rows(p, input, output, row_by_unit);
}

#endif /* TK_KERNELS == TK_KERNELS_MVE */
