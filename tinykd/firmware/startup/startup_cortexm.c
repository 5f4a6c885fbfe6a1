/* Bare-metal start-up for every Cortex-M target (linked with -nostartfiles):
 * the vector table, a reset handler that enables the FPU when the code uses one, copies .data,
 * clears .bss and calls main, a fault handler that reports where it happened, and the few C library
 * hooks newlib needs (_init/_fini, _sbrk, _exit). Symbols come from the generated linker script. */
#include <stdint.h>
#include <string.h>

#include "platform.h"

extern uint32_t __stack_top__[];
extern uint8_t __data_load__[], __data_start__[], __data_end__[];
extern uint8_t __bss_start__[], __bss_end__[];
extern uint8_t __heap_start__[], __heap_end__[];

int main(int argc, char **argv);
void __libc_init_array(void);
void tinykd_reset(void) __attribute__((naked, noreturn));
void tinykd_fault(void) __attribute__((naked, noreturn));
void tinykd_start(void) __attribute__((noreturn, used));
void tinykd_fault_report(const uint32_t *frame) __attribute__((noreturn, used));

/* Cortex-M vector table: initial stack pointer, then the 15 system exceptions. No interrupt is
 * enabled, so no IRQ entries are needed. The linker script puts .vectors first in flash. */
__attribute__((section(".vectors"), used)) void (*const tinykd_vectors[16])(void) = {
    (void (*)(void))__stack_top__,
    tinykd_reset,
    tinykd_fault, /* NMI */
    tinykd_fault, /* HardFault */
    tinykd_fault, /* MemManage */
    tinykd_fault, /* BusFault */
    tinykd_fault, /* UsageFault */
    tinykd_fault, /* SecureFault (Armv8-M) */
    0, 0, 0,
    tinykd_fault, /* SVCall */
    tinykd_fault, /* DebugMonitor */
    0,
    tinykd_fault, /* PendSV */
    tinykd_fault, /* SysTick */
};

/* Assembly only until the FPU is on: with -mfloat-abi=hard the compiler may use FP registers in
 * any C function, and touching them before CPACR grants access is a UsageFault. */
void tinykd_reset(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    __asm__ volatile(
        "ldr r0, =0xE000ED88\n"      /* CPACR */
        "ldr r1, [r0]\n"
        "ldr r2, =0x00F00000\n"      /* full access to CP10 and CP11 */
        "orr r1, r1, r2\n"
        "str r1, [r0]\n"
        "dsb\n"
        "isb\n"
        "ldr r0, =tinykd_start\n"
        "bx r0\n");
#else
    __asm__ volatile(
        "ldr r0, =tinykd_start\n"     /* ldr/bx: a Thumb-1 b reaches only 2 KB */
        "bx r0\n");
#endif
}

void tinykd_start(void)
{
    memcpy(__data_start__, __data_load__, (size_t)(__data_end__ - __data_start__));
    memset(__bss_start__, 0, (size_t)(__bss_end__ - __bss_start__));
    __libc_init_array();
    tinykd_platform_exit(main(0, 0));
}

/* Every fault lands here with the exception frame on the main stack (the firmware never uses PSP). */
void tinykd_fault(void)
{
    __asm__ volatile(
        "mrs r0, msp\n"
        "ldr r1, =tinykd_fault_report\n"
        "bx r1\n");
}

void tinykd_fault_report(const uint32_t *frame)
{
    char line[96];
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    char *p = tinykd_append(line, "tinykd-fw: error: fault exception ");
    p = tinykd_format_u64(p, ipsr & 0x1FFu);
    p = tinykd_append(p, " at pc=0x");
    p = tinykd_format_hex32(p, frame[6]);
    p = tinykd_append(p, " lr=0x");
    tinykd_format_hex32(p, frame[5]);
    tinykd_platform_log(line);
    tinykd_platform_exit(TINYKD_EXIT_FAULT);
}

/* newlib's __libc_init_array calls _init and __libc_fini_array calls _fini; crti/crtn are not linked. */
void _init(void)
{
}

void _fini(void)
{
}

/* The heap grows from the end of .bss towards the stack's reserved block. */
void *_sbrk(intptr_t increment)
{
    static uint8_t *brk = __heap_start__;
    if (increment > __heap_end__ - brk)
        return (void *)-1;
    uint8_t *previous = brk;
    brk += increment;
    return previous;
}

void _exit(int code)
{
    tinykd_platform_exit(code);
}
