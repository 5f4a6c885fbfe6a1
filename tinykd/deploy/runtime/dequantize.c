/* DEQUANTIZE int8 -> float: scale * (q - zero_point), computed in double as TFLM does. */
#include "tinykd_runtime.h"

void tk_dequantize(const tk_dequantize_params *p, const int8_t *input, float *output)
{
    int i;
    for (i = 0; i < p->size; ++i) {
        output[i] = (float)(p->scale * (double)(input[i] - p->zero_point));
    }
}
