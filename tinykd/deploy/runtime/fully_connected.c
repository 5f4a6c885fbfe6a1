/* FULLY_CONNECTED: int8 matrix-vector products with per-unit requantization. */
#include <stdint.h>

#ifndef TK_FULLY_CONNECTED_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_FULLY_CONNECTED_DECLARATIONS

/* FULLY_CONNECTED (weights [out_depth][accum_depth]). */
typedef struct {
    int batches, accum_depth, out_depth;
    int32_t input_offset, output_offset, act_min, act_max;
    const int8_t *weights;
    const int32_t *bias; /* may be NULL */
    const int32_t *multiplier, *shift; /* one per output unit */
} tk_fully_connected_params;

void tk_fully_connected(const tk_fully_connected_params *p, const int8_t *input, int8_t *output);

#endif /* TK_FULLY_CONNECTED_DECLARATIONS */

#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_PORTABLE

static void row_by_unit(const tk_fully_connected_params *p, const int8_t *row, int8_t *out)
{
    int o, d;
    for (o = 0; o < p->out_depth; ++o) {
        const int8_t *weights = p->weights + o * p->accum_depth;
        int32_t acc = 0;
        for (d = 0; d < p->accum_depth; ++d) {
            acc += (int32_t)weights[d] * ((int32_t)row[d] + p->input_offset);
        }
        if (p->bias) {
            acc += p->bias[o];
        }
        out[o] = tk_requantize(acc, p->multiplier, p->shift, o, p->output_offset, p->act_min, p->act_max);
    }
}

void tk_fully_connected(const tk_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    tk_fully_connected_rows(p, input, output, row_by_unit);
}

#endif /* TK_KERNELS == TK_KERNELS_PORTABLE */
