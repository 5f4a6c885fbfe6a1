/* DEPTHWISE_CONV_2D for cores with the DSP extension: the same sums and requantization as
 * depthwise_conv.c, reordered.
 *
 * With a depth multiplier of 1, four channels at a time: per tap one word of four inputs and one of
 * four weights (the 1HWO filter keeps a tap's channels contiguous), widened into 16-bit halves (the
 * input offset added on the way) and multiplied half by half into four sums. Where the whole filter
 * fits in TK_DEPTHWISE_WIDE taps (k_h * k_w * channels), its weights are widened once per call into a
 * table that keeps each group of four channels' taps together, two words per tap, so that the loop over
 * a pixel's taps reads them at fixed offsets (and a 3-wide filter's rows are unrolled). Other channels, and every
 * channel with a depth multiplier above 1, go through the taps one by one. The taps inside the input
 * are found once per output pixel, so the padding border needs no test inside the loops. The
 * parameters are copied to a local (writing the output could alias *p as far as the compiler knows).
 * With at most TK_DEPTHWISE_TABLE channels, all on the fast requantization path, the requantization
 * constants are worked out once per call (tk_rq, 16 bytes of stack per channel); otherwise per output.
 * Each output pixel's channels are written after its taps are read, pixel after pixel, as in the
 * portable kernel.
 */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_DSP

#include "tinykd_dsp.h"

#ifndef TK_DEPTHWISE_TABLE
#define TK_DEPTHWISE_TABLE 64
#endif
#ifndef TK_DEPTHWISE_WIDE
#define TK_DEPTHWISE_WIDE 576 /* taps of widened weights: 1152 bytes of stack */
#endif

/* Output channel c's int8 from its sum: on the table's fast path, or from the per-channel arrays. */
static TK_ALWAYS_INLINE int8_t tk_depthwise_output(const tk_conv_params *p, const tk_rq *rq, int32_t acc, int c,
                                                   const int fast)
{
    if (fast) {
        return tk_rq_output(&rq[c], acc, 1, p->output_offset, p->act_min, p->act_max);
    }
    return tk_requantize_dsp(acc, p->multiplier[c], p->shift[c], p->output_offset, p->act_min, p->act_max);
}

/* Adds one tap to the sums of four channels (acc: channels 0, 2, 1, 3 of the word), x and w at the tap's
 * four inputs and weights. */
static TK_ALWAYS_INLINE void tk_depthwise_tap(const int8_t *x, const int8_t *w, uint32_t offset2, int32_t acc[4])
{
    const uint32_t xq = tk_read_quad(x), wq = tk_read_quad(w);
    const uint32_t xe = tk_add_even(offset2, xq), xo = tk_add_odd(offset2, xq);
    const uint32_t we = tk_even(wq), wo = tk_odd(wq);
    acc[0] = tk_mac_low(xe, we, acc[0]);
    acc[1] = tk_mac_high(xe, we, acc[1]);
    acc[2] = tk_mac_low(xo, wo, acc[2]);
    acc[3] = tk_mac_high(xo, wo, acc[3]);
}

/* The same from the four weights widened beforehand (w[0] = channels 0 and 2, w[1] = 1 and 3). */
static TK_ALWAYS_INLINE void tk_depthwise_tap_wide(const int8_t *x, const uint32_t *w, uint32_t offset2,
                                                   int32_t acc[4])
{
    const uint32_t xq = tk_read_quad(x);
    const uint32_t xe = tk_add_even(offset2, xq), xo = tk_add_odd(offset2, xq);
    acc[0] = tk_mac_low(xe, w[0], acc[0]);
    acc[1] = tk_mac_high(xe, w[0], acc[1]);
    acc[2] = tk_mac_low(xo, w[1], acc[2]);
    acc[3] = tk_mac_high(xo, w[1], acc[3]);
}

/* The nine taps of a 3x3 filter inside the input, for four channels: out of line, so that its
 * sums, pointers and steps stay in registers. */
