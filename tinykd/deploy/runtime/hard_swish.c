/* HARD_SWISH: x * relu6(x + 3) / 6 in 16-bit fixed point, on a 128x finer input scale. */
#include <stdint.h>

#ifndef TK_HARD_SWISH_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_HARD_SWISH_DECLARATIONS

/* HARD_SWISH with 16-bit multipliers. */
typedef struct {
    int size;
    int16_t input_zero_point, output_zero_point;
    int16_t output_multiplier, reluish_multiplier;
    int output_exponent, reluish_exponent;
} tk_hard_swish_params;

void tk_hard_swish(const tk_hard_swish_params *p, const int8_t *input, int8_t *output);

#endif /* TK_HARD_SWISH_DECLARATIONS */

#include "tinykd_runtime.h"

static int16_t saturate16(int32_t x)
{
    return (int16_t)tk_clamp(x, INT16_MIN, INT16_MAX);
}

/* Rounded high 16 bits of 2*a*b. */
static int16_t rounding_high_mul16(int16_t a, int16_t b)
{
    int32_t product;
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    product = (int32_t)a * b;
    return (int16_t)((product + (product >= 0 ? (1 << 14) : (1 - (1 << 14)))) / (1 << 15));
}

/* Truncated high 16 bits of 2*a*b. */
static int16_t high_mul16(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (int16_t)(((int32_t)a * b) / (1 << 15));
}

void tk_hard_swish(const tk_hard_swish_params *p, const int8_t *input, int8_t *output)
{
    int i;
    for (i = 0; i < p->size; ++i) {
        const int16_t hires = (int16_t)((input[i] - p->input_zero_point) * (1 << 7));
        const int16_t preshift = rounding_high_mul16(hires, p->output_multiplier);
        int16_t reluish = hires;
        int16_t value;
        if (p->reluish_exponent > 0) {
            reluish = saturate16((int32_t)reluish * (1 << (p->reluish_exponent - 1)));
        }
        reluish = rounding_high_mul16(reluish, p->reluish_multiplier);
        if (p->reluish_exponent > 0) {
            reluish = saturate16((int32_t)reluish * 2);
        }
        if (p->reluish_exponent < 0) {
            reluish = (int16_t)tk_divide_by_pot(reluish, -p->reluish_exponent);
        }
        reluish = (int16_t)((reluish + (1 << 15)) >> 1);
        value = (int16_t)tk_divide_by_pot(high_mul16(reluish, preshift), -p->output_exponent);
        output[i] = (int8_t)tk_clamp(value + p->output_zero_point, INT8_MIN, INT8_MAX);
    }
}
