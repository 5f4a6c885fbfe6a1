/* The tick counter around each inference.
 *   TINYKD_TIMER_CMSDK=<base>  the CMSDK APB timer of the Arm MPS2/MPS3 images: a 32-bit down-counter
 *                              clocked by the system clock (25 MHz on mps2). Under QEMU -icount shift=0
 *                              one instruction takes 1 ns, so one tick is 40 instructions, every run.
 *   TINYKD_TIMER_DWT           the Cortex-M cycle counter (real Armv7-M/Armv8-M boards; QEMU does not model it).
 *   neither                    no timer: every reading is 0.
 */
#include "platform.h"

#if defined(TINYKD_TIMER_CMSDK)

#define TIMER_REG(offset) (*(volatile uint32_t *)((uintptr_t)(TINYKD_TIMER_CMSDK) + (offset)))
#define TIMER_CTRL TIMER_REG(0x0)
#define TIMER_VALUE TIMER_REG(0x4)
#define TIMER_RELOAD TIMER_REG(0x8)

void tinykd_timer_start(void)
{
    TIMER_CTRL = 0;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 1; /* enable, system clock, no interrupt */
}

uint32_t tinykd_timer_now(void)
{
    return 0xFFFFFFFFu - TIMER_VALUE; /* counts up; differences are right across one wrap */
}

#elif defined(TINYKD_TIMER_DWT)

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)

void tinykd_timer_start(void)
{
    DEMCR |= 1u << 24; /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;    /* CYCCNTENA */
}

uint32_t tinykd_timer_now(void)
{
    return DWT_CYCCNT;
}

#else

void tinykd_timer_start(void)
{
}

uint32_t tinykd_timer_now(void)
{
    return 0;
}

#endif
