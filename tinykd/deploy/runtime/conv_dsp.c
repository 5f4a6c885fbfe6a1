/* CONV_2D for cores with the DSP extension: the same sums and requantization as conv.c, reordered.
 *
 * Output channels go in blocks of up to TK_RQ_BLOCK (tinykd_kernels.h), whose requantization constants
 * (tk_rq) are worked out once per block; within a block, two output channels per pass over an output
 * pixel's taps, with 16-bit multiply-accumulates of two products each (tk_dual_mac). Each output pixel's
 * taps are first copied into a patch, widened to 16 bits with the input offset added (the padding 0),
 * except for large filters. Three paths, one per block:
 *  - "wide": a small filter (at most TK_CONV_WIDE_TAPS taps, k_h * k_w * in_c, and the block's weights
 *    in TK_CONV_WIDE words once widened): the block's weights are widened to 16-bit pairs once per call
 *    and the patch is in tap order, so a pair of taps is one load per channel and one shared load of
 *    the patch;
 *  - "quads": in_c a multiple of 4, and at most TK_CONV_PATCH taps or a filter row of at most
 *    TK_CONV_SECOND taps: the patch is paired (taps 0 and 2 of each four in one word, 1 and 3 in the
 *    next, as tk_even / tk_odd widen a word of weights), four taps written at a time. Two output pixels
 *    at a time, as many filter rows at a time as fit in half the patch: their sums (2 channels x 2
 *    pixels in registers, eight taps per step) kept in an array of the block's sums between chunks of
 *    rows, then requantized channel by channel;
 *  - otherwise, a paired patch built tap by tap (at most TK_CONV_PATCH taps), or per filter row the
 *    taps inside the input as one contiguous run of the input and of the filter (tk_dot2).
 * The paired patch paths take two output pixels at a time where two (chunks of) patches fit in
 * TK_CONV_PATCH taps, so that each word of weights is loaded and widened once for both pixels (2
 * channels x 2 pixels of sums in registers); either way both pixels' windows are read before their
 * outputs are written.
 * Stack: the block's tk_rq table (16 * TK_RQ_BLOCK bytes), the patch (2 * TK_CONV_PATCH bytes) and on
 * the quads path two pixels' sums (8 * TK_RQ_BLOCK bytes): 3.0 KB with the defaults (GCC, Cortex-M7).
 */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_DSP

#include "tinykd_dsp.h"

#ifndef TK_CONV_PATCH
#define TK_CONV_PATCH 576 /* taps of patches: 1152 bytes of stack */
#endif
#define TK_CONV_SECOND (TK_CONV_PATCH / 2 & ~3) /* where a second patch starts */
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

/* ---- the patch ------------------------------------------------------------------------------------ */

/* How a patch holds the taps: in order, or paired (in each group of four taps the order 0, 2, 1, 3, a
 * tail short of four in order), built in order and then reordered or, with in_c a multiple of 4, written
 * four taps at a time. */
enum { TK_IN_ORDER, TK_PAIRED, TK_PAIRED_QUADS };

/* Taps [i, i + count) of the patch from the input at src, the input offset added. */
static TK_ALWAYS_INLINE void tk_patch_copy(const tk_conv_shape *s, int16_t *patch, int i, const int8_t *src,
                                           int count, const int layout)
{
    const int32_t offset = s->input_offset;
    int j;
    if (layout == TK_PAIRED_QUADS) {
        const uint32_t offset2 = tk_pair(offset);
        for (j = 0; j < count; j += 4) {
            const uint32_t xq = tk_read_quad(src + j);
            tk_write_pair(patch + i + j, tk_add_even(offset2, xq));
            tk_write_pair(patch + i + j + 2, tk_add_odd(offset2, xq));
        }
    } else {
        for (j = 0; j < count; ++j) {
            patch[i + j] = (int16_t)((int32_t)src[j] + offset);
        }
    }
}

/* Taps [i, i + count) of the patch as padding. */
static TK_ALWAYS_INLINE void tk_patch_zero(int16_t *patch, int i, int count, const int layout)
{
    int j;
    if (layout == TK_PAIRED_QUADS) {
        for (j = 0; j < count; j += 2) {
            tk_write_pair(patch + i + j, 0);
        }
    } else {
        for (j = 0; j < count; ++j) {
            patch[i + j] = 0;
        }
    }
}

