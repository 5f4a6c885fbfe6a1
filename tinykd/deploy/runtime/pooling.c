/* MAX_POOL_2D and AVERAGE_POOL_2D over the window's part inside the input. */
#include <stdint.h>

#ifndef TK_POOLING_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_POOLING_DECLARATIONS

/* MAX_POOL_2D and AVERAGE_POOL_2D (same input and output quantization). */
typedef struct {
    int batches, in_h, in_w, channels, out_h, out_w;
    int k_h, k_w, stride_h, stride_w, pad_h, pad_w;
    int32_t act_min, act_max;
} tk_pool_params;

void tk_max_pool_2d(const tk_pool_params *p, const int8_t *input, int8_t *output);
void tk_average_pool_2d(const tk_pool_params *p, const int8_t *input, int8_t *output);

#endif /* TK_POOLING_DECLARATIONS */

#include "tinykd_runtime.h"

/* One channel of a window's part inside the input, `rows` by `cols` pixels from input[first] (that
 * channel of the part's first pixel): its maximum or its rounded average. */
typedef int32_t (*pool_window)(const tk_pool_params *p, const int8_t *input, int first, int rows, int cols);

static int32_t window_max(const tk_pool_params *p, const int8_t *input, int first, int rows, int cols)
{
    int32_t best = INT8_MIN;
    int y, x;
    for (y = 0; y < rows; ++y) {
        for (x = 0; x < cols; ++x) {
            const int32_t value = input[first + (y * p->in_w + x) * p->channels];
            best = value > best ? value : best;
        }
    }
    return best;
}

static int32_t window_average(const tk_pool_params *p, const int8_t *input, int first, int rows, int cols)
{
    const int32_t count = rows * cols;
    int32_t sum = 0;
    int y, x;
    for (y = 0; y < rows; ++y) {
        for (x = 0; x < cols; ++x) {
            sum += input[first + (y * p->in_w + x) * p->channels];
        }
    }
    if (count == 0) {
        return 0;
    }
    /* round half away from zero */
    return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

static void pool(const tk_pool_params *p, const int8_t *input, int8_t *output, pool_window window)
{
    int b, oy, ox, c;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int y0 = oy * p->stride_h - p->pad_h;
            const tk_range rows = tk_taps_inside(y0, 1, p->k_h, p->in_h);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int x0 = ox * p->stride_w - p->pad_w;
                const tk_range cols = tk_taps_inside(x0, 1, p->k_w, p->in_w);
                const int first = ((b * p->in_h + y0 + rows.begin) * p->in_w + x0 + cols.begin) * p->channels;
                const int height = rows.end - rows.begin, width = cols.end - cols.begin;
                for (c = 0; c < p->channels; ++c) {
                    output[((b * p->out_h + oy) * p->out_w + ox) * p->channels + c] =
                        (int8_t)tk_clamp(window(p, input, first + c, height, width), p->act_min, p->act_max);
                }
            }
        }
    }
}

void tk_max_pool_2d(const tk_pool_params *p, const int8_t *input, int8_t *output)
{
    pool(p, input, output, window_max);
}

void tk_average_pool_2d(const tk_pool_params *p, const int8_t *input, int8_t *output)
{
    pool(p, input, output, window_average);
}
