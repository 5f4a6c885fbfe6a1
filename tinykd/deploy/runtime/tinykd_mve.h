/* tinykd C backend runtime, Helium (MVE) kernels: the vector dot product the *_mve.c kernels use.
 *
 * On a core with MVE (Cortex-M55, M85: __ARM_FEATURE_MVE) it is built from arm_mve.h intrinsics,
 * 16 int8 lanes a step with a tail-predicated last step; elsewhere (a build that forces these kernels,
 * as tinykd's host checks do) it is plain C with the same results, so the same kernels run and can be
 * checked anywhere.
 *
 * The kernels' sums are sum(w * (x + offset)); with int32 wrap-around that equals
 * sum(w * x) + offset * sum(w), which is what is computed here (x + offset may not fit in int8).
 */
#ifndef TINYKD_MVE_H_
#define TINYKD_MVE_H_

#include <stdint.h>

#include "tinykd_runtime.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#include <arm_mve.h>

/* acc + sum over n of w[i] * (x[i] + offset); reads exactly n bytes of each array. */
static inline int32_t tk_mve_dot(const int8_t *x, const int8_t *w, int n, int32_t offset, int32_t acc)
{
    int32_t products = 0, weights = 0;
    while (n > 0) {
        const mve_pred16_t lanes = vctp8q((uint32_t)n);
        const int8x16_t xv = vldrbq_z_s8(x, lanes);  /* inactive lanes read as 0 */
        const int8x16_t wv = vldrbq_z_s8(w, lanes);
        products = vmladavaq_s8(products, xv, wv);
        weights = vaddvaq_s8(weights, wv);
        x += 16;
        w += 16;
        n -= 16;
    }
    return (int32_t)((uint32_t)acc + (uint32_t)products + (uint32_t)offset * (uint32_t)weights);
}

#else /* the same sums in plain C */

static inline int32_t tk_mve_dot(const int8_t *x, const int8_t *w, int n, int32_t offset, int32_t acc)
{
    uint32_t products = 0, weights = 0;
    int i;
    for (i = 0; i < n; ++i) {
        products += (uint32_t)((int32_t)x[i] * (int32_t)w[i]);
        weights += (uint32_t)(int32_t)w[i];
    }
    return (int32_t)((uint32_t)acc + products + (uint32_t)offset * weights);
}

#endif

#endif /* TINYKD_MVE_H_ */