/* The patch of filter rows [ky0, ky1) of the output pixel whose filter's top-left tap sits at input
 * (y0, x0). */
static TK_ALWAYS_INLINE void tk_conv_patch_rows(const tk_conv_shape *s, const int8_t *image, int y0, int x0,
                                                int ky0, int ky1, int16_t *patch, const int layout)
{
    const int in_c = s->in_c, row_taps = s->k_w * in_c;
    int ky, kx, i = 0;
    if (s->dil_w == 1 && tk_all_inside(s, y0, x0)) { /* each filter row is one run of the input */
        const int step = s->dil_h * s->in_w * in_c;
        const int8_t *src = image + (y0 * s->in_w + x0) * in_c + ky0 * step;
        for (ky = ky0; ky < ky1; ++ky) {
            tk_patch_copy(s, patch, i, src, row_taps, layout);
            i += row_taps;
            src += step;
        }
        return;
    }
    if (s->dil_w == 1) { /* at the border: each filter row's taps inside the input are one run of it */
        const tk_range cols = tk_taps_inside(x0, 1, s->k_w, s->in_w);
        const int before = cols.begin * in_c, run = (cols.end - cols.begin) * in_c;
        for (ky = ky0; ky < ky1; ++ky) {
            const int y = y0 + ky * s->dil_h;
            if (y >= 0 && y < s->in_h) {
                tk_patch_zero(patch, i, before, layout);
                tk_patch_copy(s, patch, i + before, image + (y * s->in_w + x0 + cols.begin) * in_c, run, layout);
                tk_patch_zero(patch, i + before + run, row_taps - before - run, layout);
            } else {
                tk_patch_zero(patch, i, row_taps, layout);
            }
            i += row_taps;
        }
        return;
    }
    for (ky = ky0; ky < ky1; ++ky) {
        const int y = y0 + ky * s->dil_h;
        for (kx = 0; kx < s->k_w; ++kx) {
            const int x = x0 + kx * s->dil_w;
            if (y >= 0 && y < s->in_h && x >= 0 && x < s->in_w) {
                tk_patch_copy(s, patch, i, image + (y * s->in_w + x) * in_c, in_c, layout);
            } else {
                tk_patch_zero(patch, i, in_c, layout);
            }
            i += in_c;
        }
    }
}

/* The whole filter's patch. */
static TK_ALWAYS_INLINE void tk_conv_patch(const tk_conv_shape *s, const int8_t *image, int y0, int x0,
                                           int16_t *patch, const int layout)
{
    tk_conv_patch_rows(s, image, y0, x0, 0, s->k_h, patch, layout);
}

/* The paired patch built tap by tap in order, then each group of four taps reordered; out of line: one
 * copy for both requantization paths. */
static TK_NOINLINE void tk_conv_patch_paired(const tk_conv_shape *s, const int8_t *image, int y0, int x0,
                                             int16_t *patch)
{
    int i;
    tk_conv_patch(s, image, y0, x0, patch, TK_IN_ORDER);
    for (i = 0; i + 4 <= s->filter; i += 4) {
        const uint32_t low = tk_read_pair(patch + i), high = tk_read_pair(patch + i + 2);
        tk_write_pair(patch + i, (low & 0xFFFFu) | (high << 16));
        tk_write_pair(patch + i + 2, (low >> 16) | (high & 0xFFFF0000u));
    }
}

/* A paired patch, four taps at a time (inline) or tap by tap (out of line). */
static TK_ALWAYS_INLINE void tk_conv_patch_of(const tk_conv_shape *s, const int8_t *image, int y0, int x0,
                                              int16_t *patch, const int layout)
{
    if (layout == TK_PAIRED) {
        tk_conv_patch_paired(s, image, y0, x0, patch);
    } else {
        tk_conv_patch(s, image, y0, x0, patch, layout);
    }
}

/* ---- one output pixel's channels [c0, c0 + n) ------------------------------------------------------ */

