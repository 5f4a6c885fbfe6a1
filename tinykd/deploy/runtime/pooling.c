/* MAX_POOL_2D and AVERAGE_POOL_2D over the window's part inside the input. */
#include "tinykd_runtime.h"

typedef int32_t (*pool_window)(const tk_pool_params *p, const int8_t *input, int b, int y0, int x0, int c);

static int32_t window_max(const tk_pool_params *p, const int8_t *input, int b, int y0, int x0, int c)
{
    int32_t best = INT8_MIN;
    int y, x;
    for (y = y0 < 0 ? 0 : y0; y < y0 + p->k_h && y < p->in_h; ++y) {
        for (x = x0 < 0 ? 0 : x0; x < x0 + p->k_w && x < p->in_w; ++x) {
            const int32_t value = input[((b * p->in_h + y) * p->in_w + x) * p->channels + c];
            best = value > best ? value : best;
        }
    }
    return best;
}

static int32_t window_average(const tk_pool_params *p, const int8_t *input, int b, int y0, int x0, int c)
{
    int32_t sum = 0;
    int32_t count = 0;
    int y, x;
    for (y = y0 < 0 ? 0 : y0; y < y0 + p->k_h && y < p->in_h; ++y) {
        for (x = x0 < 0 ? 0 : x0; x < x0 + p->k_w && x < p->in_w; ++x) {
            sum += input[((b * p->in_h + y) * p->in_w + x) * p->channels + c];
            ++count;
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
            for (ox = 0; ox < p->out_w; ++ox) {
                const int y0 = oy * p->stride_h - p->pad_h;
                const int x0 = ox * p->stride_w - p->pad_w;
                for (c = 0; c < p->channels; ++c) {
                    output[((b * p->out_h + oy) * p->out_w + ox) * p->channels + c] =
                        (int8_t)tk_clamp(window(p, input, b, y0, x0, c), p->act_min, p->act_max);
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
