/* store/filter: parsing, types, errors with positions, evaluation
 * semantics, LIKE, ORDER BY, limits and robustness against random input. */
#include "base/clock.h"
#include "store/filter.h"
#include "tests/lib/harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- Fixture: one run with a few params, tags and metrics -------------- */

struct kv {
    const char *k, *v;
};

struct mv {
    const char *k;
    double v;
};

struct run {
    struct kv params[4], tags[4];
    struct mv metrics[4];
};

static int
lookup_kv(const struct kv *kvs, const char *key, size_t n, const char **val,
          size_t *len)
{
    for (int i = 0; i < 4 && kvs[i].k; i++) {
        if (strlen(kvs[i].k) == n && memcmp(kvs[i].k, key, n) == 0) {
            *val = kvs[i].v;
            *len = strlen(kvs[i].v);
            return 1;
        }
    }
    return 0;
}

static int
run_param(void *ctx, const char *key, size_t n, const char **val, size_t *len)
{
    return lookup_kv(((struct run *)ctx)->params, key, n, val, len);
}

static int
run_tag(void *ctx, const char *key, size_t n, const char **val, size_t *len)
{
    return lookup_kv(((struct run *)ctx)->tags, key, n, val, len);
}

static int
run_metric(void *ctx, const char *key, size_t n, double *val)
{
    const struct run *r = ctx;
    for (int i = 0; i < 4 && r->metrics[i].k; i++) {
        if (strlen(r->metrics[i].k) == n &&
            memcmp(r->metrics[i].k, key, n) == 0) {
            *val = r->metrics[i].v;
            return 1;
        }
    }
    return 0;
}

static struct run the_run = {
    {{"lr", "0.01"}, {"optimizer", "adam"}, {"note", "it's"}, {NULL, NULL}},
    {{"team", "vision"}, {"user-name", "Ada"}, {NULL, NULL}},
    {{"acc", 0.93}, {"loss", 0.2}, {"nan_metric", NAN}, {"val.acc", 0.5}},
};

static struct filter_run
make_run(void)
{
    struct filter_run fr = {
        .run_id = "run-42",
        .name = "resnet50 baseline",
        .status = "FINISHED",
        .user = "ada",
        .project = "vision",
        .experiment = "sweep-1",
        .team = "ml",
        .lifecycle = "active",
        .created_at_ms = 1700000000000,
        .ended_at_ms = 0,
        .ctx = &the_run,
        .param = run_param,
        .tag = run_tag,
        .metric = run_metric,
    };
    return fr;
}

/* 1 match, 0 no match, -1 parse error. */
static int
eval(const char *expr, char *errmsg)
{
    struct filter *f;
    int rc = filter_parse(expr, strlen(expr), NULL, 0, &f, errmsg);
    if (rc != RV_OK)
        return -1;
    struct filter_run fr = make_run();
    int m = filter_match(f, &fr);
    filter_free(f);
    return m;
}

/* ---- Tests ------------------------------------------------------------- */

