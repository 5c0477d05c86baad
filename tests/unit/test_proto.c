/* proto/: the entry envelope and bounded decoding of command batches. */
#include "base/clock.h"
#include "proto/contract.h"
#include "proto/metrics_builder.h"
#include "proto/proto.h"
#include "tests/lib/harness.h"

#include <stdio.h>
#include <string.h>

/* ---- Helpers ----------------------------------------------------------- */

/* A batch with one log_batch command of n points. */
static void
make_entry(struct rv_buf *out, size_t n)
{
    struct proto_metrics_builder mb;
    proto_metrics_init(&mb);
    for (size_t i = 0; i < n; i++)
        if (proto_metrics_add(&mb, "loss", NULL, (int64_t)i, 1000 + (int64_t)i,
                              0.5 * (double)i, NULL) != RV_OK)
            abort();
    Rv__Metrics m;
    proto_metrics_view(&mb, &m);
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    lb.run_id = "run-1";
    lb.metrics = &m;
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    cmd.has_client_id = cmd.has_seq = 1;
    cmd.client_id = 7;
    cmd.seq = 3;
    cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd.log_batch = &lb;
    Rv__CommandBatch b = RV__COMMAND_BATCH__INIT;
    b.n_commands = 1;
    b.commands = cmds;
    char errmsg[RV_ERRMSG_SIZE];
    rv_buf_init(out);
    if (proto_envelope_encode(&b, out, errmsg) != RV_OK)
        abort();
    proto_metrics_free(&mb);
}

/* ---- Tests ------------------------------------------------------------- */

static void
test_envelope_round_trip_is_padded_to_8_bytes(void)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    for (size_t n = 0; n < 40; n++) {
        struct rv_buf e;
        make_entry(&e, n);
        CHECK(e.len % 8 == 0);
        CHECK(rv_get_be32(e.data) == PROTO_MAGIC);
        CHECK(e.len == proto_envelope_size(rv_get_be32(e.data + 8)));
        Rv__CommandBatch *b = NULL;
        CHECK_OK(proto_entry_decode(e.data, e.len, &b, errmsg), errmsg);
        CHECK(b->n_commands == 1);
        const Rv__Command *c = b->commands[0];
        CHECK(c->client_id == 7 && c->seq == 3);
        CHECK(c->body_case == RV__COMMAND__BODY_LOG_BATCH);
        CHECK(strcmp(proto_command_name(c), "log_batch") == 0);
        CHECK(c->log_batch->metrics->n_values == n);
        for (size_t i = 0; i < n; i++)
            CHECK(c->log_batch->metrics->steps[i] == (int64_t)i);
        proto_batch_free(b);
        rv_buf_free(&e);
    }
}

static void
test_seal_and_wrap_equal_encode(void)
{
    struct rv_buf e;
    make_entry(&e, 5);
    size_t n = rv_get_be32(e.data + 8);
    uint8_t out[512];
    CHECK(e.len <= sizeof out);
    /* Packed in place (garbage where the header and padding go). */
    memset(out, 0xa5, sizeof out);
    memcpy(out + PROTO_HEADER_BYTES, e.data + PROTO_HEADER_BYTES, n);
    proto_envelope_seal(out, n);
    CHECK(proto_envelope_size(n) == e.len);
    CHECK(memcmp(out, e.data, e.len) == 0);
    memset(out, 0xa5, sizeof out);
    proto_envelope_wrap(e.data + PROTO_HEADER_BYTES, n, out);
    CHECK(memcmp(out, e.data, e.len) == 0);
    rv_buf_free(&e);
}

static void
test_every_truncation_is_a_clear_error(void)
{
    struct rv_buf e;
    char errmsg[RV_ERRMSG_SIZE];
    make_entry(&e, 10);
    for (size_t len = 0; len < e.len; len++) {
        Rv__CommandBatch *b = NULL;
        errmsg[0] = '\0';
        CHECK_RC(proto_entry_decode(e.data, len, &b, errmsg), RV_EMALFORMED,
                 errmsg);
        CHECK(errmsg[0] != '\0');
        CHECK(b == NULL);
    }
    rv_buf_free(&e);
}

