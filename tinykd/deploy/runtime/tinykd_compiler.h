/* tinykd C backend runtime: compiler hints the kernels use, empty where the compiler lacks them. */
#ifndef TINYKD_COMPILER_H_
#define TINYKD_COMPILER_H_

#if defined(__GNUC__)
#define TK_ALWAYS_INLINE inline __attribute__((always_inline))
#define TK_NOINLINE __attribute__((noinline))
#else
#define TK_ALWAYS_INLINE inline
#define TK_NOINLINE
#endif

/* GCC's scheduling before register allocation hoists the loads of unrolled multiply-accumulate runs and
 * then spills the registers it ran out of (the DSP depthwise 3x3 taps: 140 instead of 93 instructions).
 * On Arm it is off for the runtime's files; the scheduling after allocation stays. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__arm__)
#pragma GCC optimize("no-schedule-insns")
#endif

#endif /* TINYKD_COMPILER_H_ */
