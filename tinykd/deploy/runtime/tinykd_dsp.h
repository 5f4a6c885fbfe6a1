/* tinykd C backend runtime, DSP kernels: the packed 16-bit operations the *_dsp.c kernels use.
 *
 * On a core with the DSP extension (Cortex-M4, M7, M33: __ARM_FEATURE_DSP) each is one instruction,
 * written as inline assembly (the ACLE intrinsics for them need GCC 10 or later, which some board
 * toolchains predate); elsewhere (a build that forces these kernels, as tinykd's host checks do) they
 * are plain C with the same results, so the same kernels run and can be checked anywhere.
 * A "pair" is two int16 halves of a 32-bit word; a "quad" is four int8 bytes b0..b3 of a word.
 */
#ifndef TINYKD_DSP_H_
#define TINYKD_DSP_H_

#include <stdint.h>
#include <string.h>

#include "tinykd_runtime.h"

/* Four int8 at any alignment as one word, b0 in the low byte (Cortex-M loads unaligned words). */
static inline uint32_t tk_read_quad(const int8_t *p)
{
    uint32_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

/* Two int16 at any alignment as one pair, the first in the low half; and the reverse. */
static inline uint32_t tk_read_pair(const int16_t *p)
{
    uint32_t word;
    memcpy(&word, p, sizeof word);
    return word;
}
static inline void tk_write_pair(int16_t *p, uint32_t pair)
{
    memcpy(p, &pair, sizeof pair);
}

/* Both int16 halves set to v. */
static inline uint32_t tk_pair(int32_t v)
{
    return ((uint32_t)v & 0xFFFFu) * 0x10001u;
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP

/* pair + (b0, b2) and pair + (b1, b3), each byte sign-extended, per half (SXTAB16). */
static inline uint32_t tk_add_even(uint32_t pair, uint32_t quad)
{
    uint32_t result;
    __asm__("sxtab16 %0, %1, %2" : "=r"(result) : "r"(pair), "r"(quad));
    return result;
}
static inline uint32_t tk_add_odd(uint32_t pair, uint32_t quad)
{
    uint32_t result;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(result) : "r"(pair), "r"(quad));
    return result;
}
/* (b0, b2) and (b1, b3) sign-extended to int16 (SXTB16). */
static inline uint32_t tk_even(uint32_t quad)
{
    uint32_t result;
    __asm__("sxtb16 %0, %1" : "=r"(result) : "r"(quad));
    return result;
}
static inline uint32_t tk_odd(uint32_t quad)
{
    uint32_t result;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(result) : "r"(quad));
    return result;
}
/* acc + lo(a) * lo(b) + hi(a) * hi(b) (SMLAD), wrapping like int32 sums do. */
static inline int32_t tk_dual_mac(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t result;
    __asm__("smlad %0, %1, %2, %3" : "=r"(result) : "r"(a), "r"(b), "r"(acc));
    return result;
}
/* acc + lo(a) * lo(b) (SMLABB) and acc + hi(a) * hi(b) (SMLATT). */
static inline int32_t tk_mac_low(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t result;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(result) : "r"(a), "r"(b), "r"(acc));
    return result;
}
static inline int32_t tk_mac_high(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t result;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(result) : "r"(a), "r"(b), "r"(acc));
    return result;
}

#else /* the same operations in plain C */

static inline int32_t tk_low(uint32_t pair)
{
    return (int32_t)(int16_t)(pair & 0xFFFFu);
}
static inline int32_t tk_high(uint32_t pair)
{
    return (int32_t)(int16_t)(pair >> 16);
}
static inline int32_t tk_byte(uint32_t quad, int index)
{
    return (int32_t)(int8_t)((quad >> (8 * index)) & 0xFFu);
}
static inline uint32_t tk_halves(int32_t low, int32_t high)
{
    return ((uint32_t)low & 0xFFFFu) | ((uint32_t)high << 16);
}
static inline uint32_t tk_add_even(uint32_t pair, uint32_t quad)
{
    return tk_halves(tk_low(pair) + tk_byte(quad, 0), tk_high(pair) + tk_byte(quad, 2));
}
static inline uint32_t tk_add_odd(uint32_t pair, uint32_t quad)
{
    return tk_halves(tk_low(pair) + tk_byte(quad, 1), tk_high(pair) + tk_byte(quad, 3));
}
static inline uint32_t tk_even(uint32_t quad)
{
    return tk_add_even(0, quad);
}
static inline uint32_t tk_odd(uint32_t quad)
{
    return tk_add_odd(0, quad);
}
static inline int32_t tk_dual_mac(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tk_low(a) * tk_low(b)) + (uint32_t)(tk_high(a) * tk_high(b)));
}
static inline int32_t tk_mac_low(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tk_low(a) * tk_low(b)));
}
static inline int32_t tk_mac_high(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tk_high(a) * tk_high(b)));
}

