/* tinykd C backend runtime: int8 kernels whose integer arithmetic follows the TFLite reference kernels
 * as TFLM runs them, so outputs are byte-for-byte equal to TFLM's.
 *
 * Plain C99, no dynamic memory. Tensors are NHWC int8 in a caller-owned arena; every layer's
 * parameters (shapes, zero points, requantization multipliers and shifts) are computed on the host
 * by tinykd and passed as one const struct per layer.
 */
#ifndef TINYKD_RUNTIME_H_
#define TINYKD_RUNTIME_H_

#include <stdint.h>

#include "tinykd_kernels.h"

/* ---- Fixed-point helpers (gemmlowp semantics, double rounding) ---------------------------------- */

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

/* ---- Kernels ------------------------------------------------------------------------------------ */

/* CONV_2D and DEPTHWISE_CONV_2D (NHWC input, OHWI / 1HWO filter, per-channel requantization). */
typedef struct {
    int batches, in_h, in_w, in_c, out_h, out_w, out_c;
    int k_h, k_w, stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
    int depth_multiplier; /* depthwise only */
    int32_t input_offset, output_offset, act_min, act_max;
    const int8_t *weights;
    const int32_t *bias; /* may be NULL */
    const int32_t *multiplier, *shift; /* one per output channel */
} tk_conv_params;

void tk_conv_2d(const tk_conv_params *p, const int8_t *input, int8_t *output);
void tk_depthwise_conv_2d(const tk_conv_params *p, const int8_t *input, int8_t *output);

/* The reference loop of DEPTHWISE_CONV_2D, shared by the portable kernel and the variants' fallbacks
 * (a depth multiplier other than 1). */
static inline void tk_depthwise_conv_2d_reference(const tk_conv_params *p, const int8_t *input, int8_t *output)
{
    int b, oy, ox, ic, m, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const int y0 = oy * p->stride_h - p->pad_h;
                const int x0 = ox * p->stride_w - p->pad_w;
                for (ic = 0; ic < p->in_c; ++ic) {
                    for (m = 0; m < p->depth_multiplier; ++m) {
                        const int oc = ic * p->depth_multiplier + m;
                        int32_t acc = 0;
                        for (ky = 0; ky < p->k_h; ++ky) {
                            const int y = y0 + ky * p->dilation_h;
                            if (y < 0 || y >= p->in_h) {
                                continue;
                            }
                            for (kx = 0; kx < p->k_w; ++kx) {
                                const int x = x0 + kx * p->dilation_w;
                                int32_t value;
                                if (x < 0 || x >= p->in_w) {
                                    continue;
                                }
                                value = input[((b * p->in_h + y) * p->in_w + x) * p->in_c + ic];
                                acc += (int32_t)p->weights[(ky * p->k_w + kx) * p->out_c + oc] *
                                       (value + p->input_offset);
                            }
                        }
                        if (p->bias) {
                            acc += p->bias[oc];
                        }
                        output[((b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] = tk_requantize(
                            acc, p->multiplier, p->shift, oc, p->output_offset, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

/* FULLY_CONNECTED (weights [out_depth][accum_depth]). */
typedef struct {
    int batches, accum_depth, out_depth;
    int32_t input_offset, output_offset, act_min, act_max;
    const int8_t *weights;
    const int32_t *bias; /* may be NULL */
    const int32_t *multiplier, *shift; /* one per output unit */
} tk_fully_connected_params;

void tk_fully_connected(const tk_fully_connected_params *p, const int8_t *input, int8_t *output);

/* MAX_POOL_2D and AVERAGE_POOL_2D (same input and output quantization). */
typedef struct {
    int batches, in_h, in_w, channels, out_h, out_w;
    int k_h, k_w, stride_h, stride_w, pad_h, pad_w;
    int32_t act_min, act_max;
} tk_pool_params;

void tk_max_pool_2d(const tk_pool_params *p, const int8_t *input, int8_t *output);
void tk_average_pool_2d(const tk_pool_params *p, const int8_t *input, int8_t *output);

/* MEAN over the axes flagged in `reduce` of a (padded to) 4-D input. */
typedef struct {
    int dims[4];
    int reduce[4];
    int32_t count; /* elements averaged into each output */
    int32_t input_zero_point, output_zero_point, multiplier, shift;
} tk_mean_params;

void tk_mean(const tk_mean_params *p, const int8_t *input, int8_t *output);

/* SOFTMAX over the last axis; output scale 1/256, zero point -128. */
typedef struct {
    int rows, depth;
    int32_t input_multiplier;
    int input_left_shift;
    int32_t diff_min;
} tk_softmax_params;

void tk_softmax(const tk_softmax_params *p, const int8_t *input, int8_t *output);

/* Element-wise binary ops over a 4-D output; a stride of 0 broadcasts an input along that axis. */
typedef struct {
    int dims[4];
    int strides1[4], strides2[4];
    int32_t input1_offset, input2_offset, output_offset;
    int32_t input1_multiplier, input2_multiplier, output_multiplier;
    int input1_shift, input2_shift, output_shift, left_shift;
    int32_t act_min, act_max;
} tk_add_params;

void tk_add(const tk_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);

typedef struct {
    int dims[4];
    int strides1[4], strides2[4];
    int32_t input1_offset, input2_offset, output_offset, multiplier;
    int shift;
    int32_t act_min, act_max;
} tk_mul_params;

void tk_mul(const tk_mul_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);

/* CONCATENATION of inputs with the output's quantization: `outer` blocks of each input's row. */
typedef struct {
    int count, outer;
    const int *row_bytes; /* one per input */
} tk_concatenation_params;

void tk_concatenation(const tk_concatenation_params *p, const int8_t *const *inputs, int8_t *output);

/* PAD of a (padded to) 4-D tensor with a constant. */
typedef struct {
    int in_dims[4], out_dims[4], before[4];
    int8_t value;
} tk_pad_params;

void tk_pad(const tk_pad_params *p, const int8_t *input, int8_t *output);

/* LOGISTIC; output scale 1/256, zero point -128. */
typedef struct {
    int size;
    int32_t input_zero_point, input_multiplier, input_range_radius;
    int input_left_shift;
} tk_logistic_params;

void tk_logistic(const tk_logistic_params *p, const int8_t *input, int8_t *output);

/* HARD_SWISH with 16-bit multipliers. */
typedef struct {
    int size;
    int16_t input_zero_point, output_zero_point;
    int16_t output_multiplier, reluish_multiplier;
    int output_exponent, reluish_exponent;
} tk_hard_swish_params;

void tk_hard_swish(const tk_hard_swish_params *p, const int8_t *input, int8_t *output);

/* QUANTIZE int8 -> int8 (requantization). */
typedef struct {
    int size;
    int32_t input_zero_point, output_zero_point, multiplier;
    int shift;
} tk_quantize_params;

void tk_quantize(const tk_quantize_params *p, const int8_t *input, int8_t *output);

/* DEQUANTIZE int8 -> float. */
typedef struct {
    int size;
    int32_t zero_point;
    double scale;
} tk_dequantize_params;

void tk_dequantize(const tk_dequantize_params *p, const int8_t *input, float *output);

#endif /* TINYKD_RUNTIME_H_ */
