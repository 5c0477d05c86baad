/* Bearer tokens (token.h). */
#include "base/token.h"

#include "base/clock.h"
#include "base/err.h"

#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <string.h>

#define RV_TOKEN_PREFIX     "rvt_"
#define RV_TOKEN_PREFIX_LEN 4
#define RV_TOKEN_SECRET_LEN 32

static const char rv__hex[] = "0123456789abcdef";

static void
rv__hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = rv__hex[in[i] >> 4];
        out[2 * i + 1] = rv__hex[in[i] & 15];
    }
}

static int
rv__is_hex_lower(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return 0;
    }
    return 1;
}

int
rv_token_make(char text[RV_TOKEN_TEXT_CHARS + 1],
              char id[RV_TOKEN_ID_CHARS + 1], uint8_t sha256[RV_TOKEN_SHA256])
{
    uint8_t raw[RV_TOKEN_ID_CHARS / 2 + RV_TOKEN_SECRET_LEN];
    if (rv_random_bytes(raw, sizeof raw) != RV_OK)
        return RV_EIO;
    char *p = text;
    memcpy(p, RV_TOKEN_PREFIX, RV_TOKEN_PREFIX_LEN);
    p += RV_TOKEN_PREFIX_LEN;
    rv__hex_encode(raw, RV_TOKEN_ID_CHARS / 2, p);
    memcpy(id, p, RV_TOKEN_ID_CHARS);
    id[RV_TOKEN_ID_CHARS] = '\0';
    p += RV_TOKEN_ID_CHARS;
    *p++ = '_';
    rv__hex_encode(raw + RV_TOKEN_ID_CHARS / 2, RV_TOKEN_SECRET_LEN, p);
    p += 2 * RV_TOKEN_SECRET_LEN;
    *p = '\0';
    rv_token_hash(text, RV_TOKEN_TEXT_CHARS, sha256);
    memset(raw, 0, sizeof raw);
    return RV_OK;
}

int
rv_token_id_valid(const char *id, size_t n)
{
    return id != NULL && n == RV_TOKEN_ID_CHARS && rv__is_hex_lower(id, n);
}

int
rv_token_parse(const char *text, size_t n, char id[RV_TOKEN_ID_CHARS + 1])
{
    const size_t at_sep = RV_TOKEN_PREFIX_LEN + RV_TOKEN_ID_CHARS;
    if (text == NULL || n != RV_TOKEN_TEXT_CHARS ||
        memcmp(text, RV_TOKEN_PREFIX, RV_TOKEN_PREFIX_LEN) != 0 ||
        text[at_sep] != '_' ||
        !rv__is_hex_lower(text + RV_TOKEN_PREFIX_LEN, RV_TOKEN_ID_CHARS) ||
        !rv__is_hex_lower(text + at_sep + 1, n - at_sep - 1))
        return RV_EUNAUTHENTICATED;
    memcpy(id, text + RV_TOKEN_PREFIX_LEN, RV_TOKEN_ID_CHARS);
    id[RV_TOKEN_ID_CHARS] = '\0';
    return RV_OK;
}

void
rv_token_hash(const char *text, size_t n, uint8_t out[RV_TOKEN_SHA256])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, n, (const uint8_t *)text);
    sha256_digest(&ctx, RV_TOKEN_SHA256, out);
}

int
rv_token_hash_equal(const uint8_t a[RV_TOKEN_SHA256],
                    const uint8_t b[RV_TOKEN_SHA256])
{
    return memeql_sec(a, b, RV_TOKEN_SHA256) != 0;
}

static int
rv__lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int
rv_token_from_header(const char *value, size_t n, const char **tok,
                     size_t *tok_n)
{
    static const char scheme[] = "bearer";
    const size_t sn = sizeof scheme - 1;
    char id[RV_TOKEN_ID_CHARS + 1];
    if (value == NULL || n == 0)
        return RV_ENOTFOUND;
    if (n > RV_TOKEN_MAX_HEADER || n <= sn)
        return RV_EUNAUTHENTICATED;
    for (size_t i = 0; i < sn; i++) {
        if (rv__lower((unsigned char)value[i]) != scheme[i])
            return RV_EUNAUTHENTICATED;
    }
    size_t at = sn;
    if (value[at] != ' ')
        return RV_EUNAUTHENTICATED;
    while (at < n && value[at] == ' ')
        at++;
    /* rv_token_parse refuses every byte outside the token form, commas of
     * repeated headers and trailing spaces included. */
    if (rv_token_parse(value + at, n - at, id) != RV_OK)
        return RV_EUNAUTHENTICATED;
    *tok = value + at;
    *tok_n = n - at;
    return RV_OK;
}
