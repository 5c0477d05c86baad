/* base/: error table, CRC-32C, buffers and order-preserving encodings,
 * the random generator, log levels. */
#include "base/buf.h"
#include "base/clock.h"
#include "base/crc32c.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/token.h"
#include "tests/lib/harness.h"

#include <math.h>
#include <string.h>

/* ---- Tests ------------------------------------------------------------- */

static void
test_every_error_code_has_a_text_and_a_name(void)
{
    for (int i = 0; i < RV_ERR_COUNT; i++) {
        CHECK(rv_strerror(i) != NULL && rv_strerror(i)[0] != '\0');
        CHECK(strncmp(rv_errname(i), "RV_", 3) == 0);
    }
    CHECK(strcmp(rv_strerror(-1), "unknown error") == 0);
    CHECK(strcmp(rv_strerror(RV_ERR_COUNT), "unknown error") == 0);
    CHECK(strcmp(rv_errname(RV_ENOTFOUND), "RV_ENOTFOUND") == 0);
}

static void
test_errname_out_of_range_names_no_code(void)
{
    CHECK(strcmp(rv_errname(-1), "RV_E?") == 0);
    CHECK(strcmp(rv_errname(RV_ERR_COUNT), "RV_E?") == 0);
    for (int i = 0; i < RV_ERR_COUNT; i++)
        CHECK(strcmp(rv_errname(i), "RV_E?") != 0);
}

static void
test_clock_can_be_injected(void)
{
    struct rv_clock_manual m = {UINT64_C(1700000000000), 5};
    struct rv_clock c;
    rv_clock_manual_init(&c, &m);
    CHECK(rv_clock_read_wall_ms(&c) == UINT64_C(1700000000000));
    CHECK(rv_clock_read_mono_ns(&c) == 5);
    m.mono_ns += 1000;
    CHECK(rv_clock_read_mono_ns(&c) == 1005);
    CHECK(rv_clock_read_wall_ms(rv_clock_system()) > UINT64_C(1600000000000));
    uint64_t t0 = rv_clock_read_mono_ns(NULL);
    CHECK(rv_clock_read_mono_ns(rv_clock_system()) >= t0);
}

static void
test_errmsg_wrap_prefixes_and_truncates(void)
{
    char msg[RV_ERRMSG_SIZE];
    rv_errmsg_printf(msg, "open %s: %s", "dir", "No such file");
    rv_errmsg_wrap(msg, "store");
    CHECK(strcmp(msg, "store: open dir: No such file") == 0);
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    rv_errmsg_printf(msg, "%s", big);
    CHECK(strlen(msg) == RV_ERRMSG_SIZE - 1);
    rv_errmsg_wrap(msg, big);
    CHECK(strlen(msg) < RV_ERRMSG_SIZE);
    rv_errmsg_printf(NULL, "ignored");
}

static void
test_crc32c_matches_the_standard_check_values(void)
{
    /* RFC 3720 B.4 and the common "123456789" check value. */
    CHECK(rv_crc32c(0, "123456789", 9) == 0xe3069283u);
    uint8_t zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    CHECK(rv_crc32c(0, zeros, 32) == 0x8a9136aau);
    CHECK(rv_crc32c(0, ones, 32) == 0x62a8ab43u);
    uint8_t inc[32];
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    CHECK(rv_crc32c(0, inc, 32) == 0x46dd794eu);
    /* Incremental equals one-shot at every split point. */
    for (size_t k = 0; k <= 9; k++)
        CHECK(rv_crc32c(rv_crc32c(0, "123456789", k), "123456789" + k, 9 - k) ==
              0xe3069283u);
}

