/* Arm semihosting calls (the "bkpt 0xAB" interface QEMU serves with -semihosting-config enable=on). */
#ifndef TINYKD_SEMIHOST_H
#define TINYKD_SEMIHOST_H

#include <stdint.h>

#define SEMIHOST_MODE_RB 1
#define SEMIHOST_MODE_WB 5

int semihost_open(const char *path, int mode);               /* handle, or -1 */
int semihost_close(int handle);                              /* 0 on success */
uint32_t semihost_read(int handle, void *buffer, uint32_t bytes);         /* bytes NOT read */
uint32_t semihost_write(int handle, const void *buffer, uint32_t bytes);  /* bytes NOT written */
void semihost_write0(const char *text);                      /* to the debug console */
void semihost_exit(int code) __attribute__((noreturn));      /* QEMU exits with `code` */

#endif