#endif

/* Adds to *sum0 and *sum1 four products each: of the int8 weights in the words w0 and w1 with four values
 * given as the pairs `even` (values 0 and 2) and `odd` (1 and 3), as tk_add_even / tk_add_odd widen them. */
static TK_ALWAYS_INLINE void tk_dual_mac4(uint32_t w0, uint32_t w1, uint32_t even, uint32_t odd, int32_t *sum0,
                                          int32_t *sum1)
{
    *sum0 = tk_dual_mac(tk_even(w0), even, *sum0);
    *sum0 = tk_dual_mac(tk_odd(w0), odd, *sum0);
    *sum1 = tk_dual_mac(tk_even(w1), even, *sum1);
    *sum1 = tk_dual_mac(tk_odd(w1), odd, *sum1);
}

/* Adds to *acc0 and *acc1 the dot products of n int8 values x[i] + offset with two rows of n int8
 * weights, w[i] and w[other + i] (other = 0 computes one row twice). Four values per step: the inputs
 * are widened once with the offset added (offset2 = tk_pair(offset)) and shared by both rows. */
static inline void tk_dot2(const int8_t *x, const int8_t *w, int other, int n, int32_t offset,
                           int32_t *acc0, int32_t *acc1)
{
    const uint32_t offset2 = tk_pair(offset);
    int32_t sum0 = *acc0, sum1 = *acc1;
    for (; n >= 4; n -= 4) {
        const uint32_t xq = tk_read_quad(x);
        tk_dual_mac4(tk_read_quad(w), tk_read_quad(w + other), tk_add_even(offset2, xq), tk_add_odd(offset2, xq),
                     &sum0, &sum1);
        x += 4;
        w += 4;
    }
    for (; n > 0; --n) {
        const int32_t value = (int32_t)*x++ + offset;
        sum0 += (int32_t)w[0] * value;
        sum1 += (int32_t)w[other] * value;
        ++w;
    }
    *acc0 = sum0;
    *acc1 = sum1;
}

/* ---- Requantization with fewer instructions ------------------------------------------------------
 *
 * tk_multiply(x, m, shift) + offset, with m >= 0 and shift = -e for 1 <= e <= TK_RQ_MAX_E, is
 *     (SMMULR(2x, m) + (x >> 31) + 2^(e-1) + offset * 2^e) >> e      (arithmetic shifts):
 *  - the doubling high multiply of x and m, nudge and truncation included, is floor((x*m + 2^30) / 2^31)
 *    for either sign, which is SMMULR(2x, m) = floor((2x*m + 2^31) / 2^32) when 2x fits in int32;
 *  - its divide by 2^e (ties away from zero) is floor((h + 2^(e-1) - [h < 0]) / 2^e), and [h < 0] may
 *    be replaced by [x < 0] (they differ only where h = 0, which rounds to 0 either way);
 *  - adding the offset before the floor divide is adding offset * 2^e.
 * With |x| < 2^30 and e <= TK_RQ_MAX_E nothing overflows. A sum of `taps` products of int8 weights and
 * inputs plus the offset (each at most 128 * 255) and a bias stays below 2^30 when |bias| <= 2^29 and
 * taps <= TK_RQ_MAX_TAPS, which the table checks once per channel; anything else (e = 0, a left shift,
 * m < 0, a large bias) keeps tk_multiply.
 *
 * A block of channels takes one path for all its channels: the slow path if any channel needs it (a
 * dead channel, multiplier 0 and shift 0, is one). Every entry carries what both need: `right` is minus
 * the shift (e where the fast path applies), and the fast path also reads `add`. */
