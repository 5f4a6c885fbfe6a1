/* tinykd C backend runtime, portable kernels: what their convolutions share (a pixel's patch of taps, the
 * sums' starts, dot products four channels at a time, a requantization without 64-bit products).
 *
 * The sums are sum(w * (x + offset)); with int32 wrap-around that equals sum(w * x) + offset * sum(w),
 * so the kernels start each sum at bias + offset * sum(w) (tk_start_sums) and multiply raw int8 values.
 *
 * tk_dot4_groups takes the dot products of one vector with four rows of weights at a time, reading each
 * value once for the four. On ARMv6-M (Cortex-M0, M0+, and ARMv8-M Baseline: M23) it is written in
 * assembly: GCC spills there what the loop needs in registers (6.75 instructions per multiply-accumulate
 * against 3.6). Elsewhere it is plain C with the same results.
 */
#ifndef TINYKD_PORTABLE_H_
#define TINYKD_PORTABLE_H_

#include <stdint.h>
#include <string.h>

#include "tinykd_runtime.h"

/* Output channels whose sums' starts a convolution keeps on the stack (4 bytes each). */
#ifndef TK_CONV_CHANNELS
#define TK_CONV_CHANNELS 128
#endif

/* Rows of weights a tk_dot4_groups call takes at most (their sums on the stack: 4 bytes each). */
#define TK_DOT_ROWS 32

#if defined(__GNUC__) && (defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__))

/* One tap i (r2): x[i] times each row's weight at i, added to that row's sum. */
#define TK_ASM_TAP                                                                                            \
    "ldrsb r6, [r0, r2]\n"                                                                                   \
    "ldrsb r7, [r1, r2]\n"                                                                                   \
    "muls r7, r6, r7\n"                                                                                      \
    "add r8, r8, r7\n"                                                                                       \
    "ldrsb r7, [r3, r2]\n"                                                                                   \
    "muls r7, r6, r7\n"                                                                                      \
    "add r9, r9, r7\n"                                                                                       \
    "ldrsb r7, [r4, r2]\n"                                                                                   \
    "muls r7, r6, r7\n"                                                                                      \
    "add r10, r10, r7\n"                                                                                     \
    "ldrsb r7, [r5, r2]\n"                                                                                   \
    "muls r7, r6, r7\n"                                                                                      \
    "add r11, r11, r7\n"

/* tk_dot4_groups given x + n and w + n, with n >= 1 and groups >= 1. Registers: r0 x + n, r1 r3 r4 r5 the
 * four rows' ends, r2 the index from -n up to 0, r6 x[i], r7 a product, ip n; the sums in r8..r11; on
 * the stack sums, acc and the groups left. Two taps a turn. */
#define TK_ARG __attribute__((unused)) /* read from its register by the assembly */
__attribute__((naked, noinline, unused)) static void tk_dot4_groups_ends(
    const int8_t *x_end TK_ARG, const int8_t *w_end TK_ARG, int n TK_ARG, const int32_t *sums TK_ARG,
    int32_t *acc TK_ARG, int groups TK_ARG)
{
    __asm__ volatile(
        ".syntax unified\n"
        "push {r4, r5, r6, r7, lr}\n"
        "mov r4, r8\n"
        "mov r5, r9\n"
        "mov r6, r10\n"
        "mov r7, r11\n"
        "push {r4, r5, r6, r7}\n"
        "mov ip, r2\n"
        "ldr r4, [sp, #36]\n"
        "ldr r5, [sp, #40]\n"
        "push {r3, r4, r5}\n"
        "3:\n" /* a group of four rows */
        "ldr r6, [sp, #0]\n"
        "ldm r6!, {r2, r3, r4, r5}\n"
        "str r6, [sp, #0]\n"
        "mov r8, r2\n"
        "mov r9, r3\n"
        "mov r10, r4\n"
        "mov r11, r5\n"
        "mov r2, ip\n"
        "adds r3, r1, r2\n"
        "adds r4, r3, r2\n"
        "adds r5, r4, r2\n"
        "rsbs r2, r2, #0\n"
        "lsls r6, r2, #31\n" /* an odd n: one tap first */
        "beq 1f\n"
        TK_ASM_TAP
        "adds r2, r2, #1\n"
        "beq 2f\n"
        "1:\n" /* two taps a turn */
        TK_ASM_TAP
        "adds r2, r2, #1\n"
        TK_ASM_TAP
        "adds r2, r2, #1\n"
        "bne 1b\n"
        "2:\n"
        "mov r2, ip\n"
        "adds r1, r5, r2\n"
        "mov r2, r8\n"
        "mov r3, r9\n"
        "mov r4, r10\n"
        "mov r5, r11\n"
        "ldr r6, [sp, #4]\n"
        "stm r6!, {r2, r3, r4, r5}\n"
        "str r6, [sp, #4]\n"
        "ldr r6, [sp, #8]\n"
        "subs r6, r6, #1\n"
        "str r6, [sp, #8]\n"
        "bne 3b\n"
        "add sp, sp, #12\n"
        "pop {r4, r5, r6, r7}\n"
        "mov r8, r4\n"
        "mov r9, r5\n"
        "mov r10, r6\n"
        "mov r11, r7\n"
        "pop {r4, r5, r6, r7, pc}\n");
}