static void
test_buf_grows_and_encodes_big_endian(void)
{
    struct rv_buf b;
    rv_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        rv_buf_append_be32(&b, (uint32_t)i);
    CHECK(!b.is_failed && b.len == 4000);
    CHECK(rv_get_be32(b.data + 4 * 999) == 999);
    rv_buf_reset(&b);
    rv_buf_append_be16(&b, 0x0102);
    rv_buf_append_be64(&b, UINT64_C(0x0102030405060708));
    rv_buf_append_str16(&b, "abc", 3);
    CHECK(b.len == 2 + 8 + 5);
    CHECK(b.data[0] == 1 && b.data[1] == 2 && b.data[2] == 1 && b.data[9] == 8);
    CHECK(rv_get_be16(b.data + 10) == 3 && memcmp(b.data + 12, "abc", 3) == 0);
    rv_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0);
}

static void
test_buf_printf_appends_whole_text(void)
{
    struct rv_buf b;
    rv_buf_init(&b);
    rv_buf_append(&b, "x", 1);
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    rv_buf_printf(&b, "%s|%d", big, 42);
    /* Nothing cut at any line length, and no NUL counted. */
    CHECK(!b.is_failed && b.len == 1 + 2999 + 3);
    CHECK(b.data[0] == 'x' && b.data[2999] == 'a');
    CHECK(memcmp(b.data + 3000, "|42", 3) == 0);
    rv_buf_printf(&b, "%s", "");
    CHECK(b.len == 3003);
    rv_buf_free(&b);
}

static void
test_random_bytes_come_from_the_kernel(void)
{
    uint8_t a[32] = {0}, z[32] = {0};
    CHECK(rv_random_bytes(a, sizeof a) == RV_OK);
    CHECK(memcmp(a, z, sizeof a) != 0); /* 2^-256 to fail by chance. */
    uint64_t x = rv_random_id(&x), y = rv_random_id(&y);
    CHECK(x != 0 && y != 0 && x != y);
}

static void
test_parse_takes_whole_decimal_numbers_only(void)
{
    uint64_t u = 7;
    int64_t i = 7;
    const char *end;
    CHECK(rv_parse_u64("0", &u) == 0 && u == 0);
    CHECK(rv_parse_u64("18446744073709551615", &u) == 0 && u == UINT64_MAX);
    u = 7;
    /* Each is refused and leaves *out as it was. */
    static const char *const bad_u[] = {
        "", "-1", "+1", " 1", "1 ", "1x", "0x10", "18446744073709551616"};
    for (size_t k = 0; k < sizeof bad_u / sizeof bad_u[0]; k++)
        CHECK(rv_parse_u64(bad_u[k], &u) == -1 && u == 7);
    CHECK(rv_parse_u64(NULL, &u) == -1 && u == 7);
    CHECK(rv_parse_i64("-9223372036854775808", &i) == 0 && i == INT64_MIN);
    CHECK(rv_parse_i64("42", &i) == 0 && i == 42);
    i = 7;
    static const char *const bad_i[] = {
        "", "-", "+1", " -1", "--1", "1e3", "9223372036854775808"};
    for (size_t k = 0; k < sizeof bad_i / sizeof bad_i[0]; k++)
        CHECK(rv_parse_i64(bad_i[k], &i) == -1 && i == 7);
    /* The prefix forms stop at the first non-digit. */
    CHECK(rv_parse_u64_prefix("12=a", &u, &end) == 0 && u == 12 && *end == '=');
    CHECK(rv_parse_i64_prefix("-3,", &i, &end) == 0 && i == -3 && *end == ',');
    CHECK(rv_parse_u64_prefix("=1", &u, &end) == -1);
}

