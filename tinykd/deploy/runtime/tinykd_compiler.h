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

#endif /* TINYKD_COMPILER_H_ */
