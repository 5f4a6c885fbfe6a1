/* tinykd C backend runtime: each kernel's parameter struct and prototype. The host fills one const
 * struct per layer (shapes, zero points, requantization multipliers and shifts) in tinykd_model.c.
 */
#ifndef TINYKD_PARAMS_H_
#define TINYKD_PARAMS_H_

#include <stdint.h>

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

#endif /* TINYKD_PARAMS_H_ */