#define TK_RQ_MAX_E 22
#define TK_RQ_MAX_TAPS 16384

/* floor((a * b + 2^31) / 2^32): the high word of the product, rounded (SMMULR). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
static inline int32_t tk_high_mul_rounded(int32_t a, int32_t b)
{
    int32_t result;
    __asm__("smmulr %0, %1, %2" : "=r"(result) : "r"(a), "r"(b));
    return result;
}
#else
static inline int32_t tk_high_mul_rounded(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 31)) >> 32);
}
#endif

typedef struct {
    int32_t bias, multiplier;
    int32_t right; /* minus the shift: e on the fast path */
    int32_t add;   /* 2^(e-1) + output_offset * 2^e, for the fast path */
} tk_rq;

/* Whether the fast path computes x * m * 2^shift + offset for every |x| < 2^30. */
static inline int tk_rq_fast(int32_t multiplier, int32_t shift)
{
    return multiplier >= 0 && shift <= -1 && shift >= -TK_RQ_MAX_E;
}

/* The fast path's result before the clamp. */
static inline int32_t tk_rq_fast_scale(int32_t x, int32_t multiplier, int32_t add, int32_t right)
{
    const int32_t high = tk_high_mul_rounded((int32_t)((uint32_t)x << 1), multiplier);
    return (high + (x >> 31) + add) >> right;
}

/* Channel c's entry for sums of `taps` products; returns 1 if it can take the fast path. */
static inline int tk_rq_make(tk_rq *q, const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                             int c, int taps, int32_t output_offset)
{
    const int32_t m = multiplier[c], s = shift[c], b = bias ? bias[c] : 0;
    const int fast = tk_rq_fast(m, s) && b <= (1 << 29) && b >= -(1 << 29) && taps <= TK_RQ_MAX_TAPS;
    q->bias = b;
    q->multiplier = m;
    q->right = -s;
    q->add = fast ? (int32_t)(((uint32_t)1 << (-s - 1)) + (uint32_t)output_offset * ((uint32_t)1 << -s)) : 0;
    return fast;
}

/* The output's int8 from a sum (`fast` a constant at each call site, so the other path compiles away). */
static inline int8_t tk_rq_output(const tk_rq *q, int32_t acc, int fast, int32_t output_offset, int32_t act_min,
                                  int32_t act_max)
{
    if (fast) {
        return (int8_t)tk_clamp(tk_rq_fast_scale(acc, q->multiplier, q->add, q->right), act_min, act_max);
    }
    return (int8_t)tk_clamp(tk_multiply(acc, q->multiplier, -q->right) + output_offset, act_min, act_max);
}

/* tk_requantize without a table: the fast path where the constants and this sum allow it. */
static inline int8_t tk_requantize_dsp(int32_t x, int32_t multiplier, int32_t shift, int32_t output_offset,
                                       int32_t act_min, int32_t act_max)
{
    int32_t scaled;
    if (tk_rq_fast(multiplier, shift) && x < (1 << 30) && x > -(1 << 30)) {
        const int e = -shift;
        scaled = tk_rq_fast_scale(x, multiplier,
                                  (int32_t)(((uint32_t)1 << (e - 1)) + (uint32_t)output_offset * ((uint32_t)1 << e)), e);
    } else {
        scaled = tk_multiply(x, multiplier, shift) + output_offset;
    }
    return (int8_t)tk_clamp(scaled, act_min, act_max);
}

/* Entries for channels [c0, c0 + n) with sums of `taps` products; returns 1 if every one takes the fast
 * path. */
static inline int tk_rq_table(tk_rq *table, const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                              int c0, int n, int taps, int32_t output_offset)
{
    int c, fast = 1;
    for (c = 0; c < n; ++c) {
        fast &= tk_rq_make(&table[c], bias, multiplier, shift, c0 + c, taps, output_offset);
    }
    return fast;
}

#endif /* TINYKD_DSP_H_ */
