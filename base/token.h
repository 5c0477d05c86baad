/* Bearer tokens: their text form, their SHA-256 and the Authorization
 * header that carries them.
 *
 * A token is "rvt_" + 16 lower-case hex digits (the token id, public:
 * audit records and listings name it) + "_" + 64 lower-case hex digits
 * (256 random bits from the kernel, the secret). Only the SHA-256 of the
 * whole text is ever stored; the text is shown once, to whoever made it,
 * and is never logged. The id in the text lets a node find the stored hash
 * without a lookup keyed by anything secret; the hashes are then compared
 * in constant time.
 *
 * Every function is pure (rv_token_make excepted: it reads the kernel's
 * random source) and safe on any thread. Inputs are untrusted: lengths are
 * given, bytes need not be NUL-terminated or printable. */
#ifndef RV_BASE_TOKEN_H
#define RV_BASE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define RV_TOKEN_ID_CHARS   16
#define RV_TOKEN_TEXT_CHARS (4 + RV_TOKEN_ID_CHARS + 1 + 64)
#define RV_TOKEN_SHA256     32
/* The longest Authorization header value looked at; longer is refused. */
#define RV_TOKEN_MAX_HEADER 512

/* Make a new token: its text (NUL-terminated) into text, its id into id
 * (NUL-terminated) and the SHA-256 of the text into sha256. Errors: RV_EIO
 * when the kernel gives no random bytes (no weaker fallback is used). */
int rv_token_make(char text[RV_TOKEN_TEXT_CHARS + 1],
                  char id[RV_TOKEN_ID_CHARS + 1],
                  uint8_t sha256[RV_TOKEN_SHA256]);

/* Check that text[0..n) has the token form and copy its id into id.
 * Returns RV_OK or RV_EUNAUTHENTICATED (wrong length, prefix, separator,
 * or a digit outside [0-9a-f]). */
int rv_token_parse(const char *text, size_t n, char id[RV_TOKEN_ID_CHARS + 1]);

/* 1 if id[0..n) is a token id (16 lower-case hex digits), else 0. */
int rv_token_id_valid(const char *id, size_t n);

/* SHA-256 of text[0..n). */
void rv_token_hash(const char *text, size_t n, uint8_t out[RV_TOKEN_SHA256]);

/* 1 if the two hashes are equal, else 0, in time independent of where
 * they differ. */
int rv_token_hash_equal(const uint8_t a[RV_TOKEN_SHA256],
                        const uint8_t b[RV_TOKEN_SHA256]);

/* The token of an Authorization header value: "Bearer" (any case), one or
 * more spaces, the token, nothing after it. *tok points into value.
 * Returns RV_OK, RV_ENOTFOUND for a NULL or empty value (no credentials),
 * or RV_EUNAUTHENTICATED for anything else that is not exactly that (another
 * scheme, a value past RV_TOKEN_MAX_HEADER, a comma from repeated headers,
 * control bytes, a token not in the token form). */
int rv_token_from_header(const char *value, size_t n, const char **tok,
                         size_t *tok_n);

#endif /* RV_BASE_TOKEN_H */
