/* ADD: both inputs rescaled to a common scale with 20 bits of headroom, summed, requantized. */
#include <stdint.h>

#ifndef TK_ADD_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_ADD_DECLARATIONS

/* Element-wise binary ops over a 4-D output; a stride of 0 broadcasts an input along that axis. */
typedef struct {
    int dims[4];
    int strides1[4], strides2[4];
    int32_t input1_offset, input2_offset, output_offset;
    int32_t input1_multiplier, input2_multiplier, output_multiplier;
    int input1_shift, input2_shift, output_shift, left_shift;
    int32_t act_min, act_max;
} tk_add_params;

void tk_add(const tk_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);

#endif /* TK_ADD_DECLARATIONS */

#include "tinykd_runtime.h"

static int8_t add_element(const void *params, int32_t a, int32_t b)
{
    const tk_add_params *p = (const tk_add_params *)params;
    const int32_t sum =
        tk_multiply(tk_shift_left(a + p->input1_offset, p->left_shift), p->input1_multiplier, p->input1_shift) +
        tk_multiply(tk_shift_left(b + p->input2_offset, p->left_shift), p->input2_multiplier, p->input2_shift);
    const int32_t value = tk_multiply(sum, p->output_multiplier, p->output_shift) + p->output_offset;
    return (int8_t)tk_clamp(value, p->act_min, p->act_max);
}

void tk_add(const tk_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    tk_broadcast(p->dims, p->strides1, p->strides2, input1, input2, output, p, add_element);
}
