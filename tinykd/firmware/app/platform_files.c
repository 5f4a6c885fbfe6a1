/* native and QEMU: the golden vectors come from a file and the outputs go back to one. Natively the
 * files are opened with stdio (paths from the command line, or the default names); on QEMU through Arm
 * semihosting (SYS_OPEN/SYS_READ, relative to QEMU's working directory), and SYS_EXIT_EXTENDED makes the
 * exit code QEMU's exit code (TINYKD_SEMIHOSTING).
 *
 * Why files and not the UART on QEMU: a 1000 x 2304-byte input set is 2.3 MB, far more than the RAM of
 * the boards being emulated; reading one vector at a time from a host file needs one vector of RAM, is
 * exact (no framing, no baud rate), and is fast because each call is one trap into QEMU.
 *
 * The inputs file (little-endian): "TKDI" | u32 vector count | u32 bytes per vector | the int8 values.
 * The outputs file: the int8 outputs, raw. The run ends with one line on the console:
 *   tinykd-fw: summary vectors=N input_bytes=I output_bytes=O checksum=XXXXXXXX ticks_total=T ticks_min=A ticks_max=B
 */
#include "platform.h"

#define INPUTS_FILE "tinykd_inputs.bin"
#define OUTPUTS_FILE "tinykd_outputs.bin"
#define HEADER_BYTES 12u

#ifdef TINYKD_SEMIHOSTING
#include "semihost.h"

typedef int file_t;
static const file_t no_file = -1;

static file_t open_file(const char *path, int writing)
{
    return semihost_open(path, writing ? SEMIHOST_MODE_WB : SEMIHOST_MODE_RB);
}
static int read_all(file_t file, void *buffer, uint32_t bytes) { return semihost_read(file, buffer, bytes) == 0; }
static int write_all(file_t file, const void *data, uint32_t bytes) { return semihost_write(file, data, bytes) == 0; }
static int close_file(file_t file) { return semihost_close(file) == 0; }

void tinykd_platform_log(const char *text)
{
    semihost_write0(text);
    semihost_write0("\n");
}

void tinykd_platform_exit(int code) { semihost_exit(code); }
#else
#include <stdio.h>
#include <stdlib.h>

typedef FILE *file_t;
static file_t const no_file = NULL;

static file_t open_file(const char *path, int writing) { return fopen(path, writing ? "wb" : "rb"); }
static int read_all(file_t file, void *buffer, uint32_t bytes) { return fread(buffer, 1, bytes, file) == bytes; }
static int write_all(file_t file, const void *data, uint32_t bytes) { return fwrite(data, 1, bytes, file) == bytes; }
static int close_file(file_t file) { return fclose(file) == 0; }

void tinykd_platform_log(const char *text)
{
    fputs(text, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

void tinykd_platform_exit(int code) { exit(code); }
#endif

static file_t inputs, outputs;
static uint32_t remaining;

static uint32_t read_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int tinykd_platform_init(int argc, char **argv, uint32_t input_bytes, uint32_t output_bytes)
{
    uint8_t header[HEADER_BYTES];
    (void)output_bytes;
    inputs = open_file(argc > 1 ? argv[1] : INPUTS_FILE, 0);
    if (inputs == no_file || !read_all(inputs, header, sizeof header))
        return TINYKD_EXIT_IO;
    if (header[0] != 'T' || header[1] != 'K' || header[2] != 'D' || header[3] != 'I' ||
        read_u32le(header + 8) != input_bytes) {
        tinykd_platform_log("tinykd-fw: error: the input vectors do not have the byte count the model takes");
        return TINYKD_EXIT_FORMAT;
    }
    remaining = read_u32le(header + 4);
    outputs = open_file(argc > 2 ? argv[2] : OUTPUTS_FILE, 1);
    return outputs == no_file ? TINYKD_EXIT_IO : 0;
}

int tinykd_platform_next_input(int8_t *buffer, uint32_t bytes)
{
    if (remaining == 0)
        return 0;
    remaining--;
    return read_all(inputs, buffer, bytes) ? 1 : -TINYKD_EXIT_IO;
}

int tinykd_platform_put_output(const int8_t *output, uint32_t bytes, uint32_t ticks)
{
    (void)ticks;
    return write_all(outputs, output, bytes) ? 0 : TINYKD_EXIT_IO;
}

int tinykd_platform_finish(const struct tinykd_summary *s)
{
    const char *names[] = {"vectors", "input_bytes", "output_bytes", "checksum", "ticks_total", "ticks_min",
                           "ticks_max"};
    const uint64_t values[] = {s->vectors, s->input_bytes, s->output_bytes, s->checksum, s->ticks_total,
                               s->ticks_min, s->ticks_max};
    char line[200];
    char *p = tinykd_append(line, "tinykd-fw: summary");
    close_file(inputs);
    if (!close_file(outputs))
        return TINYKD_EXIT_IO;
    for (unsigned i = 0; i < sizeof values / sizeof values[0]; i++) { /* the checksum (3) in hex */
        p = tinykd_append(tinykd_append(tinykd_append(p, " "), names[i]), "=");
        p = i == 3 ? tinykd_format_hex32(p, s->checksum) : tinykd_format_u64(p, values[i]);
    }
    tinykd_platform_log(line);
    return 0;
}
