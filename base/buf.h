/* Growable byte buffers and fixed-width big/little-endian encoding helpers.
 *
 * Everything written to disk or to the wire goes through these helpers:
 * never memcpy a struct. Big-endian keys make LMDB's memcmp order numeric. */
#ifndef RV_BASE_BUF_H
#define RV_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A growable buffer. data is owned by the buffer; rv_buf_free() frees it.
 * A zeroed struct is a valid empty buffer. */
struct rv_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int is_failed; /* Set once a growth failed; later appends are no-ops. */
};

void rv_buf_init(struct rv_buf *b);
void rv_buf_free(struct rv_buf *b);
void rv_buf_reset(struct rv_buf *b); /* len = 0, keeps the memory. */

/* Make room for n more bytes. Returns RV_OK or RV_ENOMEM (and sets
 * is_failed, so a sequence of appends can be checked once at the end). */
int rv_buf_reserve(struct rv_buf *b, size_t n);
void rv_buf_append(struct rv_buf *b, const void *p, size_t n);
void rv_buf_append_u8(struct rv_buf *b, uint8_t v);
void rv_buf_append_be16(struct rv_buf *b, uint16_t v);
void rv_buf_append_be32(struct rv_buf *b, uint32_t v);
void rv_buf_append_be64(struct rv_buf *b, uint64_t v);
/* A length-prefixed string: be16 length then the bytes. */
void rv_buf_append_str16(struct rv_buf *b, const char *s, size_t n);
/* p[0, n) as lower-case hex into out (2n + 1 bytes, NUL-terminated). */
void rv_hex(const uint8_t *p, size_t n, char *out);

/* Append printf-formatted text, whole (no length limit, no NUL kept). On
 * a growth failure nothing is appended and is_failed is set. */
void rv_buf_printf(struct rv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void
rv_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void
rv_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void
rv_put_be64(uint8_t *p, uint64_t v)
{
    rv_put_be32(p, (uint32_t)(v >> 32));
    rv_put_be32(p + 4, (uint32_t)v);
}

static inline uint16_t
rv_get_be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t
rv_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static inline uint64_t
rv_get_be64(const uint8_t *p)
{
    return (uint64_t)rv_get_be32(p) << 32 | rv_get_be32(p + 4);
}

/* Order-preserving encodings: memcmp order of the 8 bytes equals numeric
 * order of the value. */
static inline uint64_t
rv_i64_sortable(int64_t v)
{
    return (uint64_t)v ^ UINT64_C(0x8000000000000000);
}

static inline int64_t
rv_i64_from_sortable(uint64_t u)
{
    return (int64_t)(u ^ UINT64_C(0x8000000000000000));
}

/* Doubles: flip the sign bit of positives, all bits of negatives. NaN sorts
 * after +Inf (positive NaN bit patterns). */
static inline uint64_t
rv_f64_sortable(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    if (u & UINT64_C(0x8000000000000000))
        return ~u;
    return u | UINT64_C(0x8000000000000000);
}

static inline double
rv_f64_from_sortable(uint64_t u)
{
    double d;
    if (u & UINT64_C(0x8000000000000000))
        u &= ~UINT64_C(0x8000000000000000);
    else
        u = ~u;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline uint64_t
rv_f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static inline double
rv_f64_from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

#endif /* RV_BASE_BUF_H */
