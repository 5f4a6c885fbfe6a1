/* CONV_2D for cores with the DSP extension: the same sums and requantization as conv.c, reordered.
 *
 * Output channels go in blocks of up to TK_RQ_BLOCK (tinykd_kernels.h), whose requantization constants (tk_rq) are worked
 * out once per block; within a block, two output channels per pass over an output pixel's taps, with
 * 16-bit multiply-accumulates of two products each (tk_dual_mac). Three ways to reach the taps:
 *  - "wide": a small filter (at most TK_CONV_WIDE_TAPS taps, k_h * k_w * in_c, and the block's weights
 *    in TK_CONV_WIDE words once widened): the block's weights are widened to 16-bit pairs once per call
 *    and each output pixel's patch once, in tap order (the input offset added, the padding 0), so a
 *    pair of taps is one load per channel and one shared load of the patch;
 *  - "quads": in_c a multiple of 4 and at most TK_CONV_PATCH taps: the patch is widened four channels
 *    at a time into a word of taps (0, 2) and one of (1, 3), as tk_even / tk_odd widen a word of weights;
 *  - otherwise, a patch in that order built tap by tap (at most TK_CONV_PATCH taps), or per filter row
 *    the taps inside the input as one contiguous run of the input and of the filter (tk_dot2).
 * Stack: the block's tk_rq table (24 * TK_RQ_BLOCK bytes) and the patch (and widened weights).
 */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_DSP

#include "tinykd_dsp.h"

#ifndef TK_CONV_PATCH
#define TK_CONV_PATCH 256 /* taps: 512 bytes of stack */
#endif
#ifndef TK_CONV_WIDE
#define TK_CONV_WIDE 128 /* words of widened weights: 512 bytes of stack */
#endif
#ifndef TK_CONV_WIDE_TAPS
#define TK_CONV_WIDE_TAPS 64
#endif

/* The layer's numbers as locals (writing the output could alias *p as far as the compiler knows). */
typedef struct {
    int in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
    int filter;
    int32_t input_offset, output_offset, act_min, act_max;
} tk_conv_shape;

static void tk_conv_shape_of(const tk_conv_params *p, tk_conv_shape *s)
{
    s->in_h = p->in_h;
    s->in_w = p->in_w;
    s->in_c = p->in_c;
    s->out_h = p->out_h;
    s->out_w = p->out_w;
    s->out_c = p->out_c;
    s->k_h = p->k_h;
    s->k_w = p->k_w;
    s->stride_h = p->stride_h;
    s->stride_w = p->stride_w;
    s->dil_h = p->dilation_h;
    s->dil_w = p->dilation_w;
    s->pad_h = p->pad_h;
    s->pad_w = p->pad_w;
    s->filter = p->k_h * p->k_w * p->in_c;
    s->input_offset = p->input_offset;
    s->output_offset = p->output_offset;
    s->act_min = p->act_min;
    s->act_max = p->act_max;
}

/* Whether every tap of the filter at input (y0, x0) lies inside the image. */
static inline int tk_all_inside(const tk_conv_shape *s, int y0, int x0)
{
    return y0 >= 0 && y0 + (s->k_h - 1) * s->dil_h < s->in_h && x0 >= 0 && x0 + (s->k_w - 1) * s->dil_w < s->in_w;
}

