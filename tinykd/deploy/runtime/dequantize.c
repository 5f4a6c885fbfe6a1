/* DEQUANTIZE int8 -> float: scale * (q - zero_point), computed in double as TFLM does. */
#include <stdint.h>

#ifndef TK_DEQUANTIZE_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_DEQUANTIZE_DECLARATIONS

/* DEQUANTIZE int8 -> float. */
typedef struct {
    int size;
    int32_t zero_point;
    double scale;
} tk_dequantize_params;

void tk_dequantize(const tk_dequantize_params *p, const int8_t *input, float *output);

#endif /* TK_DEQUANTIZE_DECLARATIONS */

#include "tinykd_runtime.h"

void tk_dequantize(const tk_dequantize_params *p, const int8_t *input, float *output)
{
    int i;
    for (i = 0; i < p->size; ++i) {
        output[i] = (float)(p->scale * (double)(input[i] - p->zero_point));
    }
}