static TK_NOINLINE void tk_depthwise_3x3(const int8_t *x, const uint32_t *w, int tap_step, int row_step,
                                         uint32_t offset2, int32_t sums[4])
{
    int32_t acc[4];
    acc[0] = sums[0];
    acc[1] = sums[1];
    acc[2] = sums[2];
    acc[3] = sums[3];
    tk_depthwise_tap_wide(x, w, offset2, acc);
    tk_depthwise_tap_wide(x + tap_step, w + 2, offset2, acc);
    tk_depthwise_tap_wide(x + 2 * tap_step, w + 4, offset2, acc);
    x += row_step;
    tk_depthwise_tap_wide(x, w + 6, offset2, acc);
    tk_depthwise_tap_wide(x + tap_step, w + 8, offset2, acc);
    tk_depthwise_tap_wide(x + 2 * tap_step, w + 10, offset2, acc);
    x += row_step;
    tk_depthwise_tap_wide(x, w + 12, offset2, acc);
    tk_depthwise_tap_wide(x + tap_step, w + 14, offset2, acc);
    tk_depthwise_tap_wide(x + 2 * tap_step, w + 16, offset2, acc);
    sums[0] = acc[0];
    sums[1] = acc[1];
    sums[2] = acc[2];
    sums[3] = acc[3];
}

/* Channel c's bias, or 0. */
static TK_ALWAYS_INLINE int32_t tk_depthwise_bias(const tk_conv_params *p, int c)
{
    return p->bias ? p->bias[c] : 0;
}

/* Requantizes and writes the four sums of channels c.. c + 3 (held in the order 0, 2, 1, 3). */
static TK_ALWAYS_INLINE void tk_depthwise_quad_output(const tk_conv_params *p, const tk_rq *rq, const int32_t acc[4],
                                                      int8_t *out, int c, const int fast)
{
    out[c] = tk_depthwise_output(p, rq, acc[0], c, fast);
    out[c + 1] = tk_depthwise_output(p, rq, acc[2], c + 1, fast);
    out[c + 2] = tk_depthwise_output(p, rq, acc[1], c + 2, fast);
    out[c + 3] = tk_depthwise_output(p, rq, acc[3], c + 3, fast);
}

/* An output pixel's window: the filter's rows and columns that fall inside the input, and where in the
 * image its first tap inside lies. */
typedef struct {
    tk_range rows, cols;
    int first;
} tk_window;

static inline tk_window tk_depthwise_window(const tk_conv_params *p, int oy, int ox)
{
    tk_window win;
    const int y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
    win.rows = tk_taps_inside(y0, p->dilation_h, p->k_h, p->in_h);
    win.cols = tk_taps_inside(x0, p->dilation_w, p->k_w, p->in_w);
    win.first = ((y0 + win.rows.begin * p->dilation_h) * p->in_w + x0 + win.cols.begin * p->dilation_w) * p->in_c;
    return win;
}

/* Every output pixel, all its channels (`fast`, a constant at each call: requantize from the table). */
static TK_ALWAYS_INLINE void tk_depthwise_pixels(const tk_conv_params *p, const tk_rq *rq, const int8_t *input,
                                                 int8_t *output, const int fast)
{
    const uint32_t offset2 = tk_pair(p->input_offset);
    const int in_row = p->in_w * p->in_c, tap_step = p->dilation_w * p->in_c;
    const int row_step = p->dilation_h * in_row, filter_row = p->k_w * p->out_c;
    const int wide = p->depth_multiplier == 1 ? p->in_c / 4 * 4 : 0; /* channels done four at a time */
    int b, oy, ox, c, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const tk_window win = tk_depthwise_window(p, oy, ox);
                const tk_range rows = win.rows, cols = win.cols;
                const int taps = cols.end - cols.begin;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                for (c = 0; c < wide; c += 4) {
                    int32_t acc[4] = {0, 0, 0, 0}; /* channels c, c + 2, c + 1, c + 3 */
                    const int8_t *x = image + win.first + c;
                    const int8_t *w = p->weights + (rows.begin * p->k_w + cols.begin) * p->out_c + c;
                    for (ky = rows.begin; ky < rows.end; ++ky) {
                        for (kx = 0; kx < taps; ++kx) {
                            tk_depthwise_tap(x + kx * tap_step, w + kx * p->out_c, offset2, acc);
                        }
                        x += row_step;
                        w += filter_row;
                    }
                    acc[0] += tk_depthwise_bias(p, c);
                    acc[1] += tk_depthwise_bias(p, c + 2);
                    acc[2] += tk_depthwise_bias(p, c + 1);
                    acc[3] += tk_depthwise_bias(p, c + 3);
                    tk_depthwise_quad_output(p, rq, acc, out, c, fast);
                }
                for (c = wide; c < p->out_c; ++c) { /* output channel c reads input channel c / multiplier */
                    const int ic = c / p->depth_multiplier;
                    int32_t acc = p->bias ? p->bias[c] : 0;
                    for (ky = rows.begin; ky < rows.end; ++ky) {
                        const int8_t *x = image + win.first + (ky - rows.begin) * row_step + ic;
                        const int8_t *w = p->weights + (ky * p->k_w + cols.begin) * p->out_c + c;
                        for (kx = cols.begin; kx < cols.end; ++kx) {
                            acc += (int32_t)*w * ((int32_t)*x + p->input_offset);
                            x += tap_step;
                            w += p->out_c;
                        }
                    }
                    out[c] = tk_depthwise_output(p, rq, acc, c, fast);
                }
            }
        }
    }
}

