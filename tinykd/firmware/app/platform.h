/* What the verification app needs from where it runs: a source of input vectors, a sink for outputs,
 * a tick counter and a way to stop. One implementation per way of running:
 *   platform_files.c     native (a plain process) and QEMU (Arm semihosting): reads and writes files
 *   platform_uart.c      a board on a serial line: framed messages (see tinykd/verify/runners/serial.py)
 */
#ifndef TINYKD_PLATFORM_H
#define TINYKD_PLATFORM_H

#include <stdint.h>

/* Exit codes: tinykd/verify/runners/base.py maps them to messages. */
enum {
    TINYKD_EXIT_OK = 0,
    TINYKD_EXIT_IO = 2,        /* an input or output file could not be opened, read or written */
    TINYKD_EXIT_FAULT = 3,     /* a fault exception (hard fault, bus fault, ...) */
    TINYKD_EXIT_INVOKE = 4,    /* tinykd_invoke returned non-zero */
    TINYKD_EXIT_FORMAT = 5,    /* the inputs do not match the model (vector size, header) */
};

struct tinykd_summary {
    uint32_t vectors;
    uint32_t input_bytes;
    uint32_t output_bytes;
    uint32_t checksum;          /* CRC-32 (zlib's) of every output byte, in order */
    uint64_t ticks_total;       /* timer ticks inside the measured region, summed over all vectors */
    uint32_t ticks_min;
    uint32_t ticks_max;
};

/* 0 when ready, else an exit code. */
int tinykd_platform_init(int argc, char **argv, uint32_t input_bytes, uint32_t output_bytes);
/* 1: `buffer` holds the next vector; 0: no more vectors; < 0: minus an exit code. */
int tinykd_platform_next_input(int8_t *buffer, uint32_t bytes);
/* 0, or an exit code. */
int tinykd_platform_put_output(const int8_t *output, uint32_t bytes, uint32_t ticks);
/* The run is over: publish the summary. 0, or an exit code. */
int tinykd_platform_finish(const struct tinykd_summary *summary);
/* One line of text for a human (no newline needed). */
void tinykd_platform_log(const char *text);
void tinykd_platform_exit(int code) __attribute__((noreturn));

/* A free-running counter (timer.c); 0 everywhere when the target has no timer. Counts up. */
void tinykd_timer_start(void);
uint32_t tinykd_timer_now(void);

/* Small helpers shared by the platforms (util.c). */
uint32_t tinykd_crc32(uint32_t crc, const void *data, uint32_t bytes);
char *tinykd_format_u64(char *out, uint64_t value);       /* decimal; returns the end */
char *tinykd_format_hex32(char *out, uint32_t value);     /* 8 hex digits; returns the end */
char *tinykd_append(char *out, const char *text);         /* copy text; returns the end */

#endif