static void
test_sortable_encodings_preserve_order(void)
{
    const int64_t ints[] = {INT64_MIN, -1000, -1, 0, 1, 42, INT64_MAX};
    for (size_t i = 0; i + 1 < sizeof ints / sizeof *ints; i++) {
        uint8_t a[8], b[8];
        rv_put_be64(a, rv_i64_sortable(ints[i]));
        rv_put_be64(b, rv_i64_sortable(ints[i + 1]));
        CHECK(memcmp(a, b, 8) < 0);
        CHECK(rv_i64_from_sortable(rv_i64_sortable(ints[i])) == ints[i]);
    }
    const double ds[] = {-INFINITY, -1e300, -1.5,  -0.0,    0.0,
                         1e-300,    2.5,    1e300, INFINITY};
    for (size_t i = 0; i + 1 < sizeof ds / sizeof *ds; i++) {
        uint8_t a[8], b[8];
        rv_put_be64(a, rv_f64_sortable(ds[i]));
        rv_put_be64(b, rv_f64_sortable(ds[i + 1]));
        CHECK(memcmp(a, b, 8) <= 0);
        double back = rv_f64_from_sortable(rv_f64_sortable(ds[i]));
        CHECK(memcmp(&back, &ds[i], sizeof back) == 0);
    }
    CHECK(rv_f64_bits(rv_f64_from_bits(UINT64_C(0x7ff8000000000001))) ==
          UINT64_C(0x7ff8000000000001));
}

static void
test_rng_is_deterministic_per_seed(void)
{
    struct rv_rng a, b, c;
    rv_rng_seed(&a, 7);
    rv_rng_seed(&b, 7);
    rv_rng_seed(&c, 8);
    int differs = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = rv_rng_next(&a);
        CHECK(x == rv_rng_next(&b));
        differs |= x != rv_rng_next(&c);
        double d = rv_rng_double(&a);
        CHECK(d >= 0.0 && d < 1.0);
        CHECK(d == rv_rng_double(&b));
        CHECK(rv_rng_below(&a, 10) < 10);
        (void)rv_rng_below(&b, 10);
    }
    CHECK(differs);
}

static void
test_log_levels_parse_and_filter(void)
{
    enum rv_log_level l;
    CHECK(rv_log_level_parse("warn", &l) == 0 && l == RV_LOG_WARN);
    CHECK(rv_log_level_parse("loud", &l) == -1);
    CHECK(strcmp(rv_log_level_name(RV_LOG_ERROR), "ERROR") == 0);
    rv_logf(NULL, RV_LOG_ERROR, "test", "a NULL log discards %d", 1);
    CHECK(rv_clock_wall_ms() > UINT64_C(1600000000000));
    uint64_t t0 = rv_clock_mono_ns();
    CHECK(rv_clock_mono_ns() >= t0);
}

/* ---- Tokens -------------------------------------------------------------- */

static void
test_tokens_are_random_parsed_and_hashed(void)
{
    char a[RV_TOKEN_TEXT_CHARS + 1], b[RV_TOKEN_TEXT_CHARS + 1];
    char ida[RV_TOKEN_ID_CHARS + 1], idb[RV_TOKEN_ID_CHARS + 1];
    char id[RV_TOKEN_ID_CHARS + 1];
    uint8_t ha[RV_TOKEN_SHA256], hb[RV_TOKEN_SHA256], h[RV_TOKEN_SHA256];
    CHECK(rv_token_make(a, ida, ha) == RV_OK);
    CHECK(rv_token_make(b, idb, hb) == RV_OK);
    CHECK(strlen(a) == RV_TOKEN_TEXT_CHARS && strncmp(a, "rvt_", 4) == 0);
    CHECK(strcmp(a, b) != 0 && strcmp(ida, idb) != 0);
    CHECK(rv_token_parse(a, strlen(a), id) == RV_OK && strcmp(id, ida) == 0);
    rv_token_hash(a, strlen(a), h);
    CHECK(rv_token_hash_equal(h, ha) && !rv_token_hash_equal(h, hb));
    CHECK(rv_token_id_valid(ida, strlen(ida)));
    char bad[RV_TOKEN_TEXT_CHARS + 2];
    memcpy(bad, a, sizeof a);
    bad[10] = 'G'; /* Not lower-case hex. */
    CHECK(rv_token_parse(bad, strlen(bad), id) == RV_EUNAUTHENTICATED);
    memcpy(bad, a, sizeof a);
    bad[RV_TOKEN_ID_CHARS + 4] = '-'; /* The separator. */
    CHECK(rv_token_parse(bad, strlen(bad), id) == RV_EUNAUTHENTICATED);
    CHECK(rv_token_parse(a, strlen(a) - 1, id) == RV_EUNAUTHENTICATED);
    CHECK(rv_token_parse(NULL, 0, id) == RV_EUNAUTHENTICATED);
}

