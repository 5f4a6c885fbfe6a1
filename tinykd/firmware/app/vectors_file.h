/* The golden-vector file the host writes for the native and QEMU targets (little-endian):
 *   "TKDI" | u32 vector count | u32 bytes per vector | count * bytes int8 values
 * Outputs are written raw (count * TINYKD_OUTPUT_BYTES int8 values) and the run ends with one line
 *   tinykd-fw: summary vectors=N input_bytes=I output_bytes=O checksum=XXXXXXXX ticks_total=T ticks_min=A ticks_max=B
 * on the console (stdout natively, the semihosting console on QEMU).
 */
#ifndef TINYKD_VECTORS_FILE_H
#define TINYKD_VECTORS_FILE_H

#include <stdint.h>

#include "platform.h"

#define TINYKD_INPUTS_FILE "tinykd_inputs.bin"
#define TINYKD_OUTPUTS_FILE "tinykd_outputs.bin"
#define TINYKD_HEADER_BYTES 12u

static inline uint32_t tinykd_read_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* The vector count from a header, or minus an exit code when the header does not fit the model. */
static inline int64_t tinykd_check_header(const uint8_t header[TINYKD_HEADER_BYTES], uint32_t vector_bytes)
{
    if (header[0] != 'T' || header[1] != 'K' || header[2] != 'D' || header[3] != 'I')
        return -TINYKD_EXIT_FORMAT;
    if (tinykd_read_u32le(header + 8) != vector_bytes)
        return -TINYKD_EXIT_FORMAT;
    return (int64_t)tinykd_read_u32le(header + 4);
}

/* The summary line, written into `line` (at least 200 bytes). */
static inline void tinykd_summary_line(char *line, const struct tinykd_summary *s)
{
    char *p = tinykd_append(line, "tinykd-fw: summary vectors=");
    p = tinykd_format_u64(p, s->vectors);
    p = tinykd_append(p, " input_bytes=");
    p = tinykd_format_u64(p, s->input_bytes);
    p = tinykd_append(p, " output_bytes=");
    p = tinykd_format_u64(p, s->output_bytes);
    p = tinykd_append(p, " checksum=");
    p = tinykd_format_hex32(p, s->checksum);
    p = tinykd_append(p, " ticks_total=");
    p = tinykd_format_u64(p, s->ticks_total);
    p = tinykd_append(p, " ticks_min=");
    p = tinykd_format_u64(p, s->ticks_min);
    p = tinykd_append(p, " ticks_max=");
    tinykd_format_u64(p, s->ticks_max);
}

#endif