static void
test_comparisons_on_every_field_type(void)
{
    char e[RV_ERRMSG_SIZE] = "";
    static const struct {
        const char *expr;
        int want;
    } cases[] = {
        {"metrics.acc > 0.9", 1},
        {"metrics.acc >= 0.93", 1},
        {"metrics.acc < 0.93", 0},
        {"metrics.acc <= 0.93", 1},
        {"metrics.acc = 0.93", 1},
        {"metrics.acc != 0.93", 0},
        {"metric.loss < 1e0", 1},
        {"metrics.loss > -5", 1},
        {"metrics.missing > 0", 0},
        {"metrics.missing != 0", 0},
        {"params.lr = '0.01'", 1},
        {"param.lr != '0.01'", 0},
        {"parameter.optimizer LIKE 'ad%'", 1},
        {"parameters.optimizer ILIKE 'AD_M'", 1},
        {"params.optimizer LIKE 'AD%'", 0},
        {"params.missing != 'x'", 0},
        {"params.optimizer IN ('sgd', 'adam')", 1},
        {"params.optimizer NOT IN ('sgd', 'adam')", 0},
        {"params.missing NOT IN ('x')", 0},
        {"params.note = 'it''s'", 1},
        {"tags.team = 'vision'", 1},
        {"tag.`user-name` = 'Ada'", 1},
        {"tags.\"user-name\" ILIKE 'ada'", 1},
        {"attributes.status = 'FINISHED'", 1},
        {"status = 'FINISHED'", 1},
        {"attr.status IN ('RUNNING', 'FAILED')", 0},
        {"run.run_id = 'run-42'", 1},
        {"attributes.run_name LIKE '%baseline'", 1},
        {"attributes.`run name` LIKE 'resnet%'", 1},
        {"user_id = 'ada'", 1},
        {"project = 'vision' AND experiment = 'sweep-1'", 1},
        {"team = 'ml'", 1},
        {"lifecycle_stage = 'active'", 1},
        {"attributes.start_time >= 1700000000000", 1},
        {"created < 1700000000000", 0},
        {"end_time = 0", 1},
        {"metrics.val.acc = 0.5", 1},
        {"metrics.nan_metric = 0", 0},
        {"metrics.nan_metric != 0", 1},
        {"metrics.nan_metric > 0", 0},
        {"metrics.nan_metric < 0", 0},
        {"", 1},
        {"   ", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int got = eval(cases[i].expr, e);
        if (got != cases[i].want) {
            RV_CHECK_FAIL("'%s': got %d, want %d (%s)", cases[i].expr, got,
                          cases[i].want, e);
            return;
        }
    }
}

static void
test_and_or_precedence_and_parentheses(void)
{
    char e[RV_ERRMSG_SIZE] = "";
    /* AND binds tighter than OR. */
    CHECK(eval("metrics.acc > 2 AND metrics.acc > 3 OR params.lr = '0.01'",
               e) == 1);
    CHECK(eval("params.lr = '0.01' OR metrics.acc > 2 AND metrics.acc > 3",
               e) == 1);
    CHECK(eval("(params.lr = '0.01' OR metrics.acc > 2) AND metrics.acc > 3",
               e) == 0);
    CHECK(eval("((metrics.acc > 0.5) and (tags.team = 'vision' or "
               "tags.team = 'nlp')) AND NOT_A_FIELD = 'x'",
               e) == -1);
    CHECK(eval("((metrics.acc > 0.5) and (tags.team = 'vision' or "
               "tags.team = 'nlp'))",
               e) == 1);
    CHECK(eval("metrics.acc > 0.5 and metrics.acc < 0.1 or "
               "metrics.loss < 0.3 and metrics.loss > 0.1",
               e) == 1);
}

static void
test_like_semantics(void)
{
    CHECK(filter_like("abc", 3, "abc", 3, 0));
    CHECK(filter_like("abc", 3, "a%", 2, 0));
    CHECK(filter_like("abc", 3, "%c", 2, 0));
    CHECK(filter_like("abc", 3, "%b%", 3, 0));
    CHECK(filter_like("abc", 3, "a_c", 3, 0));
    CHECK(!filter_like("abc", 3, "a_", 2, 0));
    CHECK(filter_like("", 0, "%", 1, 0));
    CHECK(filter_like("", 0, "", 0, 0));
    CHECK(!filter_like("a", 1, "", 0, 0));
    CHECK(!filter_like("ab", 2, "abc", 3, 0));
    CHECK(filter_like("ABC", 3, "a%c", 3, 1));
    CHECK(!filter_like("ABC", 3, "a%c", 3, 0));
    CHECK(filter_like("aXbXc", 5, "%b%c", 4, 0));
    /* Pathological backtracking stays linear-ish. */
    static char s[20001];
    memset(s, 'a', 20000);
    uint64_t t0 = rv_clock_mono_ns();
    CHECK(!filter_like(s, 20000, "%a%a%a%a%a%a%b", 14, 0));
    CHECK(filter_like(s, 20000, "%a%a%a%a%a%a", 12, 0));
    CHECK(rv_clock_mono_ns() - t0 < UINT64_C(2000000000));
}

static void
test_errors_name_position_and_expected_token(void)
{
    static const struct {
        const char *expr;
        const char *needle;
    } cases[] = {
        {"params.lr = '0.01", "unterminated quote"},
        {"metrics.acc 0.5", "at position 13: expected a comparison operator"},
        {"metrics.acc >", "expected a number, found the end"},
        {"metrics.acc > 0.5 garbage", "expected AND, OR or the end"},
        {"()", "expected a comparison inside the parentheses"},
        {"(metrics.acc > 1", "expected ')'"},
        {"foo.bar = 'x'", "unknown identifier prefix"},
        {"nosuch = 'x'", "unknown attribute"},
        {"metrics.acc LIKE 'x'", "not valid for a number"},
        {"params.lr > '1'", "not valid for a string"},
        {"params.lr = 5", "expected a quoted string, found '5'"},
        {"metrics.acc = 'x'", "expected a number"},
        {"params.lr IN 'x'", "expected '(' after IN"},
        {"params.lr IN ('a' 'b')", "expected ',' or ')'"},
        {"params.lr NOT 'a'", "expected IN after NOT"},
        {"params. = 'a'", "expected a name after the prefix"},
        {"params.lr = 'a' AND", "expected an identifier"},
        {"metrics.acc > 1.2.3", "malformed number"},
        {"metrics.acc # 1", "at position 13"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char e[RV_ERRMSG_SIZE] = "";
        struct filter *f = NULL;
        int rc =
            filter_parse(cases[i].expr, strlen(cases[i].expr), NULL, 0, &f, e);
        if (rc != RV_EPARSE || strstr(e, cases[i].needle) == NULL ||
            strstr(e, "position") == NULL) {
            RV_CHECK_FAIL("'%s': rc %s, message '%s', wanted '%s'",
                          cases[i].expr, rv_errname(rc), e, cases[i].needle);
            filter_free(f);
            return;
        }
    }
}

static void
test_limits_are_enforced(void)
{
    char e[RV_ERRMSG_SIZE];
    struct filter *f = NULL;
    static char buf[FILTER_MAX_EXPR_BYTES * 4];
    /* Over-long expression. */
    memset(buf, ' ', FILTER_MAX_EXPR_BYTES + 1);
    CHECK_RC(filter_parse(buf, FILTER_MAX_EXPR_BYTES + 1, NULL, 0, &f, e),
             RV_ETOOBIG, e);
    /* Too deep. */
    size_t n = 0;
    for (int i = 0; i < FILTER_MAX_DEPTH + 1; i++)
        buf[n++] = '(';
    n += (size_t)snprintf(buf + n, sizeof buf - n, "metrics.a > 1");
    for (int i = 0; i < FILTER_MAX_DEPTH + 1; i++)
        buf[n++] = ')';
    CHECK_RC(filter_parse(buf, n, NULL, 0, &f, e), RV_ETOOBIG, e);
    /* Too many nodes: 200 comparisons joined by OR make 399 nodes. */
    n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%sstatus='A'",
                              i ? " OR " : "");
    CHECK_RC(filter_parse(buf, n, NULL, 0, &f, e), RV_ETOOBIG, e);
    /* Key over 250 bytes. */
    n = (size_t)snprintf(buf, sizeof buf, "params.");
    memset(buf + n, 'k', 251);
    n += 251;
    n += (size_t)snprintf(buf + n, sizeof buf - n, " = 'x'");
    CHECK_RC(filter_parse(buf, n, NULL, 0, &f, e), RV_EPARSE, e);
    /* NUL inside the input. */
    const char nul[] = "params.lr = 'a\0b'";
    CHECK_RC(filter_parse(nul, sizeof nul - 1, NULL, 0, &f, e), RV_EPARSE, e);
    const char nul2[] = "params.lr = 'a' \0";
    CHECK_RC(filter_parse(nul2, sizeof nul2 - 1, NULL, 0, &f, e), RV_EPARSE, e);
    /* IN list over the limit. */
    n = (size_t)snprintf(buf, sizeof buf, "params.lr IN (");
    for (int i = 0; i < FILTER_MAX_IN_VALUES + 1; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s'v'", i ? "," : "");
    buf[n++] = ')';
    CHECK_RC(filter_parse(buf, n, NULL, 0, &f, e), RV_ETOOBIG, e);
}

static void
test_order_by_parsing(void)
{
    char e[RV_ERRMSG_SIZE] = "";
    struct filter *f = NULL;
    const char *ob = "metrics.acc DESC, params.lr, start_time asc, "
                     "tags.`user-name` DESC";
    CHECK_OK(filter_parse("", 0, ob, strlen(ob), &f, e), e);
    CHECK(f->n_order == 4);
    CHECK(f->order[0].field == FILTER_FIELD_METRIC && f->order[0].is_desc &&
          strcmp(f->order[0].key, "acc") == 0);
    CHECK(f->order[1].field == FILTER_FIELD_PARAM && !f->order[1].is_desc);
    CHECK(f->order[2].field == FILTER_FIELD_ATTR &&
          f->order[2].attr == FILTER_ATTR_START_TIME && !f->order[2].is_desc);
    CHECK(f->order[3].field == FILTER_FIELD_TAG &&
          strcmp(f->order[3].key, "user-name") == 0);
    filter_free(f);
    const char *bad[] = {"metrics.acc DESCENDING", "metrics.acc,",
                         "metrics.acc DESC params.lr", "nope"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_RC(filter_parse("", 0, bad[i], strlen(bad[i]), &f, e), RV_EPARSE,
                 e);
        CHECK(strstr(e, "order_by at position") != NULL);
    }
    char many[512];
    size_t n = 0;
    for (int i = 0; i < FILTER_MAX_ORDER_TERMS + 1; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%smetrics.m%d",
                              i ? ", " : "", i);
    CHECK_RC(filter_parse("", 0, many, n, &f, e), RV_ETOOBIG, e);
}

static void
test_ast_shape(void)
{
    char e[RV_ERRMSG_SIZE] = "";
    struct filter *f = NULL;
    const char *x = "params.a = 'x' AND (tags.b IN ('1','2') OR metrics.c < 3)";
    CHECK_OK(filter_parse(x, strlen(x), NULL, 0, &f, e), e);
    CHECK(f->root->kind == FILTER_NODE_AND);
    CHECK(f->root->left->kind == FILTER_NODE_CMP &&
          f->root->left->field == FILTER_FIELD_PARAM &&
          f->root->left->op == FILTER_OP_EQ &&
          strcmp(f->root->left->values[0].str, "x") == 0);
    CHECK(f->root->right->kind == FILTER_NODE_OR);
    CHECK(f->root->right->left->op == FILTER_OP_IN &&
          f->root->right->left->n_values == 2);
    CHECK(f->root->right->right->values[0].is_number &&
          f->root->right->right->values[0].number == 3);
    filter_free(f);
    CHECK(filter_attr_lookup("Created", 7) == FILTER_ATTR_START_TIME);
    CHECK(filter_attr_lookup("zzz", 3) == FILTER_ATTR_NONE);
    CHECK(filter_attr_is_numeric(FILTER_ATTR_END_TIME));
    CHECK(!filter_attr_is_numeric(FILTER_ATTR_STATUS));
}

/* Random bytes and random token soups: parse or fail cleanly. */
static void
test_random_input_never_crashes(void)
{
    static const char *const toks[] = {
        "metrics.", "params.", "tags.", "attributes.", "acc",   "lr",  "status",
        "=",        "!=",      "<>",    "<",           "<=",    ">",   ">=",
        "LIKE",     "ILIKE",   "IN",    "NOT",         "AND",   "OR",  "(",
        ")",        ",",       "'x'",   "'it''s'",     "\"q\"", "`b`", "1.5",
        "-2e3",     ".",       " ",     "'",           "\"",    "%",   "\\",
        "\xff",     "\x01"};
    struct rv_rng rng;
    uint64_t seed = rv_test_seed(7);
    rv_rng_seed(&rng, seed);
    char buf[512], e[RV_ERRMSG_SIZE];
    int n_ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        if (iter % 2 == 0) {
            n = (size_t)rv_rng_below(&rng, sizeof buf);
            for (size_t i = 0; i < n; i++)
                buf[i] = (char)rv_rng_next(&rng);
        } else {
            size_t k = (size_t)rv_rng_below(&rng, 30);
            for (size_t i = 0; i < k; i++) {
                const char *t =
                    toks[rv_rng_below(&rng, sizeof toks / sizeof *toks)];
                size_t tn = strlen(t);
                if (n + tn + 1 >= sizeof buf)
                    break;
                memcpy(buf + n, t, tn);
                n += tn;
                if (rv_rng_below(&rng, 2))
                    buf[n++] = ' ';
            }
        }
        struct filter *f = NULL;
        int rc = filter_parse(buf, n, buf, n / 2, &f, e);
        if (rc == RV_OK) {
            struct filter_run fr = make_run();
            (void)filter_match(f, &fr);
            filter_free(f);
            n_ok++;
        } else if (rc != RV_EPARSE && rc != RV_ETOOBIG) {
            RV_CHECK_FAIL("seed %llu iter %d: %s", (unsigned long long)seed,
                          iter, rv_errname(rc));
            return;
        }
    }
    CHECK(n_ok > 0);
}

static const struct rv_test tests[] = {
    {"comparisons_on_every_field_type", test_comparisons_on_every_field_type},
    {"and_or_precedence_and_parentheses",
     test_and_or_precedence_and_parentheses},
    {"like_semantics", test_like_semantics},
    {"errors_name_position_and_expected_token",
     test_errors_name_position_and_expected_token},
    {"limits_are_enforced", test_limits_are_enforced},
    {"order_by_parsing", test_order_by_parsing},
    {"ast_shape", test_ast_shape},
    {"random_input_never_crashes", test_random_input_never_crashes},
    {NULL, NULL}};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