static inline uint32_t tk_read_pair(const int16_t *p)
{
    uint32_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

/* ---- wide: widened weights, patch in tap order ---------------------------------------------------- */

/* The patch in tap order (input offset added, padding 0). */
static TK_ALWAYS_INLINE void tk_patch_in_order(const tk_conv_shape *s, const int8_t *image, int y0, int x0,
                                               int16_t *patch)
{
    const int in_c = s->in_c, row_taps = s->k_w * in_c;
    const int32_t offset = s->input_offset;
    int ky, kx, j;
    if (s->dil_w == 1 && tk_all_inside(s, y0, x0)) {
        const int8_t *src = image + (y0 * s->in_w + x0) * in_c;
        const int step = s->dil_h * s->in_w * in_c;
        for (ky = 0; ky < s->k_h; ++ky) {
            for (j = 0; j < row_taps; ++j) {
                patch[j] = (int16_t)((int32_t)src[j] + offset);
            }
            patch += row_taps;
            src += step;
        }
        return;
    }
    for (ky = 0; ky < s->k_h; ++ky) {
        const int y = y0 + ky * s->dil_h;
        for (kx = 0; kx < s->k_w; ++kx) {
            const int x = x0 + kx * s->dil_w;
            if (y >= 0 && y < s->in_h && x >= 0 && x < s->in_w) {
                const int8_t *pixel = image + (y * s->in_w + x) * in_c;
                for (j = 0; j < in_c; ++j) {
                    patch[j] = (int16_t)((int32_t)pixel[j] + offset);
                }
            } else {
                for (j = 0; j < in_c; ++j) {
                    patch[j] = 0;
                }
            }
            patch += in_c;
        }
    }
}

static TK_ALWAYS_INLINE void tk_conv_wide_body(const tk_conv_shape *s, int batches, const int8_t *input,
                                               int8_t *output, int c0, int n, const tk_rq *rq,
                                               const uint32_t *wide, int16_t *patch, const int fast)
{
    const int pairs = (s->filter + 1) / 2, out_c = s->out_c;
    const int32_t output_offset = s->output_offset, act_min = s->act_min, act_max = s->act_max;
    int b, oy, ox, c, j;
    int8_t *out = output + c0;
    for (b = 0; b < batches; ++b) {
        const int8_t *image = input + b * s->in_h * s->in_w * s->in_c;
        for (oy = 0; oy < s->out_h; ++oy) {
            const int y0 = oy * s->stride_h - s->pad_h;
            for (ox = 0; ox < s->out_w; ++ox) {
                tk_patch_in_order(s, image, y0, ox * s->stride_w - s->pad_w, patch);
                for (c = 0; c + 1 < n; c += 2) {
                    const uint32_t *w0 = wide + c * pairs, *w1 = w0 + pairs;
                    int32_t sum0 = rq[c].bias, sum1 = rq[c + 1].bias;
                    for (j = 0; j < pairs; ++j) {
                        const uint32_t x = tk_read_pair(patch + 2 * j);
                        sum0 = tk_dual_mac(w0[j], x, sum0);
                        sum1 = tk_dual_mac(w1[j], x, sum1);
                    }
                    out[c] = tk_rq_output(&rq[c], sum0, fast, output_offset, act_min, act_max);
                    out[c + 1] = tk_rq_output(&rq[c + 1], sum1, fast, output_offset, act_min, act_max);
                }
                if (c < n) {
                    const uint32_t *w0 = wide + c * pairs;
                    int32_t sum0 = rq[c].bias;
                    for (j = 0; j < pairs; ++j) {
                        sum0 = tk_dual_mac(w0[j], tk_read_pair(patch + 2 * j), sum0);
                    }
                    out[c] = tk_rq_output(&rq[c], sum0, fast, output_offset, act_min, act_max);
                }
                out += out_c;
            }
        }
    }
}

static TK_NOINLINE void tk_conv_wide(const tk_conv_params *p, const tk_conv_shape *s, const int8_t *input,
                                     int8_t *output, int c0, int n)
{
    tk_rq rq[TK_RQ_BLOCK];
    uint32_t wide[TK_CONV_WIDE];
    int16_t patch[TK_CONV_WIDE_TAPS + 2];
    const int filter = s->filter, pairs = (filter + 1) / 2;
    const int fast = tk_rq_table(rq, p->bias, p->multiplier, p->shift, c0, n);
    int c, j;
    for (c = 0; c < n; ++c) {
        const int8_t *w = p->weights + (c0 + c) * filter;
        for (j = 0; j < pairs; ++j) {
            const int32_t low = w[2 * j], high = 2 * j + 1 < filter ? w[2 * j + 1] : 0;
            wide[c * pairs + j] = ((uint32_t)low & 0xFFFFu) | ((uint32_t)high << 16);
        }
    }
    patch[filter] = 0; /* the odd tap's partner: its weight is 0 too */
    if (fast) {
        tk_conv_wide_body(s, p->batches, input, output, c0, n, rq, wide, patch, 1);
    } else {
        tk_conv_wide_body(s, p->batches, input, output, c0, n, rq, wide, patch, 0);
    }
}

/* ---- quads: in_c a multiple of 4, patch widened a word at a time ---------------------------------- */

/* The patch as words: per four channels of a tap, (c0, c2) then (c1, c3), the input offset added. */
static TK_ALWAYS_INLINE void tk_patch_quads(const tk_conv_shape *s, const int8_t *image, int y0, int x0,
                                            uint32_t *patch)
{
    const int in_c = s->in_c, quads = in_c / 4;
    const uint32_t offset2 = tk_pair(s->input_offset);
    int ky, kx, j;
    if (s->dil_w == 1 && tk_all_inside(s, y0, x0)) {
        const int8_t *src = image + (y0 * s->in_w + x0) * in_c;
        const int step = s->dil_h * s->in_w * in_c, row_quads = s->k_w * quads;
        for (ky = 0; ky < s->k_h; ++ky) {
            for (j = 0; j < row_quads; ++j) {
                const uint32_t xq = tk_read_quad(src + 4 * j);
                patch[0] = tk_add_even(offset2, xq);
                patch[1] = tk_add_odd(offset2, xq);
                patch += 2;
            }
            src += step;
        }
        return;
    }
    for (ky = 0; ky < s->k_h; ++ky) {
        const int y = y0 + ky * s->dil_h;
        for (kx = 0; kx < s->k_w; ++kx) {
            const int x = x0 + kx * s->dil_w;
            if (y >= 0 && y < s->in_h && x >= 0 && x < s->in_w) {
                const int8_t *pixel = image + (y * s->in_w + x) * in_c;
                for (j = 0; j < quads; ++j) {
                    const uint32_t xq = tk_read_quad(pixel + 4 * j);
                    patch[0] = tk_add_even(offset2, xq);
                    patch[1] = tk_add_odd(offset2, xq);
                    patch += 2;
                }
            } else {
                for (j = 0; j < quads; ++j) {
                    patch[0] = 0;
                    patch[1] = 0;
                    patch += 2;
                }
            }
        }
    }
}

static TK_ALWAYS_INLINE void tk_conv_quads_body(const tk_conv_shape *s, int batches, const int8_t *weights,
                                                const int8_t *input, int8_t *output, int c0, int n,
                                                const tk_rq *rq, uint32_t *patch, const int fast)
{
    const int filter = s->filter, groups = filter / 4, out_c = s->out_c;
    const int32_t output_offset = s->output_offset, act_min = s->act_min, act_max = s->act_max;
    int b, oy, ox, c, g;
    int8_t *out = output + c0;
    for (b = 0; b < batches; ++b) {
        const int8_t *image = input + b * s->in_h * s->in_w * s->in_c;
        for (oy = 0; oy < s->out_h; ++oy) {
            const int y0 = oy * s->stride_h - s->pad_h;
            for (ox = 0; ox < s->out_w; ++ox) {
                tk_patch_quads(s, image, y0, ox * s->stride_w - s->pad_w, patch);
                for (c = 0; c < n; c += 2) {
                    /* an odd last channel runs its own weights twice and keeps one sum */
                    const int other = c + 1 < n ? filter : 0;
                    const int8_t *w0 = weights + (c0 + c) * filter;
                    const uint32_t *x = patch;
                    int32_t sum0 = rq[c].bias, sum1 = other ? rq[c + 1].bias : 0;
                    for (g = groups; g > 0; --g) {
                        const uint32_t even = x[0], odd = x[1];
                        const uint32_t wa = tk_read_quad(w0), wb = tk_read_quad(w0 + other);
                        sum0 = tk_dual_mac(tk_even(wa), even, sum0);
                        sum0 = tk_dual_mac(tk_odd(wa), odd, sum0);
                        sum1 = tk_dual_mac(tk_even(wb), even, sum1);
                        sum1 = tk_dual_mac(tk_odd(wb), odd, sum1);
                        x += 2;
                        w0 += 4;
                    }
                    out[c] = tk_rq_output(&rq[c], sum0, fast, output_offset, act_min, act_max);
                    if (other) {
                        out[c + 1] = tk_rq_output(&rq[c + 1], sum1, fast, output_offset, act_min, act_max);
                    }
                }
                out += out_c;
            }
        }
    }
}

static TK_NOINLINE void tk_conv_quads(const tk_conv_params *p, const tk_conv_shape *s, const int8_t *input,
                                      int8_t *output, int c0, int n)
{
    tk_rq rq[TK_RQ_BLOCK];
    uint32_t patch[TK_CONV_PATCH / 2];
    if (tk_rq_table(rq, p->bias, p->multiplier, p->shift, c0, n)) {
        tk_conv_quads_body(s, p->batches, p->weights, input, output, c0, n, rq, patch, 1);
    } else {
        tk_conv_quads_body(s, p->batches, p->weights, input, output, c0, n, rq, patch, 0);
    }
}

/* ---- any other filter ----------------------------------------------------------------------------- */

/* Where the patch stores tap i: in each group of four the order 0, 2, 1, 3, so that one word holds
 * taps (0, 2) and the next (1, 3), as tk_even / tk_odd widen a word of weights; the tail in order. */
static inline int tk_patch_slot(int i, int groups_end)
{
    return i < groups_end ? (i & ~3) | ((i & 1) << 1) | ((i >> 1) & 1) : i;
}

/* The patch of the output pixel whose filter's top-left tap sits at input (y0, x0). */
static void tk_conv_patch(const tk_conv_shape *s, const int8_t *image, int y0, int x0, int16_t *patch)
{
    const int in_h = s->in_h, in_w = s->in_w, in_c = s->in_c, k_w = s->k_w;
    const int32_t input_offset = s->input_offset;
    const int groups_end = s->filter & ~3;
    int ky, kx, ic, i = 0;
    for (ky = 0; ky < s->k_h; ++ky) {
        const int y = y0 + ky * s->dil_h;
        for (kx = 0; kx < k_w; ++kx) {
            const int x = x0 + kx * s->dil_w;
            if (y >= 0 && y < in_h && x >= 0 && x < in_w) {
                const int8_t *pixel = image + (y * in_w + x) * in_c;
                for (ic = 0; ic < in_c; ++ic, ++i) {
                    patch[tk_patch_slot(i, groups_end)] = (int16_t)((int32_t)pixel[ic] + input_offset);
                }
            } else {
                for (ic = 0; ic < in_c; ++ic, ++i) {
                    patch[tk_patch_slot(i, groups_end)] = 0;
                }
            }
        }
    }
}

/* Channels [c0, c0 + n) of one pixel from its patch. */
static TK_ALWAYS_INLINE void tk_conv_from_patch(const tk_conv_shape *s, const int8_t *weights, const int16_t *patch,
                                                int8_t *out, int c0, int n, const tk_rq *rq, const int fast)
{
    const int filter = s->filter;
    int c;
    for (c = 0; c < n; c += 2) {
        const int other = c + 1 < n ? filter : 0;
        const int8_t *w = weights + (c0 + c) * filter;
        const int16_t *x = patch;
        int32_t sum0 = rq[c].bias, sum1 = other ? rq[c + 1].bias : 0;
        int k;
        for (k = filter; k >= 4; k -= 4) {
            const uint32_t even = tk_read_pair(x), odd = tk_read_pair(x + 2);
            const uint32_t w0 = tk_read_quad(w), w1 = tk_read_quad(w + other);
            sum0 = tk_dual_mac(tk_even(w0), even, sum0);
            sum0 = tk_dual_mac(tk_odd(w0), odd, sum0);
            sum1 = tk_dual_mac(tk_even(w1), even, sum1);
            sum1 = tk_dual_mac(tk_odd(w1), odd, sum1);
            x += 4;
            w += 4;
        }
        for (; k > 0; --k) {
            sum0 += (int32_t)w[0] * *x;
            sum1 += (int32_t)w[other] * *x;
            ++x;
            ++w;
        }
        out[c] = tk_rq_output(&rq[c], sum0, fast, s->output_offset, s->act_min, s->act_max);
        if (other) {
            out[c + 1] = tk_rq_output(&rq[c + 1], sum1, fast, s->output_offset, s->act_min, s->act_max);
        }
    }
}

/* Channels [c0, c0 + n) of one pixel straight from the input, a run of contiguous taps at a time. */
static TK_ALWAYS_INLINE void tk_conv_from_input(const tk_conv_shape *s, const int8_t *weights, const int8_t *image,
                                                int y0, int x0, int8_t *out, int c0, int n, const tk_rq *rq,
                                                const int fast)
{
    const int in_h = s->in_h, in_w = s->in_w, in_c = s->in_c, k_w = s->k_w;
    const int filter_row = k_w * in_c, filter = s->filter;
    const int32_t input_offset = s->input_offset;
    /* with dilation 1: the filter columns inside the input, [kx_begin, kx_end) */
    const int kx_begin = x0 < 0 ? -x0 : 0;
    const int kx_end = in_w - x0 < k_w ? in_w - x0 : k_w;
    const int run = (kx_end - kx_begin) * in_c;
    int c, ky, kx;
    for (c = 0; c < n; c += 2) {
        const int other = c + 1 < n ? filter : 0;
        const int8_t *w = weights + (c0 + c) * filter;
        int32_t acc0 = rq[c].bias, acc1 = other ? rq[c + 1].bias : 0;
        for (ky = 0; ky < s->k_h; ++ky) {
            const int y = y0 + ky * s->dil_h;
            const int8_t *row;
            if (y < 0 || y >= in_h) {
                continue;
            }
            row = image + y * in_w * in_c;
            if (s->dil_w == 1) {
                if (run > 0) {
                    tk_dot2(row + (x0 + kx_begin) * in_c, w + ky * filter_row + kx_begin * in_c, other, run,
                            input_offset, &acc0, &acc1);
                }
                continue;
            }
            for (kx = 0; kx < k_w; ++kx) {
                const int x = x0 + kx * s->dil_w;
                if (x >= 0 && x < in_w) {
                    tk_dot2(row + x * in_c, w + ky * filter_row + kx * in_c, other, in_c, input_offset, &acc0,
                            &acc1);
                }
            }
        }
        out[c] = tk_rq_output(&rq[c], acc0, fast, s->output_offset, s->act_min, s->act_max);
        if (other) {
            out[c + 1] = tk_rq_output(&rq[c + 1], acc1, fast, s->output_offset, s->act_min, s->act_max);
        }
    }
}

static TK_ALWAYS_INLINE void tk_conv_general_body(const tk_conv_shape *s, int batches, const int8_t *weights,
                                                  const int8_t *input, int8_t *output, int c0, int n,
                                                  const tk_rq *rq, int16_t *patch, const int fast)
{
    const int use_patch = s->filter <= TK_CONV_PATCH;
    int b, oy, ox;
    int8_t *out = output + c0;
    for (b = 0; b < batches; ++b) {
        const int8_t *image = input + b * s->in_h * s->in_w * s->in_c;
        for (oy = 0; oy < s->out_h; ++oy) {
            const int y0 = oy * s->stride_h - s->pad_h;
            for (ox = 0; ox < s->out_w; ++ox) {
                const int x0 = ox * s->stride_w - s->pad_w;
                if (use_patch) {
                    tk_conv_patch(s, image, y0, x0, patch);
                    tk_conv_from_patch(s, weights, patch, out, c0, n, rq, fast);
                } else {
                    tk_conv_from_input(s, weights, image, y0, x0, out, c0, n, rq, fast);
                }
                out += s->out_c;
            }
        }
    }
}

static TK_NOINLINE void tk_conv_general(const tk_conv_params *p, const tk_conv_shape *s, const int8_t *input,
                                        int8_t *output, int c0, int n)
{
    tk_rq rq[TK_RQ_BLOCK];
    int16_t patch[TK_CONV_PATCH];
    if (tk_rq_table(rq, p->bias, p->multiplier, p->shift, c0, n)) {
        tk_conv_general_body(s, p->batches, p->weights, input, output, c0, n, rq, patch, 1);
    } else {
        tk_conv_general_body(s, p->batches, p->weights, input, output, c0, n, rq, patch, 0);
    }
}

void tk_conv_2d(const tk_conv_params *p, const int8_t *input, int8_t *output)
{
    tk_conv_shape s;
    int c0;
    tk_conv_shape_of(p, &s);
    for (c0 = 0; c0 < s.out_c; c0 += TK_RQ_BLOCK) {
        const int n = s.out_c - c0 < TK_RQ_BLOCK ? s.out_c - c0 : TK_RQ_BLOCK;
        if (s.filter <= TK_CONV_WIDE_TAPS && n * ((s.filter + 1) / 2) <= TK_CONV_WIDE) {
            tk_conv_wide(p, &s, input, output, c0, n);
        } else if (s.in_c % 4 == 0 && s.filter <= TK_CONV_PATCH) {
            tk_conv_quads(p, &s, input, output, c0, n);
        } else {
            tk_conv_general(p, &s, input, output, c0, n);
        }
    }
}

#endif /* TK_KERNELS == TK_KERNELS_DSP */