/* From the patch in tap order and the block's widened weights (pairs per channel, tap pairs). */
static TK_ALWAYS_INLINE void tk_conv_from_wide(const tk_conv_shape *s, const uint32_t *wide, const int16_t *patch,
                                               int8_t *out, int n, const tk_rq *rq, const int fast)
{
    const int pairs = (s->filter + 1) / 2;
    int c, j;
    for (c = 0; c + 1 < n; c += 2) {
        const uint32_t *w0 = wide + c * pairs, *w1 = w0 + pairs;
        int32_t sum0 = rq[c].bias, sum1 = rq[c + 1].bias;
        for (j = 0; j < pairs; ++j) {
            const uint32_t x = tk_read_pair(patch + 2 * j);
            sum0 = tk_dual_mac(w0[j], x, sum0);
            sum1 = tk_dual_mac(w1[j], x, sum1);
        }
        out[c] = tk_rq_output(&rq[c], sum0, fast, s->output_offset, s->act_min, s->act_max);
        out[c + 1] = tk_rq_output(&rq[c + 1], sum1, fast, s->output_offset, s->act_min, s->act_max);
    }
    if (c < n) {
        const uint32_t *w0 = wide + c * pairs;
        int32_t sum0 = rq[c].bias;
        for (j = 0; j < pairs; ++j) {
            sum0 = tk_dual_mac(w0[j], tk_read_pair(patch + 2 * j), sum0);
        }
        out[c] = tk_rq_output(&rq[c], sum0, fast, s->output_offset, s->act_min, s->act_max);
    }
}

/* Adds four taps of two channels' weights (at w and w + other) times the paired patches of `pixels` (1 or
 * 2) output pixels (at x and x + TK_CONV_SECOND) to their sums (acc: channel 0 and 1 of the first pixel,
 * then of the second): each word of weights is loaded and widened once for both pixels. */
static TK_ALWAYS_INLINE void tk_conv_step4(const int8_t *w, int other, const int16_t *x, int32_t acc[4],
                                           const int pixels)
{
    const uint32_t w0 = tk_read_quad(w), w1 = tk_read_quad(w + other);
    const uint32_t even0 = tk_even(w0), odd0 = tk_odd(w0), even1 = tk_even(w1), odd1 = tk_odd(w1);
    uint32_t even = tk_read_pair(x), odd = tk_read_pair(x + 2);
    acc[0] = tk_dual_mac(odd0, odd, tk_dual_mac(even0, even, acc[0]));
    acc[1] = tk_dual_mac(odd1, odd, tk_dual_mac(even1, even, acc[1]));
    if (pixels == 2) {
        even = tk_read_pair(x + TK_CONV_SECOND);
        odd = tk_read_pair(x + TK_CONV_SECOND + 2);
        acc[2] = tk_dual_mac(odd0, odd, tk_dual_mac(even0, even, acc[2]));
        acc[3] = tk_dual_mac(odd1, odd, tk_dual_mac(even1, even, acc[3]));
    }
}

/* From the paired patches of `pixels` (1 or 2) consecutive output pixels, the second's at patch +
 * TK_CONV_SECOND (with `tail` 0, the filter's taps are a multiple of 4). */
static TK_ALWAYS_INLINE void tk_conv_from_patch(const tk_conv_shape *s, const int8_t *weights, const int16_t *patch,
                                                int8_t *out, int c0, int n, const tk_rq *rq, const int fast,
                                                const int tail, const int pixels)
{
    const int filter = s->filter, out_c = s->out_c;
    int c;
    for (c = 0; c < n; c += 2) {
        /* an odd last channel runs its own weights twice and keeps one sum */
        const int other = c + 1 < n ? filter : 0;
        const int8_t *w = weights + (c0 + c) * filter;
        const int16_t *x = patch;
        int32_t acc[4];
        int32_t sum0, sum1, next0, next1;
        int k;
        acc[0] = acc[2] = rq[c].bias;
        acc[1] = acc[3] = other ? rq[c + 1].bias : 0;
        for (k = filter; k >= 4; k -= 4) {
            tk_conv_step4(w, other, x, acc, pixels);
            x += 4;
            w += 4;
        }
        sum0 = acc[0];
        sum1 = acc[1];
        next0 = acc[2];
        next1 = acc[3];
        for (; tail && k > 0; --k) {
            sum0 += (int32_t)w[0] * x[0];
            sum1 += (int32_t)w[other] * x[0];
            if (pixels == 2) {
                next0 += (int32_t)w[0] * x[TK_CONV_SECOND];
                next1 += (int32_t)w[other] * x[TK_CONV_SECOND];
            }
            ++x;
            ++w;
        }
        out[c] = tk_rq_output(&rq[c], sum0, fast, s->output_offset, s->act_min, s->act_max);
        if (other) {
            out[c + 1] = tk_rq_output(&rq[c + 1], sum1, fast, s->output_offset, s->act_min, s->act_max);
        }
        if (pixels == 2) {
            out[out_c + c] = tk_rq_output(&rq[c], next0, fast, s->output_offset, s->act_min, s->act_max);
            if (other) {
                out[out_c + c + 1] = tk_rq_output(&rq[c + 1], next1, fast, s->output_offset, s->act_min,
                                                  s->act_max);
            }
        }
    }
}

