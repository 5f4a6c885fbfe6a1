/* LOGISTIC: input rescaled to Q4.27, 1 / (1 + exp(-x)) in fixed point, output in Q0.8. */
#include <stdint.h>

#ifndef TK_LOGISTIC_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_LOGISTIC_DECLARATIONS

/* LOGISTIC; output scale 1/256, zero point -128. */
typedef struct {
    int size;
    int32_t input_zero_point, input_multiplier, input_range_radius;
    int input_left_shift;
} tk_logistic_params;

void tk_logistic(const tk_logistic_params *p, const int8_t *input, int8_t *output);

#endif /* TK_LOGISTIC_DECLARATIONS */

#include "tinykd_runtime.h"

static int32_t logistic_q31(int32_t x)
{
    int32_t positive;
    if (x == 0) {
        return (int32_t)1 << 30;
    }
    positive = tk_one_over_one_plus_x(tk_exp_on_negative_values(x > 0 ? -x : x, 4));
    return x > 0 ? positive : INT32_MAX - positive;
}

void tk_logistic(const tk_logistic_params *p, const int8_t *input, int8_t *output)
{
    int i;
    for (i = 0; i < p->size; ++i) {
        const int32_t x = input[i] - p->input_zero_point;
        int32_t value;
        if (x <= -p->input_range_radius) {
            value = INT8_MIN;
        } else if (x >= p->input_range_radius) {
            value = INT8_MAX;
        } else {
            const int32_t x_q4 = tk_multiply(x, p->input_multiplier, p->input_left_shift);
            value = tk_clamp(tk_divide_by_pot(logistic_q31(x_q4), 23) + INT8_MIN, INT8_MIN, INT8_MAX);
        }
        output[i] = (int8_t)value;
    }
}