static void
test_every_bit_flip_is_detected(void)
{
    struct rv_buf e;
    char errmsg[RV_ERRMSG_SIZE];
    make_entry(&e, 10);
    for (size_t i = 0; i < e.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            e.data[i] ^= (uint8_t)(1u << bit);
            Rv__CommandBatch *b = NULL;
            int rc = proto_entry_decode(e.data, e.len, &b, errmsg);
            e.data[i] ^= (uint8_t)(1u << bit);
            if (rc == RV_OK) {
                proto_batch_free(b);
                RV_CHECK_FAIL("flip of byte %zu bit %d not detected", i, bit);
                return;
            }
            /* A flip raising the version field reads as a newer
             * runvault's entry: refused too (a node stops on it). */
            CHECK(rc == RV_EMALFORMED ||
                  (rc == RV_EVERSION && (i == 4 || i == 5)));
        }
    }
    rv_buf_free(&e);
}

static void
test_errors_name_the_problem(void)
{
    struct rv_buf e;
    char errmsg[RV_ERRMSG_SIZE];
    Rv__CommandBatch *b = NULL;
    make_entry(&e, 3);
    e.data[0] ^= 1;
    CHECK_RC(proto_entry_decode(e.data, e.len, &b, errmsg), RV_EMALFORMED,
             errmsg);
    CHECK(strstr(errmsg, "magic") != NULL);
    e.data[0] ^= 1;
    e.data[5] = 9; /* A newer runvault's entry: refused as such. */
    CHECK_RC(proto_entry_decode(e.data, e.len, &b, errmsg), RV_EVERSION,
             errmsg);
    CHECK(strstr(errmsg, "version 9") != NULL);
    CHECK(strstr(errmsg, "upgrade") != NULL);
    e.data[5] = 0; /* No runvault wrote version 0. */
    CHECK_RC(proto_entry_decode(e.data, e.len, &b, errmsg), RV_EMALFORMED,
             errmsg);
    CHECK(strstr(errmsg, "version") != NULL);
    e.data[5] = PROTO_FORMAT_VERSION;
    e.data[PROTO_HEADER_BYTES] ^= 0x40;
    CHECK_RC(proto_entry_decode(e.data, e.len, &b, errmsg), RV_EMALFORMED,
             errmsg);
    CHECK(strstr(errmsg, "CRC") != NULL);
    e.data[PROTO_HEADER_BYTES] ^= 0x40;
    if (e.len > PROTO_HEADER_BYTES + rv_get_be32(e.data + 8)) {
        e.data[e.len - 1] = 1;
        CHECK_RC(proto_entry_decode(e.data, e.len, &b, errmsg), RV_EMALFORMED,
                 errmsg);
        CHECK(strstr(errmsg, "padding") != NULL);
    }
    rv_buf_free(&e);
}

static void
test_garbage_payload_with_a_valid_envelope_is_malformed(void)
{
    struct rv_rng rng;
    char errmsg[RV_ERRMSG_SIZE];
    uint8_t payload[256], entry[256 + 32];
    uint64_t seed = rv_test_seed(1234);
    rv_rng_seed(&rng, seed);
    int n_malformed = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)rv_rng_below(&rng, sizeof payload);
        for (size_t i = 0; i < n; i++)
            payload[i] = (uint8_t)rv_rng_next(&rng);
        proto_envelope_wrap(payload, n, entry);
        Rv__CommandBatch *b = NULL;
        int rc = proto_entry_decode(entry, proto_envelope_size(n), &b, errmsg);
        if (rc == RV_OK)
            proto_batch_free(b); /* Random bytes may form a valid batch. */
        else if (rc == RV_EMALFORMED)
            n_malformed++;
        else
            RV_CHECK_FAIL("seed %llu iter %d: rc %s", (unsigned long long)seed,
                          iter, rv_errname(rc));
    }
    CHECK(n_malformed > 1000);
}

