/* native: the same app as a plain host process. Usage: firmware [INPUTS [OUTPUTS]]
 * (defaults: tinykd_inputs.bin and tinykd_outputs.bin in the working directory). */
#include <stdio.h>
#include <stdlib.h>

#include "platform.h"
#include "vectors_file.h"

static FILE *inputs;
static FILE *outputs;
static uint32_t remaining;

int tinykd_platform_init(int argc, char **argv, uint32_t input_bytes, uint32_t output_bytes)
{
    uint8_t header[TINYKD_HEADER_BYTES];
    (void)output_bytes;
    inputs = fopen(argc > 1 ? argv[1] : TINYKD_INPUTS_FILE, "rb");
    if (!inputs || fread(header, 1, sizeof header, inputs) != sizeof header)
        return TINYKD_EXIT_IO;
    int64_t count = tinykd_check_header(header, input_bytes);
    if (count < 0) {
        tinykd_platform_log("tinykd-fw: error: the input vectors do not have the byte count the model takes");
        return TINYKD_EXIT_FORMAT;
    }
    remaining = (uint32_t)count;
    outputs = fopen(argc > 2 ? argv[2] : TINYKD_OUTPUTS_FILE, "wb");
    return outputs ? 0 : TINYKD_EXIT_IO;
}

int tinykd_platform_next_input(int8_t *buffer, uint32_t bytes)
{
    if (remaining == 0)
        return 0;
    remaining--;
    return fread(buffer, 1, bytes, inputs) == bytes ? 1 : -TINYKD_EXIT_IO;
}

int tinykd_platform_put_output(const int8_t *output, uint32_t bytes, uint32_t ticks)
{
    (void)ticks;
    return fwrite(output, 1, bytes, outputs) == bytes ? 0 : TINYKD_EXIT_IO;
}

int tinykd_platform_finish(const struct tinykd_summary *summary)
{
    char line[200];
    fclose(inputs);
    if (fclose(outputs) != 0)
        return TINYKD_EXIT_IO;
    tinykd_summary_line(line, summary);
    tinykd_platform_log(line);
    return 0;
}

void tinykd_platform_log(const char *text)
{
    fputs(text, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

void tinykd_platform_exit(int code)
{
    exit(code);
}
