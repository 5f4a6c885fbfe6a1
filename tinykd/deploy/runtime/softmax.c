/* SOFTMAX: fixed-point exp of the scaled differences to the row maximum, then the reciprocal of
 * their sum (exp with 5 integer bits, sum with 12). The first TK_SOFTMAX_KEPT exps of a row are kept
 * between the sum and the outputs (4 bytes of stack each); further ones are worked out again. */
#include <stdint.h>

#ifndef TK_SOFTMAX_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_SOFTMAX_DECLARATIONS

/* SOFTMAX over the last axis; output scale 1/256, zero point -128. */
typedef struct {
    int rows, depth;
    int32_t input_multiplier;
    int input_left_shift;
    int32_t diff_min;
} tk_softmax_params;

void tk_softmax(const tk_softmax_params *p, const int8_t *input, int8_t *output);

#endif /* TK_SOFTMAX_DECLARATIONS */

#include "tinykd_runtime.h"

#ifndef TK_SOFTMAX_KEPT
#define TK_SOFTMAX_KEPT 32
#endif

static int count_leading_zeros(uint32_t x)
{
    int n = 0;
    while (n < 32 && !(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

static int32_t scaled_exp(const tk_softmax_params *p, int32_t diff)
{
    const int32_t rescaled = tk_doubling_high_mul(tk_shift_left(diff, p->input_left_shift), p->input_multiplier);
    return tk_exp_on_negative_values(rescaled, 5);
}

void tk_softmax(const tk_softmax_params *p, const int8_t *input, int8_t *output)
{
    int32_t kept[TK_SOFTMAX_KEPT];
    int r, c;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *in = input + r * p->depth;
        int8_t *out = output + r * p->depth;
        int32_t max = INT8_MIN;
        int32_t sum = 0;
        int headroom, exponent;
        int32_t reciprocal;
        for (c = 0; c < p->depth; ++c) {
            max = in[c] > max ? in[c] : max;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max;
            if (diff >= p->diff_min) {
                const int32_t e = scaled_exp(p, diff);
                if (c < TK_SOFTMAX_KEPT) {
                    kept[c] = e;
                }
                sum += tk_divide_by_pot(e, 12);
            }
        }
        headroom = count_leading_zeros((uint32_t)sum);
        reciprocal = tk_one_over_one_plus_x((int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
        exponent = 12 - headroom + 31 - 8;
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max;
            int32_t value = INT8_MIN;
            if (diff >= p->diff_min) {
                const int32_t e = c < TK_SOFTMAX_KEPT ? kept[c] : scaled_exp(p, diff);
                value = tk_divide_by_pot(tk_doubling_high_mul(reciprocal, e), exponent) + INT8_MIN;
            }
            out[c] = (int8_t)tk_clamp(value, INT8_MIN, INT8_MAX);
        }
    }
}
