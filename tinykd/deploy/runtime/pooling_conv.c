/* A convolution (CONV_2D or DEPTHWISE_CONV_2D) and the pooling (MAX_POOL_2D or AVERAGE_POOL_2D) that
 * alone reads its output, without that whole output: for each row of the pooling's output, the
 * convolution computes the rows its window reads that the band does not hold yet (rows the previous
 * window shared move to the band's top), then the pooling runs over the band. Both are the layers' own
 * kernels on a slice of rows, so every byte is what they compute apart. Batch 1.
 * (tinykd/deploy/cbackend/fuse.py decides where; the band has room for the tallest window.) */
#include <stdint.h>
#include <string.h>

#include "tinykd_runtime.h" /* first: the declarations below use the two kernels' parameter structs */

#ifndef TK_CONV_POOL_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_CONV_POOL_DECLARATIONS

typedef void (*tk_conv_kernel)(const tk_conv_params *p, const int8_t *input, int8_t *output);
typedef void (*tk_pool_kernel)(const tk_pool_params *p, const int8_t *input, int8_t *output);

/* The layer `conv` (run by `convolve`) of `input`, then the layer `pool` (run by `reduce`) into
 * `output`, with `band` as the convolution's output rows. */
void tk_conv_pool(const tk_conv_params *conv, tk_conv_kernel convolve, const tk_pool_params *pool,
                  tk_pool_kernel reduce, const int8_t *input, int8_t *band, int8_t *output);

#endif /* TK_CONV_POOL_DECLARATIONS */

/* The convolution's output rows [first, end) into `out`: the same layer over the input rows they read. */
static void conv_rows(const tk_conv_params *conv, tk_conv_kernel convolve, const int8_t *input, int first,
                      int end, int8_t *out)
{
    tk_conv_params rows = *conv;
    const int top = first * conv->stride_h - conv->pad_h; /* the first input row the slice reads */
    rows.out_h = end - first;
    if (top > 0) {
        rows.in_h = conv->in_h - top;
        rows.pad_h = 0;
        input += top * conv->in_w * conv->in_c;
    } else {
        rows.pad_h = -top;
    }
    convolve(&rows, input, out);
}

void tk_conv_pool(const tk_conv_params *conv, tk_conv_kernel convolve, const tk_pool_params *pool,
                  tk_pool_kernel reduce, const int8_t *input, int8_t *band, int8_t *output)
{
    const int row_bytes = conv->out_w * conv->out_c;
    tk_pool_params one = *pool;
    int begin = 0, end = 0; /* the band holds the convolution's rows [begin, end) */
    int oy;
    one.out_h = 1;
    one.pad_h = 0; /* the band holds exactly the rows a window reads */
    for (oy = 0; oy < pool->out_h; ++oy) {
        const int y0 = oy * pool->stride_h - pool->pad_h;
        const tk_range taps = tk_taps_inside(y0, 1, pool->k_h, pool->in_h);
        const int first = y0 + taps.begin, last = y0 + taps.end; /* the rows this window reads */
        int kept = 0;
        if (first >= begin && first < end) {
            kept = (end < last ? end : last) - first;
            memmove(band, band + (first - begin) * row_bytes, (size_t)(kept * row_bytes));
        }
        if (first + kept < last) {
            conv_rows(conv, convolve, input, first + kept, last, band + kept * row_bytes);
        }
        begin = first;
        end = last;
        one.in_h = last - first;
        reduce(&one, band, output + oy * pool->out_w * pool->channels);
    }
}
