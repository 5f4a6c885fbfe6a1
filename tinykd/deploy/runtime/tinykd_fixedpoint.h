/* tinykd C backend runtime: fixed-point arithmetic with gemmlowp's semantics (double rounding), as the
 * TFLite reference kernels use it, and the requantization of an int32 sum into an int8 output.
 */
#ifndef TINYKD_FIXEDPOINT_H_
#define TINYKD_FIXEDPOINT_H_

#include <stdint.h>

/* Shifts left with two's complement wrap-around instead of undefined behaviour. */
static inline int32_t tk_shift_left(int32_t x, int amount)
{
    return (int32_t)((uint32_t)x << amount);
}

/* High 32 bits of 2*a*b, rounded to nearest; saturates the one overflowing case. */
static inline int32_t tk_doubling_high_mul(int32_t a, int32_t b)
{
    int64_t product;
    int64_t nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    product = (int64_t)a * (int64_t)b;
    nudge = product >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((product + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent, rounded to nearest with ties away from zero. */
static inline int32_t tk_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^shift, multiplier a Q31 fraction in [0.5, 1): the requantization step. */
static inline int32_t tk_multiply(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return tk_divide_by_pot(tk_doubling_high_mul(tk_shift_left(x, left), multiplier), right);
}

/* x * 2^exponent (exponent >= 0), saturating to the int32 range. */
static inline int32_t tk_saturating_shift_left(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return tk_shift_left(x, exponent);
}

static inline int32_t tk_clamp(int32_t x, int32_t low, int32_t high)
{
    return x < low ? low : (x > high ? high : x);
}

/* Requantizes an int32 sum into output channel c's int8, as every conv and fully-connected kernel
 * does: per-channel multiplier and shift, the output offset, the fused activation's clamp. */
static inline int8_t tk_requantize(int32_t acc, const int32_t *multiplier, const int32_t *shift, int c,
                                   int32_t output_offset, int32_t act_min, int32_t act_max)
{
    acc = tk_multiply(acc, multiplier[c], (int)shift[c]) + output_offset;
    return (int8_t)tk_clamp(acc, act_min, act_max);
}

/* exp(a) for a <= 0 given with `integer_bits` integer bits; result in Q0.31 (fixedpoint.c). */
int32_t tk_exp_on_negative_values(int32_t a, int integer_bits);
/* 1 / (1 + x) for x in [0, 1), both in Q0.31 (fixedpoint.c). */
int32_t tk_one_over_one_plus_x(int32_t x);

#endif /* TINYKD_FIXEDPOINT_H_ */
