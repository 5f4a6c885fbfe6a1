/* Fixed-point exp and reciprocal used by SOFTMAX and LOGISTIC (gemmlowp's polynomial and
 * Newton-Raphson evaluations, in plain int32 arithmetic). */
#include "tinykd_runtime.h"

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: a 4th-order Taylor polynomial around -1/8. */
static int32_t exp_on_last_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = tk_doubling_high_mul(x, x);
    const int32_t x3 = tk_doubling_high_mul(x2, x);
    const int32_t x4 = tk_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = tk_divide_by_pot(x4, 2);
    const int32_t tail = tk_divide_by_pot(tk_doubling_high_mul(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + tk_doubling_high_mul(exp_minus_one_eighth, x + tail);
}

int32_t tk_exp_on_negative_values(int32_t a, int integer_bits)
{
    /* exp(-2^k) in Q0.31 for k = -2 .. 4 */
    static const int32_t exp_of_minus_pot[7] = {1672461947, 1302514674, 790015084, 290630308,
                                                39332535, 720401, 242};
    const int fractional_bits = 31 - integer_bits;
    const int32_t quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t in_last_quarter = (a & (quarter - 1)) - quarter;
    const int32_t remainder = in_last_quarter - a;
    int32_t result = exp_on_last_quarter(tk_saturating_shift_left(in_last_quarter, integer_bits));
    int k;
    for (k = -2; k <= 4 && k < integer_bits; ++k) {
        if (remainder & ((int32_t)1 << (fractional_bits + k))) {
            result = tk_doubling_high_mul(result, exp_of_minus_pot[k + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

int32_t tk_one_over_one_plus_x(int32_t x)
{
    /* Newton-Raphson on the half denominator (1 + x) / 2, iterates in Q2.29 */
    const int64_t sum = (int64_t)x + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t estimate = 1515870810 + tk_doubling_high_mul(half_denominator, -1010580540);
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t error = one_q2 - tk_doubling_high_mul(half_denominator, estimate);
        estimate = estimate + tk_saturating_shift_left(tk_doubling_high_mul(estimate, error), 2);
    }
    return tk_saturating_shift_left(estimate, 1);
}