/* Two output pixels' sums of the block's channels [0, n) (sums: the first pixel's, then at TK_RQ_BLOCK
 * the second's), with taps [t0, t0 + count) of the filters (weights: the block's first channel's) times
 * those taps' paired patches added: to the sums, or with t0 = 0 to the biases. count a multiple of 4,
 * eight taps per step. */
static TK_ALWAYS_INLINE void tk_conv_accumulate(const tk_conv_shape *s, const int8_t *weights,
                                                const int16_t *patch, int t0, int count, int32_t *sums, int n,
                                                const tk_rq *rq)
{
    const int filter = s->filter;
    int c, k;
    for (c = 0; c < n; c += 2) {
        const int other = c + 1 < n ? filter : 0; /* an odd last channel runs its own weights twice */
        const int8_t *w = weights + c * filter + t0;
        const int16_t *x = patch;
        int32_t acc[4];
        if (t0 == 0) {
            acc[0] = acc[2] = rq[c].bias;
            acc[1] = acc[3] = other ? rq[c + 1].bias : 0;
        } else {
            acc[0] = sums[c];
            acc[1] = sums[c + 1];
            acc[2] = sums[TK_RQ_BLOCK + c];
            acc[3] = sums[TK_RQ_BLOCK + c + 1];
        }
        for (k = count; k >= 8; k -= 8) {
            tk_conv_step4(w, other, x, acc, 2);
            tk_conv_step4(w + 4, other, x + 4, acc, 2);
            x += 8;
            w += 8;
        }
        if (k > 0) {
            tk_conv_step4(w, other, x, acc, 2);
        }
        sums[c] = acc[0];
        sums[c + 1] = acc[1];
        sums[TK_RQ_BLOCK + c] = acc[2];
        sums[TK_RQ_BLOCK + c + 1] = acc[3];
    }
}

/* Two consecutive output pixels' channels [c0, c0 + n) from paired patches of `rows` filter rows at a
 * time (in_c a multiple of 4, rows * k_w * in_c at most TK_CONV_SECOND taps), the sums kept in an array
 * between row chunks and then requantized channel by channel. Every tap of both windows is read
 * before either pixel's outputs are written. */
static TK_ALWAYS_INLINE void tk_conv_pair(const tk_conv_shape *s, const int8_t *weights, const int8_t *image,
                                          int y0, int x0, int y1, int x1, int8_t *out, int c0, int n,
                                          const tk_rq *rq, int16_t *patch, int rows, const int fast)
{
    int32_t sums[2 * TK_RQ_BLOCK];
    const int row_taps = s->k_w * s->in_c, out_c = s->out_c;
    const int32_t output_offset = s->output_offset, act_min = s->act_min, act_max = s->act_max;
    int c, ky;
    for (ky = 0; ky < s->k_h; ky += rows) {
        const int ky1 = ky + rows < s->k_h ? ky + rows : s->k_h;
        tk_conv_patch_rows(s, image, y0, x0, ky, ky1, patch, TK_PAIRED_QUADS);
        tk_conv_patch_rows(s, image, y1, x1, ky, ky1, patch + TK_CONV_SECOND, TK_PAIRED_QUADS);
        tk_conv_accumulate(s, weights + c0 * s->filter, patch, ky * row_taps, (ky1 - ky) * row_taps, sums, n,
                           rq);
    }
    for (c = 0; c < n; ++c) {
        out[c] = tk_rq_output(&rq[c], sums[c], fast, output_offset, act_min, act_max);
        out[out_c + c] = tk_rq_output(&rq[c], sums[TK_RQ_BLOCK + c], fast, output_offset, act_min, act_max);
    }
}