/* acc[r] = sums[r] + sum over i < n of x[i] * w[r * n + i], for rows r < 4 * groups, n >= 1. */
static inline void tk_dot4_groups(const int8_t *x, const int8_t *w, int n, const int32_t *sums, int32_t *acc,
                                  int groups)
{
    tk_dot4_groups_ends(x + n, w + n, n, sums, acc, groups);
}

#else

/* acc[r] = sums[r] + sum over i < n of x[i] * w[r * n + i], for rows r < 4 * groups, n >= 1. */
static inline void tk_dot4_groups(const int8_t *x, const int8_t *w, int n, const int32_t *sums, int32_t *acc,
                                  int groups)
{
    int g, i;
    for (g = 0; g < groups; ++g, w += 4 * n, sums += 4, acc += 4) {
        int32_t a0 = sums[0], a1 = sums[1], a2 = sums[2], a3 = sums[3];
        for (i = 0; i < n; ++i) {
            const int32_t v = x[i];
            a0 += v * w[i];
            a1 += v * w[n + i];
            a2 += v * w[2 * n + i];
            a3 += v * w[3 * n + i];
        }
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
    }
}

#endif

/* sum over i < n of x[i] * w[i]. */
static inline int32_t tk_dot1(const int8_t *x, const int8_t *w, int n)
{
    int32_t acc = 0;
    int i;
    for (i = 0; i < n; ++i) {
        acc += (int32_t)x[i] * w[i];
    }
    return acc;
}

/* tk_requantize with 32-bit multiplies only (Cortex-M0+ has no 32 x 32 -> 64 one; GCC's 64-bit product
 * costs a library call). Where multiplier >= 0 and -31 <= shift <= -1, tk_multiply's result is
 *     t = floor((P + 2^30 - [x < 0] * 2^31) / 2^31),  P = x * multiplier,  then floor((t + 2^(e-1)) / 2^e)
 * with e = -shift (tinykd_dsp.h's proof, "Requantization with fewer instructions"). With x = xh * 2^16 +
 * xl and multiplier = mh * 2^16 + ml (xh signed, the others unsigned halves), P = xh*mh * 2^32 +
 * (xh*ml + xl*mh) * 2^16 + xl*ml. The rounding term is a multiple of 2^16, so the low 16 bits of xl*ml
 * cannot carry into bit 31: t = 2*xh*mh + floor(Q / 2^15), Q = xh*ml + (xl*mh + (xl*ml >> 16) + 2^14 -
 * [x < 0] * 2^15), both summands of Q within int32 (|xh*ml| < 2^31; the bracket < 2^31 - 2^14), and
 * floor((a + b) / 2^15) is (a >> 15) + (b >> 15) plus the carry of their low 15 bits. t itself is at most
 * |x|, so the sum of the parts, wrapping in uint32, is exact. Anything else keeps tk_multiply. */
static inline int32_t tk_multiply_fast(int32_t x, int32_t m, int32_t s)
{
    const int e = -s;
    const int32_t mh = m >> 16;
    int32_t t;
    if (m < 0 || e < 1 || e > 31) {
        return tk_multiply(x, m, (int)s);
    }
    if ((uint32_t)x + 32768u < 65536u && e <= 16) {
        /* |x| <= 2^15: x*mh and x*ml fit in int32, t = floor(A / 2^15) with A = x*mh + (x*ml >> 16) + 2^14
         * - [x < 0] * 2^15 < 2^30 + 2^16, and the rounding shift folds into one: floor((A + 2^(14+e)) /
         * 2^(15+e)), the sum below 2^31 for e <= 16 */
        const int32_t a = x * mh + ((x * (int32_t)((uint32_t)m & 0xFFFFu)) >> 16) - (int32_t)((uint32_t)x >> 31 << 15);
        return (a + (1 << 14) + (1 << (14 + e))) >> (15 + e);
    } else {
        const int32_t xh = x >> 16;
        const uint32_t xl = (uint32_t)x & 0xFFFFu, ml = (uint32_t)m & 0xFFFFu;
        const int32_t b = xh * (int32_t)ml;
        const int32_t rest = (int32_t)(xl * (uint32_t)mh + ((xl * ml) >> 16)) + (x < 0 ? -(1 << 14) : (1 << 14));
        const uint32_t carry = (((uint32_t)b & 0x7FFFu) + ((uint32_t)rest & 0x7FFFu)) >> 15;
        t = (int32_t)((uint32_t)(xh * mh) * 2u + (uint32_t)((b >> 15) + (rest >> 15)) + carry);
    }
    return (t >> e) + ((t >> (e - 1)) & 1);
}