/* Every output pixel with a depth multiplier of 1 and channels a multiple of 4, from the widened weights
 * (`wide`: per group of four channels, per tap, the even and the odd pair). */
static TK_ALWAYS_INLINE void tk_depthwise_pixels_wide(const tk_conv_params *p, const tk_rq *rq, const uint32_t *wide,
                                                      const int8_t *input, int8_t *output, const int fast)
{
    const uint32_t offset2 = tk_pair(p->input_offset);
    const int channels = p->out_c, in_row = p->in_w * channels, tap_step = p->dilation_w * channels;
    const int row_step = p->dilation_h * in_row, group = 2 * p->k_h * p->k_w;
    int b, oy, ox, c, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const tk_window win = tk_depthwise_window(p, oy, ox);
                const tk_range rows = win.rows, cols = win.cols;
                const int taps = cols.end - cols.begin;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * channels;
                const int8_t *x_first = image + win.first;
                const uint32_t *w_first = wide + 2 * (rows.begin * p->k_w + cols.begin);
                for (c = 0; c < channels; c += 4) {
                    int32_t acc[4]; /* channels c, c + 2, c + 1, c + 3 */
                    const int8_t *x = x_first + c;
                    const uint32_t *w = w_first + c / 4 * group;
                    acc[0] = tk_depthwise_bias(p, c);
                    acc[1] = tk_depthwise_bias(p, c + 2);
                    acc[2] = tk_depthwise_bias(p, c + 1);
                    acc[3] = tk_depthwise_bias(p, c + 3);
                    if (taps == 3 && rows.end - rows.begin == 3 && p->k_w == 3 && p->k_h == 3) {
                        tk_depthwise_3x3(x, w, tap_step, row_step, offset2, acc);
                    } else {
                        for (ky = rows.begin; ky < rows.end; ++ky) {
                            for (kx = 0; kx < taps; ++kx) {
                                tk_depthwise_tap_wide(x + kx * tap_step, w + 2 * kx, offset2, acc);
                            }
                            x += row_step;
                            w += 2 * p->k_w;
                        }
                    }
                    tk_depthwise_quad_output(p, rq, acc, out, c, fast);
                }
            }
        }
    }
}

/* The widened weights' table, then every pixel from it. */
static TK_NOINLINE void tk_depthwise_wide(const tk_conv_params *p, const tk_rq *rq, const int8_t *input,
                                          int8_t *output, const int fast)
{
    uint32_t wide[TK_DEPTHWISE_WIDE / 2];
    const int taps = p->k_h * p->k_w;
    uint32_t *entry = wide;
    int c, t;
    for (c = 0; c < p->out_c; c += 4) {
        for (t = 0; t < taps; ++t) {
            const uint32_t wq = tk_read_quad(p->weights + t * p->out_c + c);
            *entry++ = tk_even(wq);
            *entry++ = tk_odd(wq);
        }
    }
    if (fast) {
        tk_depthwise_pixels_wide(p, rq, wide, input, output, 1);
    } else {
        tk_depthwise_pixels_wide(p, rq, wide, input, output, 0);
    }
}

void tk_depthwise_conv_2d(const tk_conv_params *params, const int8_t *input, int8_t *output)
{
    const tk_conv_params p = *params;
    tk_rq rq[TK_DEPTHWISE_TABLE]; /* its bias unused: the sums start from p.bias */
    const int fast = p.out_c <= TK_DEPTHWISE_TABLE &&
                     tk_rq_table(rq, p.bias, p.multiplier, p.shift, 0, p.out_c, p.k_h * p.k_w, p.output_offset);
    if (p.depth_multiplier == 1 && p.in_c % 4 == 0 && p.k_h * p.k_w * p.out_c <= TK_DEPTHWISE_WIDE) {
        tk_depthwise_wide(&p, rq, input, output, fast);
    } else if (fast) {
        tk_depthwise_pixels(&p, rq, input, output, 1);
    } else {
        tk_depthwise_pixels(&p, rq, input, output, 0);
    }
}

#endif /* TK_KERNELS == TK_KERNELS_DSP */
