/* MEAN: sums over the reduced axes, then requantizes with the count folded into the multiplier. */
#include <stdint.h>

#ifndef TK_MEAN_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_MEAN_DECLARATIONS

/* MEAN over the axes flagged in `reduce` of a (padded to) 4-D input. */
typedef struct {
    int dims[4];
    int reduce[4];
    int32_t count; /* elements averaged into each output */
    int32_t input_zero_point, output_zero_point, multiplier, shift;
} tk_mean_params;

void tk_mean(const tk_mean_params *p, const int8_t *input, int8_t *output);

#endif /* TK_MEAN_DECLARATIONS */

#include "tinykd_runtime.h"

void tk_mean(const tk_mean_params *p, const int8_t *input, int8_t *output)
{
    int outer[4], inner[4], strides[4];
    int o0, o1, o2, o3, i0, i1, i2, i3, axis;
    int8_t *out = output;
    strides[3] = 1;
    for (axis = 2; axis >= 0; --axis) {
        strides[axis] = strides[axis + 1] * p->dims[axis + 1];
    }
    for (axis = 0; axis < 4; ++axis) {
        outer[axis] = p->reduce[axis] ? 1 : p->dims[axis];
        inner[axis] = p->reduce[axis] ? p->dims[axis] : 1;
    }
    for (o0 = 0; o0 < outer[0]; ++o0) {
        for (o1 = 0; o1 < outer[1]; ++o1) {
            for (o2 = 0; o2 < outer[2]; ++o2) {
                for (o3 = 0; o3 < outer[3]; ++o3) {
                    int32_t sum = 0;
                    for (i0 = 0; i0 < inner[0]; ++i0) {
                        for (i1 = 0; i1 < inner[1]; ++i1) {
                            for (i2 = 0; i2 < inner[2]; ++i2) {
                                for (i3 = 0; i3 < inner[3]; ++i3) {
                                    sum += input[(o0 + i0) * strides[0] + (o1 + i1) * strides[1] +
                                                 (o2 + i2) * strides[2] + (o3 + i3) * strides[3]];
                                }
                            }
                        }
                    }
                    sum = tk_multiply(sum - p->input_zero_point * p->count, p->multiplier, (int)p->shift) +
                          p->output_zero_point;
                    *out++ = (int8_t)tk_clamp(sum, INT8_MIN, INT8_MAX);
                }
            }
        }
    }
}
