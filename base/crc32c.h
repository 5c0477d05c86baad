/* CRC-32C (Castagnoli), as used by iSCSI, ext4 and etcd's WAL.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a bitwise
 * implementation otherwise. Any thread. */
#ifndef RV_BASE_CRC32C_H
#define RV_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue crc over n bytes at p. Start with crc = 0. crc32c("123456789")
 * is 0xe3069283. */
uint32_t rv_crc32c(uint32_t crc, const void *p, size_t n);

#endif /* RV_BASE_CRC32C_H */