/* Straight from the input, a run of contiguous taps at a time. */
static TK_ALWAYS_INLINE void tk_conv_from_input(const tk_conv_shape *s, const int8_t *weights, const int8_t *image,
                                                int y0, int x0, int8_t *out, int c0, int n, const tk_rq *rq,
                                                const int fast)
{
    const int in_w = s->in_w, in_c = s->in_c, k_w = s->k_w;
    const int filter_row = k_w * in_c, filter = s->filter;
    const int32_t input_offset = s->input_offset;
    const tk_range rows = tk_taps_inside(y0, s->dil_h, s->k_h, s->in_h);
    const tk_range cols = tk_taps_inside(x0, s->dil_w, k_w, in_w);
    int c, ky, kx;
    for (c = 0; c < n; c += 2) {
        const int other = c + 1 < n ? filter : 0;
        const int8_t *w = weights + (c0 + c) * filter;
        int32_t acc0 = rq[c].bias, acc1 = other ? rq[c + 1].bias : 0;
        for (ky = rows.begin; ky < rows.end; ++ky) {
            const int8_t *row = image + (y0 + ky * s->dil_h) * in_w * in_c;
            if (s->dil_w == 1) { /* the taps inside are one run */
                if (cols.end > cols.begin) {
                    tk_dot2(row + (x0 + cols.begin) * in_c, w + ky * filter_row + cols.begin * in_c, other,
                            (cols.end - cols.begin) * in_c, input_offset, &acc0, &acc1);
                }
                continue;
            }
            for (kx = cols.begin; kx < cols.end; ++kx) {
                tk_dot2(row + (x0 + kx * s->dil_w) * in_c, w + ky * filter_row + kx * in_c, other, in_c,
                        input_offset, &acc0, &acc1);
            }
        }
        out[c] = tk_rq_output(&rq[c], acc0, fast, s->output_offset, s->act_min, s->act_max);
        if (other) {
            out[c + 1] = tk_rq_output(&rq[c + 1], acc1, fast, s->output_offset, s->act_min, s->act_max);
        }
    }
}

/* ---- a block of channels along one path --------------------------------------------------------- */

enum { TK_PATH_WIDE, TK_PATH_QUADS, TK_PATH_GENERAL };

/* Where output pixel i of an image has its filter's top-left tap. */
static inline void tk_conv_origin(const tk_conv_shape *s, int i, int *y0, int *x0)
{
    *y0 = i / s->out_w * s->stride_h - s->pad_h;
    *x0 = i % s->out_w * s->stride_w - s->pad_w;
}

/* Every output pixel's channels [c0, c0 + n). The paired patch paths take two pixels at a time: both
 * windows are read before either pixel's outputs are written. */
