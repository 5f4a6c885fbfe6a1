/* A board on a serial line: the host sends framed input vectors, the board answers each with a framed
 * result. The frame format is described (and implemented for the host) in tinykd/verify/runners/serial.py:
 *   "TK" | type u8 | payload length u32 LE | payload | CRC-32 u32 LE of type + length + payload
 *
 * The UART is reached through three functions. The weak defaults drive the CMSDK UART0 of the Arm
 * MPS2 images (0x40004000), which is what QEMU emulates; a real board's port supplies its own.
 */
#include "platform.h"

void tinykd_uart_init(void);
void tinykd_uart_putc(uint8_t byte);
uint8_t tinykd_uart_getc(void);

#define UART_REG(offset) (*(volatile uint32_t *)(0x40004000u + (offset)))
#define UART_DATA UART_REG(0x00)
#define UART_STATE UART_REG(0x04)
#define UART_CTRL UART_REG(0x08)
#define UART_BAUDDIV UART_REG(0x10)

__attribute__((weak)) void tinykd_uart_init(void)
{
    UART_BAUDDIV = 25000000u / 115200u;
    UART_CTRL = 3u; /* TX and RX enabled, no interrupts */
}

__attribute__((weak)) void tinykd_uart_putc(uint8_t byte)
{
    while (UART_STATE & 1u) {
    }
    UART_DATA = byte;
}

__attribute__((weak)) uint8_t tinykd_uart_getc(void)
{
    while (!(UART_STATE & 2u)) {
    }
    return (uint8_t)UART_DATA;
}

#if defined(TINYKD_TIMER_CMSDK)
#define TIMER_KIND 1u          /* QEMU ticks: with -icount shift=0, 1e9 / TIMER_HZ instructions each */
#define TIMER_HZ TINYKD_TIMER_HZ
#elif defined(TINYKD_TIMER_DWT)
#define TIMER_KIND 2u          /* core cycles */
#define TIMER_HZ 0u
#else
#define TIMER_KIND 0u
#define TIMER_HZ 0u
#endif

static uint32_t in_bytes, out_bytes;

static void put_u32(uint8_t *p, uint32_t value)
{
    p[0] = (uint8_t)value;
    p[1] = (uint8_t)(value >> 8);
    p[2] = (uint8_t)(value >> 16);
    p[3] = (uint8_t)(value >> 24);
}

static void send_bytes(const void *data, uint32_t bytes)
{
    const uint8_t *p = (const uint8_t *)data;
    while (bytes--)
        tinykd_uart_putc(*p++);
}

/* A frame whose payload is `head` then `body` (either may be empty). */
static void send_frame(uint8_t type, const void *head, uint32_t head_bytes, const void *body, uint32_t body_bytes)
{
    uint8_t header[7] = {'T', 'K', type};
    uint8_t crc_bytes[4];
    put_u32(header + 3, head_bytes + body_bytes);
    uint32_t crc = tinykd_crc32(0, header + 2, 5);
    crc = tinykd_crc32(crc, head, head_bytes);
    crc = tinykd_crc32(crc, body, body_bytes);
    put_u32(crc_bytes, crc);
    send_bytes(header, sizeof header);
    send_bytes(head, head_bytes);
    send_bytes(body, body_bytes);
    send_bytes(crc_bytes, sizeof crc_bytes);
}

static uint32_t get_u32(void)
{
    uint32_t value = 0;
    for (int shift = 0; shift < 32; shift += 8)
        value |= (uint32_t)tinykd_uart_getc() << shift;
    return value;
}

int tinykd_platform_init(int argc, char **argv, uint32_t input_bytes, uint32_t output_bytes)
{
    (void)argc;
    (void)argv;
    in_bytes = input_bytes;
    out_bytes = output_bytes;
    tinykd_uart_init();
    return 0;
}

int tinykd_platform_next_input(int8_t *buffer, uint32_t bytes)
{
    for (;;) {
        uint8_t previous = 0, byte = 0, type_and_length[5];
        while (!(previous == 'T' && byte == 'K')) {
            previous = byte;
            byte = tinykd_uart_getc();
        }
        type_and_length[0] = tinykd_uart_getc();
        uint32_t length = get_u32();
        put_u32(type_and_length + 1, length);
        uint32_t crc = tinykd_crc32(0, type_and_length, 5);
        int fits = type_and_length[0] == 'i' && length == bytes;
        for (uint32_t i = 0; i < length; i++) {
            uint8_t value = tinykd_uart_getc();
            crc = tinykd_crc32(crc, &value, 1);
            if (fits)
                buffer[i] = (int8_t)value;
        }
        if (get_u32() != crc) {
            tinykd_platform_log("frame checksum mismatch");
            continue;
        }
        switch (type_and_length[0]) {
        case 'h': {
            uint8_t info[16];
            put_u32(info, in_bytes);
            put_u32(info + 4, out_bytes);
            put_u32(info + 8, TIMER_KIND);
            put_u32(info + 12, TIMER_HZ);
            send_frame('H', info, sizeof info, 0, 0);
            break;
        }
        case 'i':
            if (fits)
                return 1;
            tinykd_platform_log("input vector of the wrong size");
            break;
        case 'q':
            return 0;
        default:
            tinykd_platform_log("unknown frame type");
        }
    }
}

int tinykd_platform_put_output(const int8_t *output, uint32_t bytes, uint32_t ticks)
{
    uint8_t head[4];
    put_u32(head, ticks);
    send_frame('o', head, sizeof head, output, bytes);
    return 0;
}

int tinykd_platform_finish(const struct tinykd_summary *summary)
{
    uint8_t bye[8];
    put_u32(bye, summary->vectors);
    put_u32(bye + 4, summary->checksum);
    send_frame('Q', bye, sizeof bye, 0, 0);
    return 0;
}

void tinykd_platform_log(const char *text)
{
    uint32_t length = 0;
    while (text[length])
        length++;
    send_frame('E', text, length, 0, 0);
}

void tinykd_platform_exit(int code)
{
    (void)code;
    for (;;) {
    }
}
