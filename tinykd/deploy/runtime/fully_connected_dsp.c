/* FULLY_CONNECTED for cores with the DSP extension: the same sums and requantization as
 * fully_connected.c, four output units per pass over the input (the last one to three two at a time,
 * tk_dot2), each word of inputs widened once for all the units of a pass, eight inputs per step.
 * Stack: under 100 bytes. */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_DSP

#include "tinykd_dsp.h"

/* Adds to the four sums the products of four values x[i] + offset (offset2 = tk_pair(offset)) with
 * w[i], w[step + i], w2[i] and w2[step + i]. */
static TK_ALWAYS_INLINE void tk_fc_dot4_step(const int8_t *x, const int8_t *w, const int8_t *w2, int step,
                                          uint32_t offset2, int32_t *sum0, int32_t *sum1, int32_t *sum2,
                                          int32_t *sum3)
{
    const uint32_t xq = tk_read_quad(x);
    const uint32_t even = tk_add_even(offset2, xq), odd = tk_add_odd(offset2, xq);
    tk_dual_mac4(tk_read_quad(w), tk_read_quad(w + step), even, odd, sum0, sum1);
    tk_dual_mac4(tk_read_quad(w2), tk_read_quad(w2 + step), even, odd, sum2, sum3);
}

/* Adds to acc[0..3] the dot products of n int8 values x[i] + offset with four rows of n int8 weights,
 * w[i], w[step + i], w[2 step + i] and w[3 step + i]; eight values per step. */
static void tk_fc_dot4(const int8_t *x, const int8_t *w, int step, int n, int32_t offset, int32_t acc[4])
{
    const uint32_t offset2 = tk_pair(offset);
    const int8_t *w2 = w + 2 * step;
    int32_t sum0 = acc[0], sum1 = acc[1], sum2 = acc[2], sum3 = acc[3];
    for (; n >= 8; n -= 8) {
        tk_fc_dot4_step(x, w, w2, step, offset2, &sum0, &sum1, &sum2, &sum3);
        tk_fc_dot4_step(x + 4, w + 4, w2 + 4, step, offset2, &sum0, &sum1, &sum2, &sum3);
        x += 8;
        w += 8;
        w2 += 8;
    }
    if (n >= 4) {
        tk_fc_dot4_step(x, w, w2, step, offset2, &sum0, &sum1, &sum2, &sum3);
        x += 4;
        w += 4;
        w2 += 4;
        n -= 4;
    }
    for (; n > 0; --n) {
        const int32_t value = (int32_t)*x++ + offset;
        sum0 += (int32_t)w[0] * value;
        sum1 += (int32_t)w[step] * value;
        sum2 += (int32_t)w2[0] * value;
        sum3 += (int32_t)w2[step] * value;
        ++w;
        ++w2;
    }
    acc[0] = sum0;
    acc[1] = sum1;
    acc[2] = sum2;
    acc[3] = sum3;
}

static void row_in_fours(const tk_fully_connected_params *p, const int8_t *row, int8_t *out)
{
    const int depth = p->accum_depth, units = p->out_depth;
    int o, k;
    for (o = 0; o + 4 <= units; o += 4) {
        int32_t acc[4];
        for (k = 0; k < 4; ++k) {
            acc[k] = p->bias ? p->bias[o + k] : 0;
        }
        tk_fc_dot4(row, p->weights + o * depth, depth, depth, p->input_offset, acc);
        for (k = 0; k < 4; ++k) {
            out[o + k] = tk_requantize_dsp(acc[k], p->multiplier[o + k], p->shift[o + k], p->output_offset,
                                           p->act_min, p->act_max);
        }
    }
    for (; o < units; o += 2) {
        const int pair = o + 1 < units;
        int32_t acc0 = p->bias ? p->bias[o] : 0;
        int32_t acc1 = p->bias && pair ? p->bias[o + 1] : 0;
        tk_dot2(row, p->weights + o * depth, pair ? depth : 0, depth, p->input_offset, &acc0, &acc1);
        out[o] = tk_requantize_dsp(acc0, p->multiplier[o], p->shift[o], p->output_offset, p->act_min, p->act_max);
        if (pair) {
            out[o + 1] = tk_requantize_dsp(acc1, p->multiplier[o + 1], p->shift[o + 1], p->output_offset, p->act_min,
                                           p->act_max);
        }
    }
}

void tk_fully_connected(const tk_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    tk_fully_connected_rows(p, input, output, row_in_fours);
}

#endif /* TK_KERNELS == TK_KERNELS_DSP */