static void
test_authorization_header_takes_exactly_a_bearer_token(void)
{
    char t[RV_TOKEN_TEXT_CHARS + 1], id[RV_TOKEN_ID_CHARS + 1];
    char v[RV_TOKEN_MAX_HEADER + 64];
    uint8_t h[RV_TOKEN_SHA256];
    const char *tok;
    size_t tn;
    CHECK(rv_token_make(t, id, h) == RV_OK);
    /* Each case is its prefix, the token, its suffix. */
    static const char *const good[][2] = {
        {"Bearer ", ""}, {"bearer ", ""}, {"BEARER   ", ""}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(v, sizeof v, "%s%s%s", good[i][0], t, good[i][1]);
        CHECK(rv_token_from_header(v, strlen(v), &tok, &tn) == RV_OK);
        CHECK(tn == strlen(t) && memcmp(tok, t, tn) == 0);
    }
    static const char *const bad[][2] = {
        {"Basic ", ""},     {"Bearer", ""},
        {"Bearer ", " "},   {"Bearer ", ", Bearer x"},
        {"Bearer\t", ""},   {"Bearer ", "\x01"},
        {"Token ", ""},     {" Bearer ", ""},
        {"Bearer ", "\xff"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(v, sizeof v, "%s%s%s", bad[i][0], t, bad[i][1]);
        CHECK(rv_token_from_header(v, strlen(v), &tok, &tn) ==
              RV_EUNAUTHENTICATED);
    }
    CHECK(rv_token_from_header("Bearer ", 7, &tok, &tn) == RV_EUNAUTHENTICATED);
    CHECK(rv_token_from_header(NULL, 0, &tok, &tn) == RV_ENOTFOUND);
    CHECK(rv_token_from_header("", 0, &tok, &tn) == RV_ENOTFOUND);
    memset(v, 'a', sizeof v);
    memcpy(v, "Bearer ", 7);
    CHECK(rv_token_from_header(v, RV_TOKEN_MAX_HEADER + 1, &tok, &tn) ==
          RV_EUNAUTHENTICATED);
}

static const struct rv_test tests[] = {
    {"tokens_are_random_parsed_and_hashed",
     test_tokens_are_random_parsed_and_hashed},
    {"authorization_header_takes_exactly_a_bearer_token",
     test_authorization_header_takes_exactly_a_bearer_token},
    {"every_error_code_has_a_text_and_a_name",
     test_every_error_code_has_a_text_and_a_name},
    {"errname_out_of_range_names_no_code",
     test_errname_out_of_range_names_no_code},
    {"clock_can_be_injected", test_clock_can_be_injected},
    {"errmsg_wrap_prefixes_and_truncates",
     test_errmsg_wrap_prefixes_and_truncates},
    {"crc32c_matches_the_standard_check_values",
     test_crc32c_matches_the_standard_check_values},
    {"buf_grows_and_encodes_big_endian", test_buf_grows_and_encodes_big_endian},
    {"buf_printf_appends_whole_text", test_buf_printf_appends_whole_text},
    {"parse_takes_whole_decimal_numbers_only",
     test_parse_takes_whole_decimal_numbers_only},
    {"random_bytes_come_from_the_kernel",
     test_random_bytes_come_from_the_kernel},
    {"sortable_encodings_preserve_order",
     test_sortable_encodings_preserve_order},
    {"rng_is_deterministic_per_seed", test_rng_is_deterministic_per_seed},
    {"log_levels_parse_and_filter", test_log_levels_parse_and_filter},
    {NULL, NULL}};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
