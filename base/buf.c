#include "base/buf.h"

#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void
rv_buf_init(struct rv_buf *b)
{
    memset(b, 0, sizeof *b);
}

void
rv_buf_free(struct rv_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void
rv_buf_reset(struct rv_buf *b)
{
    b->len = 0;
    b->is_failed = 0;
}

int
rv_buf_reserve(struct rv_buf *b, size_t n)
{
    if (b->is_failed)
        return RV_ENOMEM;
    if (n <= b->cap - b->len)
        return RV_OK;
    size_t want = b->len + n;
    if (want < b->len) {
        b->is_failed = 1;
        return RV_ENOMEM;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want) {
        if (cap > SIZE_MAX / 2) {
            cap = want;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        b->is_failed = 1;
        return RV_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return RV_OK;
}

void
rv_buf_append(struct rv_buf *b, const void *p, size_t n)
{
    if (n == 0 || rv_buf_reserve(b, n) != RV_OK)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void
rv_buf_append_u8(struct rv_buf *b, uint8_t v)
{
    rv_buf_append(b, &v, 1);
}

void
rv_buf_append_be16(struct rv_buf *b, uint16_t v)
{
    uint8_t p[2];
    rv_put_be16(p, v);
    rv_buf_append(b, p, sizeof p);
}

void
rv_buf_append_be32(struct rv_buf *b, uint32_t v)
{
    uint8_t p[4];
    rv_put_be32(p, v);
    rv_buf_append(b, p, sizeof p);
}

void
rv_buf_append_be64(struct rv_buf *b, uint64_t v)
{
    uint8_t p[8];
    rv_put_be64(p, v);
    rv_buf_append(b, p, sizeof p);
}

void
rv_buf_append_str16(struct rv_buf *b, const char *s, size_t n)
{
    if (n > UINT16_MAX) {
        b->is_failed = 1;
        return;
    }
    rv_buf_append_be16(b, (uint16_t)n);
    rv_buf_append(b, s, n);
}

void
rv_buf_printf(struct rv_buf *b, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    /* One byte more for the NUL vsnprintf writes; len does not count it. */
    if (n > 0 && rv_buf_reserve(b, (size_t)n + 1) == RV_OK) {
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
}

void
rv_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}