static void
test_oversized_payload_is_refused_before_unpacking(void)
{
    char errmsg[RV_ERRMSG_SIZE];
    Rv__CommandBatch *b = NULL;
    static uint8_t big[PROTO_MAX_PAYLOAD_BYTES + 16];
    CHECK_RC(proto_batch_decode(big, sizeof big, &b, errmsg), RV_ETOOBIG,
             errmsg);
    uint8_t hdr[PROTO_HEADER_BYTES];
    proto_envelope_wrap("", 0, hdr);
    rv_put_be32(hdr + 8, UINT32_MAX);
    CHECK_RC(proto_envelope_open(hdr, sizeof hdr, &(const uint8_t *){NULL},
                                 &(size_t){0}, errmsg),
             RV_EMALFORMED, errmsg);
    /* An encode over the entry limit is refused. */
    static char text[PROTO_MAX_PAYLOAD_BYTES];
    memset(text, 'a', sizeof text - 1);
    Rv__LogLine line = RV__LOG_LINE__INIT, *lines[1] = {&line};
    line.text = text;
    Rv__LogLines ll = RV__LOG_LINES__INIT;
    ll.run_id = "r";
    ll.n_lines = 1;
    ll.lines = lines;
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    cmd.body_case = RV__COMMAND__BODY_LOG_LINES;
    cmd.log_lines = &ll;
    Rv__CommandBatch batch = RV__COMMAND_BATCH__INIT;
    batch.n_commands = 1;
    batch.commands = cmds;
    struct rv_buf out;
    rv_buf_init(&out);
    CHECK_RC(proto_envelope_encode(&batch, &out, errmsg), RV_ETOOBIG, errmsg);
    CHECK(out.len == 0);
    rv_buf_free(&out);
}

static void
test_status_names_round_trip(void)
{
    Rv__RunStatus st;
    for (int i = RV__RUN_STATUS__RUNNING; i <= RV__RUN_STATUS__CRASHED; i++) {
        CHECK(proto_status_parse(proto_status_name((Rv__RunStatus)i), &st) ==
              0);
        CHECK((int)st == i);
    }
    CHECK(proto_status_parse("finished", &st) == 0 &&
          st == RV__RUN_STATUS__FINISHED);
    CHECK(proto_status_parse("DONE", &st) == -1);
    CHECK(strcmp(proto_status_name((Rv__RunStatus)99), "UNKNOWN") == 0);
}

static void
test_metrics_builder_keeps_dictionaries_and_columns(void)
{
    struct proto_metrics_builder mb;
    proto_metrics_init(&mb);
    CHECK(proto_metrics_n_series_with(&mb, "loss", NULL) == 1);
    for (int i = 0; i < 6; i++)
        CHECK(proto_metrics_add(&mb, i % 2 ? "acc" : "loss", "", i, 1000 + i,
                                (double)i, NULL) == RV_OK);
    Rv__Metrics m;
    proto_metrics_view(&mb, &m);
    /* Only the "" context: neither a context dictionary nor ctx_idx. */
    CHECK(m.n_keys == 2 && m.n_contexts == 0 && m.n_ctx_idx == 0);
    CHECK(m.n_key_idx == 6 && m.n_steps == 6 && m.n_values == 6);
    CHECK(strcmp(m.keys[m.key_idx[3]], "acc") == 0);
    CHECK(m.steps[5] == 5 && m.timestamps_ms[5] == 1005 && m.values[4] == 4);
    CHECK(proto_metrics_n_series_with(&mb, "loss", "eval") == 4);
    CHECK(proto_metrics_add(&mb, "loss", "eval", 6, 1006, 6, NULL) == RV_OK);
    proto_metrics_view(&mb, &m);
    CHECK(m.n_contexts == 2 && m.n_ctx_idx == 7);
    CHECK(strcmp(m.contexts[m.ctx_idx[6]], "eval") == 0);
    CHECK(m.ctx_idx[0] == 0 && m.contexts[0][0] == '\0');
    proto_metrics_reset(&mb);
    proto_metrics_view(&mb, &m);
    CHECK(m.n_keys == 0 && m.n_values == 0);
    CHECK(proto_metrics_add(&mb, "lr", "train", 0, 0, 0.1, NULL) == RV_OK);
    proto_metrics_view(&mb, &m);
    /* One context that is not "": the dictionary, no per-point index. */
    CHECK(m.n_contexts == 1 && m.n_ctx_idx == 0);
    proto_metrics_free(&mb);
}

