/* Helpers without libc's stdio, so the firmware stays small on a 64 KB board. */
#include "platform.h"

uint32_t tinykd_crc32(uint32_t crc, const void *data, uint32_t bytes)
{
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    while (bytes--) {
        crc ^= *p++;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

char *tinykd_format_u64(char *out, uint64_t value)
{
    char digits[21];
    int n = 0;
    do {
        /* Divide by 10 with 32-bit halves: no __aeabi_uldivmod needed on Cortex-M0. */
        uint32_t hi = (uint32_t)(value >> 32), lo = (uint32_t)value;
        uint32_t qhi = hi / 10, r = hi % 10;
        uint64_t rest = ((uint64_t)r << 32) | lo;
        /* rest < 10 * 2^32: split again into 16-bit steps to stay in 32-bit arithmetic. */
        uint32_t mid = (uint32_t)(rest >> 16);
        uint32_t qmid = mid / 10;
        uint32_t low = ((mid % 10) << 16) | (lo & 0xFFFFu);
        uint32_t qlow = low / 10;
        digits[n++] = (char)('0' + low % 10);
        value = ((uint64_t)qhi << 32) | ((uint64_t)qmid << 16) | qlow;
    } while (value);
    while (n)
        *out++ = digits[--n];
    *out = '\0';
    return out;
}

char *tinykd_format_hex32(char *out, uint32_t value)
{
    for (int shift = 28; shift >= 0; shift -= 4)
        *out++ = "0123456789abcdef"[(value >> shift) & 0xFu];
    *out = '\0';
    return out;
}

char *tinykd_append(char *out, const char *text)
{
    while (*text)
        *out++ = *text++;
    *out = '\0';
    return out;
}
