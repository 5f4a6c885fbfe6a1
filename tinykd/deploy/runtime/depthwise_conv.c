/* DEPTHWISE_CONV_2D: int8 depthwise convolution with a depth multiplier and per-channel
 * requantization. */
#include "tinykd_runtime.h"

#if TK_KERNELS == TK_KERNELS_PORTABLE

void tk_depthwise_conv_2d(const tk_conv_params *p, const int8_t *input, int8_t *output)
{
    tk_depthwise_conv_2d_reference(p, input, output);
}

#endif /* TK_KERNELS == TK_KERNELS_PORTABLE */