static void
test_metrics_builder_byte_estimate_never_falls_short(void)
{
    struct proto_metrics_builder mb;
    proto_metrics_init(&mb);
    size_t sum = 0;
    for (int i = 0; i < 3000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i % 37);
        size_t add = 0;
        int64_t step = i % 2 ? -((int64_t)i << 20) : i;
        CHECK(proto_metrics_add(&mb, key, i % 5 ? "" : "eval", step,
                                1700000000000 + i, 0.25 * i, &add) == RV_OK);
        CHECK(add <= proto_metrics_point_bytes_max(strlen(key), 4, step,
                                                   1700000000000 + i));
        sum += add;
        Rv__Metrics m;
        proto_metrics_view(&mb, &m);
        /* Seven packed fields' tags and lengths: at most 4 bytes each. */
        CHECK(rv__metrics__get_packed_size(&m) <= sum + 7 * 4);
    }
    proto_metrics_free(&mb);
}

/* Point i of the many-series tests: key k<i % nk>, context c<i % nc>
 * ("" for c0). */
static void
series_of(size_t i, size_t nk, size_t nc, char key[32], char ctx[32])
{
    snprintf(key, 32, "k%zu", i % nk);
    if (i % nc == 0)
        ctx[0] = '\0';
    else
        snprintf(ctx, 32, "c%zu", i % nc);
}

/* Add n points over nk keys and nc contexts, interleaved, then check every
 * point's strings through the view and that no entry is doubled. */
static void
check_many_series(struct proto_metrics_builder *mb, size_t n, size_t nk,
                  size_t nc)
{
    char key[32], ctx[32];
    for (size_t i = 0; i < n; i++) {
        series_of(i, nk, nc, key, ctx);
        CHECK(proto_metrics_add(mb, key, ctx, (int64_t)i, 1000, 0.5, NULL) ==
              RV_OK);
    }
    Rv__Metrics m;
    proto_metrics_view(mb, &m);
    CHECK(m.n_keys == nk && m.n_values == n);
    CHECK(m.n_contexts == (nc > 1 ? nc : 0));
    for (size_t i = 0; i < n; i++) {
        series_of(i, nk, nc, key, ctx);
        CHECK(strcmp(m.keys[m.key_idx[i]], key) == 0);
        CHECK(nc == 1 || strcmp(m.contexts[m.ctx_idx[i]], ctx) == 0);
        CHECK(m.steps[i] == (int64_t)i);
    }
    /* The index answers for known entries and for new ones. */
    CHECK(proto_metrics_n_series_with(mb, "k0", "") == nk * nc);
    CHECK(proto_metrics_n_series_with(mb, "new", "") == (nk + 1) * nc);
    CHECK(proto_metrics_n_series_with(mb, "k1", "new") == nk * (nc + 1));
}

static void
test_metrics_builder_many_keys_and_contexts(void)
{
    struct proto_metrics_builder mb;
    proto_metrics_init(&mb);
    /* The gateway's worst case: as many series and points as a command
     * may carry (linear dictionaries would make this quadratic). */
    check_many_series(&mb, CONTRACT_MAX_POINTS_PER_COMMAND,
                      CONTRACT_MAX_SERIES_PER_COMMAND, 1);
    proto_metrics_reset(&mb);
    /* Keys and contexts interleaved, both past the scan size. */
    check_many_series(&mb, 20000, 997, 41);
    proto_metrics_reset(&mb);
    /* Reset keeps the index's room and it keeps working, small and big. */
    check_many_series(&mb, 30, 3, 2);
    proto_metrics_reset(&mb);
    check_many_series(&mb, 5000, PROTO_METRICS_SCAN_MAX + 1,
                      PROTO_METRICS_SCAN_MAX + 1);
    proto_metrics_free(&mb);
    /* Free leaves an empty builder that can be used again. */
    check_many_series(&mb, 100, 50, 1);
    proto_metrics_free(&mb);
}

