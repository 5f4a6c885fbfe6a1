/* QEMU: the golden vectors come from a file on the host through Arm semihosting (SYS_OPEN/SYS_READ),
 * the outputs go back the same way, and SYS_EXIT_EXTENDED makes the exit code QEMU's exit code.
 *
 * Why files and not the UART: a 1000 x 2304-byte input set is 2.3 MB, far more than the RAM of the
 * boards being emulated; reading one vector at a time from a host file needs one vector of RAM, is
 * exact (no framing, no baud rate), and is fast because each call is one trap into QEMU.
 * Relative file names resolve in QEMU's working directory.
 */
#include "platform.h"
#include "semihost.h"
#include "vectors_file.h"

static int inputs = -1;
static int outputs = -1;
static uint32_t remaining;

int tinykd_platform_init(int argc, char **argv, uint32_t input_bytes, uint32_t output_bytes)
{
    uint8_t header[TINYKD_HEADER_BYTES];
    (void)argc;
    (void)argv;
    (void)output_bytes;
    inputs = semihost_open(TINYKD_INPUTS_FILE, SEMIHOST_MODE_RB);
    if (inputs < 0 || semihost_read(inputs, header, sizeof header) != 0)
        return TINYKD_EXIT_IO;
    int64_t count = tinykd_check_header(header, input_bytes);
    if (count < 0) {
        tinykd_platform_log("tinykd-fw: error: the input vectors do not have the byte count the model takes");
        return TINYKD_EXIT_FORMAT;
    }
    remaining = (uint32_t)count;
    outputs = semihost_open(TINYKD_OUTPUTS_FILE, SEMIHOST_MODE_WB);
    return outputs < 0 ? TINYKD_EXIT_IO : 0;
}

int tinykd_platform_next_input(int8_t *buffer, uint32_t bytes)
{
    if (remaining == 0)
        return 0;
    remaining--;
    return semihost_read(inputs, buffer, bytes) == 0 ? 1 : -TINYKD_EXIT_IO;
}

int tinykd_platform_put_output(const int8_t *output, uint32_t bytes, uint32_t ticks)
{
    (void)ticks;
    return semihost_write(outputs, output, bytes) == 0 ? 0 : TINYKD_EXIT_IO;
}

int tinykd_platform_finish(const struct tinykd_summary *summary)
{
    char line[200];
    semihost_close(inputs);
    if (semihost_close(outputs) != 0)
        return TINYKD_EXIT_IO;
    tinykd_summary_line(line, summary);
    tinykd_platform_log(line);
    return 0;
}

void tinykd_platform_log(const char *text)
{
    semihost_write0(text);
    semihost_write0("\n");
}

void tinykd_platform_exit(int code)
{
    semihost_exit(code);
}
