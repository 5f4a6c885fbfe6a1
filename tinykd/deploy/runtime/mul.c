/* MUL: product of the zero-point-corrected inputs, requantized. */
#include <stdint.h>

#ifndef TK_MUL_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_MUL_DECLARATIONS

typedef struct {
    int dims[4];
    int strides1[4], strides2[4];
    int32_t input1_offset, input2_offset, output_offset, multiplier;
    int shift;
    int32_t act_min, act_max;
} tk_mul_params;

void tk_mul(const tk_mul_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);

#endif /* TK_MUL_DECLARATIONS */

#include "tinykd_runtime.h"

static int8_t mul_element(const void *params, int32_t a, int32_t b)
{
    const tk_mul_params *p = (const tk_mul_params *)params;
    const int32_t value =
        tk_multiply((a + p->input1_offset) * (b + p->input2_offset), p->multiplier, p->shift) + p->output_offset;
    return (int8_t)tk_clamp(value, p->act_min, p->act_max);
}

void tk_mul(const tk_mul_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    tk_broadcast(p->dims, p->strides1, p->strides2, input1, input2, output, p, mul_element);
}