static void
test_metrics_builder_estimate_holds_for_many_series(void)
{
    struct proto_metrics_builder mb;
    proto_metrics_init(&mb);
    size_t sum = 0;
    char key[32], ctx[32];
    /* Past 127 entries the indexes take two varint bytes. */
    for (size_t i = 0; i < 6000; i++) {
        series_of(i * 7, 300, 150, key, ctx);
        int64_t step = i % 3 ? (int64_t)i : -((int64_t)i << 30);
        size_t add = 0;
        CHECK(proto_metrics_add(&mb, key, ctx, step, 1700000000000, 1.5,
                                &add) == RV_OK);
        CHECK(add <= proto_metrics_point_bytes_max(strlen(key), strlen(ctx),
                                                   step, 1700000000000));
        sum += add;
        if (i % 97 == 0 || i == 5999) {
            Rv__Metrics m;
            proto_metrics_view(&mb, &m);
            CHECK(rv__metrics__get_packed_size(&m) <= sum + 7 * 4);
        }
    }
    proto_metrics_free(&mb);
}

static void
test_contract_syntax_follows_mlflow(void)
{
    CHECK(contract_key_valid("train/loss 1.a-b_c", 18));
    CHECK(!contract_key_valid("", 0));
    CHECK(!contract_key_valid("/abs", 4));
    CHECK(!contract_key_valid("a..b", 4));
    CHECK(!contract_key_valid("a:b", 3));
    char big[CONTRACT_MAX_KEY_BYTES + 1];
    memset(big, 'k', sizeof big);
    CHECK(contract_key_valid(big, CONTRACT_MAX_KEY_BYTES));
    CHECK(!contract_key_valid(big, CONTRACT_MAX_KEY_BYTES + 1));
    CHECK(contract_run_id_valid("a1_b-c", 6));
    CHECK(!contract_run_id_valid("_a", 2) && !contract_run_id_valid("", 0));
    CHECK(!contract_run_id_valid(big, CONTRACT_MAX_RUN_ID_BYTES + 1));
    CHECK(contract_utf8_valid("", 0) && contract_utf8_valid("h\xc3\xa9", 3));
    CHECK(!contract_utf8_valid("\xc0\xaf", 2));         /* Overlong. */
    CHECK(!contract_utf8_valid("\xed\xa0\x80", 3));     /* Surrogate. */
    CHECK(!contract_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF. */
    CHECK(!contract_utf8_valid("\xe2\x82", 2));         /* Truncated. */
}

static const struct rv_test tests[] = {
    {"envelope_round_trip_is_padded_to_8_bytes",
     test_envelope_round_trip_is_padded_to_8_bytes},
    {"seal_and_wrap_equal_encode", test_seal_and_wrap_equal_encode},
    {"every_truncation_is_a_clear_error",
     test_every_truncation_is_a_clear_error},
    {"every_bit_flip_is_detected", test_every_bit_flip_is_detected},
    {"errors_name_the_problem", test_errors_name_the_problem},
    {"garbage_payload_with_a_valid_envelope_is_malformed",
     test_garbage_payload_with_a_valid_envelope_is_malformed},
    {"oversized_payload_is_refused_before_unpacking",
     test_oversized_payload_is_refused_before_unpacking},
    {"status_names_round_trip", test_status_names_round_trip},
    {"metrics_builder_keeps_dictionaries_and_columns",
     test_metrics_builder_keeps_dictionaries_and_columns},
    {"metrics_builder_byte_estimate_never_falls_short",
     test_metrics_builder_byte_estimate_never_falls_short},
    {"metrics_builder_many_keys_and_contexts",
     test_metrics_builder_many_keys_and_contexts},
    {"metrics_builder_estimate_holds_for_many_series",
     test_metrics_builder_estimate_holds_for_many_series},
    {"contract_syntax_follows_mlflow", test_contract_syntax_follows_mlflow},
    {NULL, NULL}};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
