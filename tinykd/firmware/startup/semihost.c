#include "semihost.h"

#include <string.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_EXIT = 0x18,
    SYS_EXIT_EXTENDED = 0x20,
    ADP_STOPPED_APPLICATION_EXIT = 0x20026,
};

static uintptr_t semihost_call(uintptr_t operation, const void *argument)
{
    register uintptr_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int semihost_open(const char *path, int mode)
{
    uintptr_t args[3] = {(uintptr_t)path, (uintptr_t)mode, (uintptr_t)strlen(path)};
    return (int)semihost_call(SYS_OPEN, args);
}

int semihost_close(int handle)
{
    uintptr_t args[1] = {(uintptr_t)handle};
    return (int)semihost_call(SYS_CLOSE, args);
}

uint32_t semihost_read(int handle, void *buffer, uint32_t bytes)
{
    uintptr_t args[3] = {(uintptr_t)handle, (uintptr_t)buffer, bytes};
    return (uint32_t)semihost_call(SYS_READ, args);
}

uint32_t semihost_write(int handle, const void *buffer, uint32_t bytes)
{
    uintptr_t args[3] = {(uintptr_t)handle, (uintptr_t)buffer, bytes};
    return (uint32_t)semihost_call(SYS_WRITE, args);
}

void semihost_write0(const char *text)
{
    semihost_call(SYS_WRITE0, text);
}

void semihost_exit(int code)
{
    /* SYS_EXIT_EXTENDED carries the code; plain SYS_EXIT on A32/T32 can only say success or failure. */
    uintptr_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)code};
    semihost_call(SYS_EXIT_EXTENDED, args);
    semihost_call(SYS_EXIT, (const void *)(uintptr_t)(code == 0 ? ADP_STOPPED_APPLICATION_EXIT : 0x20023));
    for (;;) {
    }
}