static TK_ALWAYS_INLINE void tk_conv_pixels(const tk_conv_shape *s, int batches, const int8_t *weights,
                                            const uint32_t *wide, const int8_t *input, int8_t *output, int c0,
                                            int n, const tk_rq *rq, int16_t *patch, const int path,
                                            const int fast)
{
    const int use_patch = s->filter <= TK_CONV_PATCH, pairs = s->filter <= TK_CONV_SECOND;
    const int rows = TK_CONV_SECOND / (s->k_w * s->in_c); /* filter rows per chunk on the quads path */
    const int pixels = s->out_h * s->out_w;
    const int layout = path == TK_PATH_QUADS ? TK_PAIRED_QUADS : TK_PAIRED, tail = path != TK_PATH_QUADS;
    int b, i, y0, x0, y1, x1;
    int8_t *out = output + c0;
    for (b = 0; b < batches; ++b) {
        const int8_t *image = input + b * s->in_h * s->in_w * s->in_c;
        for (i = 0; i < pixels; ++i) {
            tk_conv_origin(s, i, &y0, &x0);
            if (path == TK_PATH_WIDE) {
                tk_conv_patch(s, image, y0, x0, patch, TK_IN_ORDER);
                tk_conv_from_wide(s, wide, patch, out, n, rq, fast);
            } else if (path == TK_PATH_QUADS && rows > 0 && i + 1 < pixels) {
                tk_conv_origin(s, i + 1, &y1, &x1);
                tk_conv_pair(s, weights, image, y0, x0, y1, x1, out, c0, n, rq, patch, rows, fast);
                out += s->out_c;
                ++i;
            } else if (pairs && i + 1 < pixels) {
                tk_conv_origin(s, i + 1, &y1, &x1);
                tk_conv_patch_of(s, image, y0, x0, patch, layout);
                tk_conv_patch_of(s, image, y1, x1, patch + TK_CONV_SECOND, layout);
                tk_conv_from_patch(s, weights, patch, out, c0, n, rq, fast, tail, 2);
                out += s->out_c;
                ++i;
            } else if (use_patch) {
                tk_conv_patch_of(s, image, y0, x0, patch, layout);
                tk_conv_from_patch(s, weights, patch, out, c0, n, rq, fast, tail, 1);
            } else {
                tk_conv_from_input(s, weights, image, y0, x0, out, c0, n, rq, fast);
            }
            out += s->out_c;
        }
    }
}

/* The block's requantization table, then its pixels, on the table's fast path if it allows. */
static TK_ALWAYS_INLINE void tk_conv_block(const tk_conv_params *p, const tk_conv_shape *s, const uint32_t *wide,
                                           const int8_t *input, int8_t *output, int c0, int n, int16_t *patch,
                                           const int path)
{
    tk_rq rq[TK_RQ_BLOCK];
    if (tk_rq_table(rq, p->bias, p->multiplier, p->shift, c0, n, s->filter, s->output_offset)) {
        tk_conv_pixels(s, p->batches, p->weights, wide, input, output, c0, n, rq, patch, path, 1);
    } else {
        tk_conv_pixels(s, p->batches, p->weights, wide, input, output, c0, n, rq, patch, path, 0);
    }
}

/* One function per path, so that each path's stack is its own. */
static TK_NOINLINE void tk_conv_wide(const tk_conv_params *p, const tk_conv_shape *s, const int8_t *input,
                                     int8_t *output, int c0, int n)
{
    uint32_t wide[TK_CONV_WIDE];
    int16_t patch[TK_CONV_WIDE_TAPS + 2];
    const int filter = s->filter, pairs = (filter + 1) / 2;
    int c, j;
    for (c = 0; c < n; ++c) {
        const int8_t *w = p->weights + (c0 + c) * filter;
        for (j = 0; j < pairs; ++j) {
            const int32_t low = w[2 * j], high = 2 * j + 1 < filter ? w[2 * j + 1] : 0;
            wide[c * pairs + j] = ((uint32_t)low & 0xFFFFu) | ((uint32_t)high << 16);
        }
    }
    patch[filter] = 0; /* the odd tap's partner: its weight is 0 too */
    tk_conv_block(p, s, wide, input, output, c0, n, patch, TK_PATH_WIDE);
}

static TK_NOINLINE void tk_conv_quads(const tk_conv_params *p, const tk_conv_shape *s, const int8_t *input,
                                      int8_t *output, int c0, int n)
{
    int16_t patch[TK_CONV_PATCH];
    tk_conv_block(p, s, NULL, input, output, c0, n, patch, TK_PATH_QUADS);
}

static TK_NOINLINE void tk_conv_general(const tk_conv_params *p, const tk_conv_shape *s, const int8_t *input,
                                        int8_t *output, int c0, int n)
{
    int16_t patch[TK_CONV_PATCH];
    tk_conv_block(p, s, NULL, input, output, c0, n, patch, TK_PATH_GENERAL);
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
        } else if (s.in_c % 4 == 0 && (s.filter <= TK_CONV_PATCH || s.k_w * s.in_c <= TK_CONV_SECOND)) {
            tk_conv_quads(p, &s, input, output, c0, n);
        } else {
            tk_conv_general(p, &s, input, output, c0, n);
        }
    }
}

#endif /* TK_KERNELS == TK_KERNELS_DSP */
