/* tinykd C backend runtime: int8 kernels whose integer arithmetic follows the TFLite reference kernels
 * as TFLM runs them, so outputs are byte-for-byte equal to TFLM's.
 *
 * Plain C99, no dynamic memory. Tensors are NHWC int8 in a caller-owned arena; every layer's
 * parameters (shapes, zero points, requantization multipliers and shifts) are computed on the host
 * by tinykd and passed as one const struct per layer.
 *
 * The one header generated code and the kernels include; it gathers the others:
 *  - tinykd_kernels.h: which kernel variant this build compiles;
 *  - tinykd_compiler.h: inlining hints;
 *  - tinykd_fixedpoint.h: gemmlowp fixed-point arithmetic and requantization;
 *  - tinykd_params.h: every kernel's parameter struct and prototype, which tinykd generates from the
 *    declaration block at the top of each kernel file;
 *  - tinykd_loops.h: loops several kernels share.
 * The variants' own helpers are in tinykd_dsp.h and tinykd_mve.h, which only their kernels include.
 */
#ifndef TINYKD_RUNTIME_H_
#define TINYKD_RUNTIME_H_

#include <stdint.h>

#include "tinykd_kernels.h"
#include "tinykd_compiler.h"
#include "tinykd_fixedpoint.h"
#include "tinykd_params.h"
#include "tinykd_loops.h"

#endif /* TINYKD_RUNTIME_H_ */
