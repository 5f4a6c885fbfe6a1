/* tinykd C backend runtime: which kernel variant this build compiles, chosen at compile time.
 *
 * Every variant's files are compiled; each keeps its code inside `#if TK_KERNELS == ...`, so exactly one
 * definition of each kernel remains. The core's own macros choose: Helium (__ARM_FEATURE_MVE, Cortex-M55,
 * M85) the *_mve.c kernels, the DSP extension (__ARM_FEATURE_DSP, Cortex-M4, M7, M33) the *_dsp.c ones,
 * anything else the portable ones. -DTK_KERNELS=TK_KERNELS_DSP (or _MVE, _PORTABLE) forces a variant:
 * on a core without its instructions they are plain C with the same results, which is how a host
 * build checks them.
 */
#ifndef TINYKD_KERNELS_H_
#define TINYKD_KERNELS_H_

#define TK_KERNELS_PORTABLE 1
#define TK_KERNELS_DSP 2
#define TK_KERNELS_MVE 3

#ifndef TK_KERNELS
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define TK_KERNELS TK_KERNELS_MVE
#elif defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TK_KERNELS TK_KERNELS_DSP
#else
#define TK_KERNELS TK_KERNELS_PORTABLE
#endif
#endif

#if TK_KERNELS != TK_KERNELS_PORTABLE && TK_KERNELS != TK_KERNELS_DSP && TK_KERNELS != TK_KERNELS_MVE
#error "TK_KERNELS must be TK_KERNELS_PORTABLE, TK_KERNELS_DSP or TK_KERNELS_MVE"
#endif

/* Output channels the DSP convolution requantizes together. It reads its whole input once per block, so
 * the arena plan depends on this number: tinykd_model.c refuses to build with another one. 64 lets the
 * pointwise layers of MobileNet-like models (64 channels) write over their input, for 0.75 KB of stack. */
#ifndef TK_RQ_BLOCK
#define TK_RQ_BLOCK 64
#endif

#endif /* TINYKD_KERNELS_H_ */