/* tk_requantize, scaled by tk_multiply_fast. */
static inline int8_t tk_requantize_fast(int32_t x, const int32_t *multiplier, const int32_t *shift, int c,
                                        int32_t output_offset, int32_t act_min, int32_t act_max)
{
    return (int8_t)tk_clamp(tk_multiply_fast(x, multiplier[c], shift[c]) + output_offset, act_min, act_max);
}

/* sums[r] = bias[r] + offset * (sum of row r's n weights), for rows r < rows; row r's weight i at
 * w[r * row_step + i * step]. */
static inline void tk_start_sums(const int8_t *w, int rows, int n, int row_step, int step, const int32_t *bias,
                                 int32_t offset, int32_t *sums)
{
    int r, i;
    for (r = 0; r < rows; ++r) {
        const int8_t *row = w + r * row_step;
        int32_t total = 0;
        for (i = 0; i < n; ++i) {
            total += row[i * step];
        }
        sums[r] = (bias ? bias[r] : 0) + offset * total;
    }
}

/* The taps of a convolution's filter placed at input (y0, x0) of one image, in the filter's order (of
 * a depthwise filter too, whose in_c is its channels), the padding as `pad`. */
static inline void tk_patch(const tk_conv_params *p, const int8_t *image, int y0, int x0, int8_t pad, int8_t *patch)
{
    const int in_c = p->in_c, row = p->k_w * in_c;
    int ky, kx;
    if (p->dilation_w == 1) { /* the taps of a filter row inside the input are one run of it */
        const tk_range cols = tk_taps_inside(x0, 1, p->k_w, p->in_w);
        const int before = cols.begin * in_c, run = (cols.end - cols.begin) * in_c;
        for (ky = 0; ky < p->k_h; ++ky, patch += row) {
            const int y = y0 + ky * p->dilation_h;
            if (y < 0 || y >= p->in_h || run <= 0) {
                memset(patch, pad, (size_t)row);
                continue;
            }
            memset(patch, pad, (size_t)before);
            memcpy(patch + before, image + (y * p->in_w + x0 + cols.begin) * in_c, (size_t)run);
            memset(patch + before + run, pad, (size_t)(row - before - run));
        }
        return;
    }
    for (ky = 0; ky < p->k_h; ++ky) {
        const int y = y0 + ky * p->dilation_h;
        for (kx = 0; kx < p->k_w; ++kx, patch += in_c) {
            const int x = x0 + kx * p->dilation_w;
            if (y >= 0 && y < p->in_h && x >= 0 && x < p->in_w) {
                memcpy(patch, image + (y * p->in_w + x) * in_c, (size_t)in_c);
            } else {
                memset(patch, pad, (size_t)in_c);
            }
        }
    }
}

/* out[r] for every row r < rows of the weights: the requantized sums[r] + sum(x[i] * w[r * n + i]). */
static inline void tk_dot_rows(const int8_t *x, const int8_t *w, int n, int rows, const int32_t *sums,
                               const int32_t *multiplier, const int32_t *shift, int32_t output_offset,
                               int32_t act_min, int32_t act_max, int8_t *out)
{
    int32_t acc[TK_DOT_ROWS];
    int r = 0, k;
    while (rows - r >= 4) {
        const int count = rows - r < TK_DOT_ROWS ? (rows - r) & ~3 : TK_DOT_ROWS;
        tk_dot4_groups(x, w + r * n, n, sums + r, acc, count / 4);
        for (k = 0; k < count; ++k) {
            out[r + k] = tk_requantize_fast(acc[k], multiplier, shift, r + k, output_offset, act_min, act_max);
        }
        r += count;
    }
    for (; r < rows; ++r) {
        out[r] = tk_requantize_fast(sums[r] + tk_dot1(x, w + r * n, n), multiplier, shift, r, output_offset, act_min,
                               act_max);
    }
}

#endif /* TINYKD_PORTABLE_H_ */
