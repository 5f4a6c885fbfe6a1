/* QUANTIZE int8 -> int8: requantization to the output's scale and zero point. */
#include <stdint.h>

#ifndef TK_QUANTIZE_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_QUANTIZE_DECLARATIONS

/* QUANTIZE int8 -> int8 (requantization). */
typedef struct {
    int size;
    int32_t input_zero_point, output_zero_point, multiplier;
    int shift;
} tk_quantize_params;

void tk_quantize(const tk_quantize_params *p, const int8_t *input, int8_t *output);

#endif /* TK_QUANTIZE_DECLARATIONS */

#include "tinykd_runtime.h"

void tk_quantize(const tk_quantize_params *p, const int8_t *input, int8_t *output)
{
    int i;
    for (i = 0; i < p->size; ++i) {
        const int32_t value = tk_multiply(input[i] - p->input_zero_point, p->multiplier, p->shift);
        output[i] = (int8_t)tk_clamp(value + p->output_zero_point, INT8_MIN, INT8_MAX);
    }
}
