#include "base/crc32c.h"

#include <string.h>

#define RV_CRC32C_POLY 0x82f63b78u /* Reflected Castagnoli polynomial. */

static uint32_t
rv_crc32c_soft(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (RV_CRC32C_POLY & (0u - (crc & 1u)));
    }
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t
rv_crc32c_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, sizeof w);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}

static int
rv_crc32c_has_hw(void)
{
    return __builtin_cpu_supports("sse4.2");
}
#else
static uint32_t
rv_crc32c_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    return rv_crc32c_soft(crc, p, n);
}

static int
rv_crc32c_has_hw(void)
{
    return 0;
}
#endif

uint32_t
rv_crc32c(uint32_t crc, const void *p, size_t n)
{
    crc = ~crc;
    if (rv_crc32c_has_hw())
        crc = rv_crc32c_hw(crc, p, n);
    else
        crc = rv_crc32c_soft(crc, p, n);
    return ~crc;
}
