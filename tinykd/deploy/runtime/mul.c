/* MUL: product of the zero-point-corrected inputs, requantized. */
#include "tinykd_runtime.h"

void tk_mul(const tk_mul_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    int i0, i1, i2, i3;
    int8_t *out = output;
    for (i0 = 0; i0 < p->dims[0]; ++i0) {
        for (i1 = 0; i1 < p->dims[1]; ++i1) {
            for (i2 = 0; i2 < p->dims[2]; ++i2) {
                for (i3 = 0; i3 < p->dims[3]; ++i3) {
                    const int32_t a = input1[i0 * p->strides1[0] + i1 * p->strides1[1] + i2 * p->strides1[2] +
                                             i3 * p->strides1[3]] + p->input1_offset;
                    const int32_t b = input2[i0 * p->strides2[0] + i1 * p->strides2[1] + i2 * p->strides2[2] +
                                             i3 * p->strides2[3]] + p->input2_offset;
                    const int32_t value = tk_multiply(a * b, p->multiplier, p->shift) + p->output_offset;
                    *out++ = (int8_t)tk_clamp(value, p->act_min, p->act_max);
                }
            }
        }
    }
}
