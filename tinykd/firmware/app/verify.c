/* tinykd verification app: run the model on every golden input vector and report each int8 output,
 * a CRC-32 of all outputs and the timer ticks spent inside tinykd_invoke.
 *
 * The measured region is exactly one tinykd_invoke call, between tinykd_measure_begin() and
 * tinykd_measure_end(): two functions that are never inlined, so their symbols in the ELF mark it.
 * On QEMU with -icount shift=0 a tick of the 25 MHz timer is 40 instructions.
 */
#include <stdint.h>

#include "platform.h"
#include "tinykd_model.h"

static int8_t input[TINYKD_INPUT_BYTES] __attribute__((aligned(16)));
static int8_t output[TINYKD_OUTPUT_BYTES] __attribute__((aligned(16)));

__attribute__((noinline, noipa)) uint32_t tinykd_measure_begin(void)
{
    return tinykd_timer_now();
}

__attribute__((noinline, noipa)) uint32_t tinykd_measure_end(void)
{
    return tinykd_timer_now();
}

static void fail(int code, const char *what)
{
    char line[96];
    char *p = tinykd_append(line, "tinykd-fw: error: ");
    tinykd_append(p, what);
    tinykd_platform_log(line);
    tinykd_platform_exit(code);
}

int main(int argc, char **argv)
{
    struct tinykd_summary summary = {0, TINYKD_INPUT_BYTES, TINYKD_OUTPUT_BYTES, 0, 0, UINT32_MAX, 0};
    int status = tinykd_platform_init(argc, argv, TINYKD_INPUT_BYTES, TINYKD_OUTPUT_BYTES);
    if (status)
        fail(status, "cannot start (inputs or outputs not available)");
    tinykd_timer_start();

    while ((status = tinykd_platform_next_input(input, TINYKD_INPUT_BYTES)) == 1) {
        uint32_t begin = tinykd_measure_begin();
        int rc = tinykd_invoke(input, output);
        uint32_t ticks = tinykd_measure_end() - begin;
        if (rc != 0)
            fail(TINYKD_EXIT_INVOKE, "tinykd_invoke returned an error");
        summary.vectors++;
        summary.checksum = tinykd_crc32(summary.checksum, output, TINYKD_OUTPUT_BYTES);
        summary.ticks_total += ticks;
        summary.ticks_min = ticks < summary.ticks_min ? ticks : summary.ticks_min;
        summary.ticks_max = ticks > summary.ticks_max ? ticks : summary.ticks_max;
        status = tinykd_platform_put_output(output, TINYKD_OUTPUT_BYTES, ticks);
        if (status)
            fail(status, "cannot write the outputs");
    }
    if (status < 0)
        fail(-status, "cannot read the inputs");
    if (summary.vectors == 0)
        summary.ticks_min = 0;
    status = tinykd_platform_finish(&summary);
    if (status)
        fail(status, "cannot write the outputs");
    return 0;
}
