/* Storage-engine benchmark (issue: foundation). Measures, on one core:
 *
 *   apply      metric points/s through store_apply, batches of 1000 points
 *              over 100 series (10 steps each), one command per entry;
 *   runs       first page of filtered, sorted run lists over N runs (p50,
 *              p99 over many queries with varying constants);
 *   history    a 10M-point series downsampled to 1000 points (p50, p99).
 *
 * usage: bench_store [--dir DIR] [--runs N] [--history-points N]
 *                    [--apply-batches N] [--only apply|runs|history]
 * Prints one JSON object per figure. DIR defaults to a fresh directory
 * under $TMPDIR; it is removed at the end unless --keep is given. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "base/clock.h"
#include "bench/bench_runs.h"
#include "proto/metrics_builder.h"
#include "proto/proto.h"
#include "store/store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct bench {
    char dir[4096];
    struct store *s;
    uint64_t index;
    char errmsg[RV_ERRMSG_SIZE];
};

static void
bench_die(const struct bench *b, const char *what, int rc)
{
    fprintf(stderr, "bench_store: %s: %s: %s\n", what, rv_strerror(rc),
            b->errmsg);
    exit(1);
}

static int
bench_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
bench_open(struct bench *b, const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(b->dir, sizeof b->dir, "%s/rvbench-%s-XXXXXX",
             tmp && *tmp ? tmp : "/tmp", tag);
    if (mkdtemp(b->dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    struct store_config cfg = {b->dir, 0, 0, NULL, NULL};
    int rc = store_open(&b->s, &cfg, b->errmsg);
    if (rc != RV_OK)
        bench_die(b, "store_open", rc);
    b->index = 0;
}

static void
bench_close(struct bench *b, int keep)
{
    store_close(b->s);
    if (!keep)
        nftw(b->dir, bench_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void
bench_apply_entry(struct bench *b, const struct rv_buf *e)
{
    struct store_result *res;
    size_t n;
    int rc =
        store_apply(b->s, ++b->index, e->data, e->len, &res, &n, b->errmsg);
    if (rc != RV_OK)
        bench_die(b, "store_apply", rc);
    for (size_t i = 0; i < n; i++) {
        if (res[i].code != RV_OK) {
            fprintf(stderr, "bench_store: command failed: %s\n",
                    res[i].message);
            exit(1);
        }
    }
    free(res);
}

static void
bench_encode(struct bench *b, Rv__Command **cmds, size_t n, struct rv_buf *out)
{
    Rv__CommandBatch batch = RV__COMMAND_BATCH__INIT;
    batch.n_commands = n;
    batch.commands = cmds;
    rv_buf_reset(out);
    int rc = proto_envelope_encode(&batch, out, b->errmsg);
    if (rc != RV_OK)
        bench_die(b, "encode", rc);
}

static int
bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void
bench_percentiles(double *ms, size_t n, double *p50, double *p99, double *max)
{
    qsort(ms, n, sizeof *ms, bench_cmp_double);
    *p50 = ms[n / 2];
    *p99 = ms[(size_t)((double)(n - 1) * 0.99)];
    *max = ms[n - 1];
}

/* ---- Run creation with params, tags and two metric summaries ----------- */

/* The shared run set (bench/bench_runs.h), 200 runs per entry. */
static void
bench_create_runs(struct bench *b, size_t n_runs, struct rv_rng *rng)
{
    enum { PER_ENTRY = 200 };
    static struct bench_runs runs;
    struct rv_buf e;
    rv_buf_init(&e);
    bench_runs_init(&runs);
    for (size_t base = 0; base < n_runs; base += PER_ENTRY) {
        size_t k = n_runs - base < PER_ENTRY ? n_runs - base : PER_ENTRY;
        bench_runs_fill(&runs, base, k, rng);
        bench_encode(b, runs.cmds, 2 * k, &e);
        bench_apply_entry(b, &e);
    }
    bench_runs_free(&runs);
    rv_buf_free(&e);
}

/* ---- apply ------------------------------------------------------------- */

static void
bench_apply(size_t n_batches)
{
    struct bench b;
    struct rv_rng rng;
    enum { N = 1000, SERIES = 100 };
    bench_open(&b, "apply");
    rv_rng_seed(&rng, 1);
    bench_create_runs(&b, 1, &rng);
    char names[SERIES][16];
    for (int i = 0; i < SERIES; i++)
        snprintf(names[i], sizeof names[i], "metric/%02d", i);
    /* Encode every entry first: the figure is the store's, not protobuf's
     * encoder's. */
    struct rv_buf *entries = calloc(n_batches, sizeof *entries);
    struct proto_metrics_builder mb;
    proto_metrics_init(&mb);
    for (size_t bi = 0; bi < n_batches; bi++) {
        proto_metrics_reset(&mb);
        for (int i = 0; i < N; i++) {
            int64_t step = (int64_t)(bi * (N / SERIES) + (size_t)(i / SERIES));
            int rc = proto_metrics_add(&mb, names[i % SERIES], NULL, step,
                                       1700000000000 + step,
                                       rv_rng_double(&rng), NULL);
            if (rc != RV_OK)
                bench_die(&b, "metrics", rc);
        }
        Rv__Metrics m;
        proto_metrics_view(&mb, &m);
        Rv__LogBatch lb = RV__LOG_BATCH__INIT;
        lb.run_id = "run000000000";
        lb.metrics = &m;
        Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
        cmd.has_client_id = cmd.has_seq = 1;
        cmd.client_id = 42;
        cmd.seq = bi + 1;
        cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
        cmd.log_batch = &lb;
        rv_buf_init(&entries[bi]);
        bench_encode(&b, cmds, 1, &entries[bi]);
    }
    proto_metrics_free(&mb);
    double *ms = malloc(n_batches * sizeof *ms);
    uint64_t t0 = rv_clock_mono_ns();
    for (size_t bi = 0; bi < n_batches; bi++) {
        uint64_t t = rv_clock_mono_ns();
        bench_apply_entry(&b, &entries[bi]);
        ms[bi] = (double)(rv_clock_mono_ns() - t) / 1e6;
    }
    double secs = (double)(rv_clock_mono_ns() - t0) / 1e9;
    uint64_t ts0 = rv_clock_mono_ns();
    int rc = store_sync(b.s, b.errmsg);
    if (rc != RV_OK)
        bench_die(&b, "store_sync", rc);
    double sync_ms = (double)(rv_clock_mono_ns() - ts0) / 1e6;
    double p50, p99, max;
    bench_percentiles(ms, n_batches, &p50, &p99, &max);
    printf("{\"figure\":\"apply\",\"batches\":%zu,\"points\":%zu,"
           "\"seconds\":%.3f,\"points_per_s\":%.0f,\"batch_p50_ms\":%.3f,"
           "\"batch_p99_ms\":%.3f,\"batch_max_ms\":%.3f,"
           "\"final_sync_ms\":%.1f,\"target_points_per_s\":3000000}\n",
           n_batches, n_batches * N, secs, (double)(n_batches * N) / secs, p50,
           p99, max, sync_ms);
    fflush(stdout);
    for (size_t bi = 0; bi < n_batches; bi++)
        rv_buf_free(&entries[bi]);
    free(entries);
    free(ms);
    bench_close(&b, 0);
}

/* ---- runs -------------------------------------------------------------- */

struct bench_query {
    const char *name;
    const char *project, *experiment;
    const char *filter; /* "$LR" is replaced by a varying constant. */
    const char *order_by;
};

static void
bench_runs_one(struct bench *b, const struct bench_query *bq, size_t n_runs,
               size_t n_queries, struct rv_rng *rng)
{
    double *ms = malloc(n_queries * sizeof *ms);
    char filter[512], proj[16], exp[16];
    uint64_t n_rows = 0, n_examined = 0;
    for (size_t i = 0; i < n_queries; i++) {
        snprintf(proj, sizeof proj, "proj-%llu",
                 (unsigned long long)rv_rng_below(rng, 10));
        snprintf(exp, sizeof exp, "exp-%llu",
                 (unsigned long long)rv_rng_below(rng, 20));
        bench_runs_filter(filter, sizeof filter, bq->filter, rng);
        struct store_query q = {.project = bq->project ? proj : NULL,
                                .experiment = bq->experiment ? exp : NULL,
                                .filter = filter,
                                .order_by = bq->order_by,
                                .per_page = 100};
        struct store_read *r;
        struct store_page page;
        uint64_t t = rv_clock_mono_ns();
        int rc = store_read_begin(b->s, STORE_EVERY_TEAM, &r, b->errmsg);
        if (rc == RV_OK)
            rc = store_query_runs(r, &q, &page, b->errmsg);
        if (rc != RV_OK)
            bench_die(b, "store_query_runs", rc);
        ms[i] = (double)(rv_clock_mono_ns() - t) / 1e6;
        n_rows += page.n_runs;
        n_examined += page.n_examined;
        store_page_free(&page);
        store_read_end(r);
    }
    double p50, p99, max;
    bench_percentiles(ms, n_queries, &p50, &p99, &max);
    printf("{\"figure\":\"runs_first_page\",\"query\":\"%s\",\"runs\":%zu,"
           "\"queries\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
           "\"avg_rows\":%.1f,\"avg_examined\":%.0f,\"target_p99_ms\":20}\n",
           bq->name, n_runs, n_queries, p50, p99, max,
           (double)n_rows / (double)n_queries,
           (double)n_examined / (double)n_queries);
    fflush(stdout);
    free(ms);
}

static void
bench_runs(size_t n_runs, size_t n_queries)
{
    struct bench b;
    struct rv_rng rng;
    bench_open(&b, "runs");
    rv_rng_seed(&rng, 2);
    uint64_t t0 = rv_clock_mono_ns();
    bench_create_runs(&b, n_runs, &rng);
    int rc = store_sync(b.s, b.errmsg);
    if (rc != RV_OK)
        bench_die(&b, "store_sync", rc);
    fprintf(stderr, "bench_store: loaded %zu runs in %.1f s\n", n_runs,
            (double)(rv_clock_mono_ns() - t0) / 1e9);
    static const struct bench_query queries[] = {
        {"experiment-scoped: 3 predicates, ORDER BY metric", "p", "e",
         "params.optimizer = 'adam' AND attributes.status = 'FINISHED' AND "
         "metrics.accuracy > 0.2",
         "metrics.accuracy DESC"},
        {"unscoped: param = AND tag = AND metric >, ORDER BY metric", NULL,
         NULL,
         "params.lr = '$LR' AND tags.team = 'vision' AND metrics.loss < 1.5",
         "metrics.loss ASC"},
        {"unscoped: status = AND param = AND metric <, default order", NULL,
         NULL,
         "attributes.status = 'FINISHED' AND params.optimizer = 'sgd' AND "
         "metrics.loss < 1.0",
         NULL},
        {"project-scoped: 3 predicates incl. LIKE, ORDER BY param", "p", NULL,
         "params.batch_size = '64' AND tags.team LIKE 'v%' AND "
         "metrics.accuracy >= 0.5",
         "params.lr DESC"},
        {"unscoped: metric > (top 0.1%), ORDER BY metric DESC", NULL, NULL,
         "metrics.accuracy > 0.999", "metrics.accuracy DESC"},
        {"experiment-scoped: metric <, ORDER BY metric ASC", "p", "e",
         "metrics.accuracy < 0.5", "metrics.accuracy ASC"},
    };
    for (size_t i = 0; i < sizeof queries / sizeof *queries; i++)
        bench_runs_one(&b, &queries[i], n_runs, n_queries, &rng);
    bench_close(&b, 0);
}

/* ---- history ----------------------------------------------------------- */

static void
bench_history(size_t n_points, size_t n_queries)
{
    struct bench b;
    struct rv_rng rng;
    enum { N = 1000 };
    bench_open(&b, "history");
    rv_rng_seed(&rng, 3);
    bench_create_runs(&b, 1, &rng);
    struct proto_metrics_builder mb;
    proto_metrics_init(&mb);
    struct rv_buf e;
    rv_buf_init(&e);
    uint64_t t0 = rv_clock_mono_ns();
    for (size_t base = 0; base < n_points; base += N) {
        proto_metrics_reset(&mb);
        for (int i = 0; i < N; i++) {
            int64_t step = (int64_t)base + i;
            double v =
                1.0 / (1.0 + 1e-5 * (double)step) + 0.05 * rv_rng_double(&rng);
            int rc = proto_metrics_add(&mb, "loss", NULL, step,
                                       1700000000000 + step, v, NULL);
            if (rc != RV_OK)
                bench_die(&b, "metrics", rc);
        }
        Rv__Metrics m;
        proto_metrics_view(&mb, &m);
        Rv__LogBatch lb = RV__LOG_BATCH__INIT;
        lb.run_id = "run000000000";
        lb.metrics = &m;
        Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
        cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
        cmd.log_batch = &lb;
        bench_encode(&b, cmds, 1, &e);
        bench_apply_entry(&b, &e);
    }
    rv_buf_free(&e);
    proto_metrics_free(&mb);
    int rc = store_sync(b.s, b.errmsg);
    if (rc != RV_OK)
        bench_die(&b, "store_sync", rc);
    fprintf(stderr, "bench_store: loaded a %zu-point series in %.1f s\n",
            n_points, (double)(rv_clock_mono_ns() - t0) / 1e9);
    double *ms = malloc(n_queries * sizeof *ms);
    size_t n_out = 0;
    for (size_t i = 0; i < n_queries; i++) {
        /* Half the queries span the whole series, half a random range. */
        int64_t lo = INT64_MIN, hi = INT64_MAX;
        if (i % 2 == 1) {
            lo = (int64_t)rv_rng_below(&rng, n_points / 2);
            hi = lo + (int64_t)(n_points / 4) +
                 (int64_t)rv_rng_below(&rng, n_points / 4);
        }
        struct store_history_query q = {
            "run000000000", "loss", NULL, lo, hi, 1000};
        struct store_read *r;
        struct store_point *pts;
        size_t n;
        uint64_t t = rv_clock_mono_ns();
        rc = store_read_begin(b.s, STORE_EVERY_TEAM, &r, b.errmsg);
        if (rc == RV_OK)
            rc = store_metric_history(r, &q, &pts, &n, b.errmsg);
        if (rc != RV_OK)
            bench_die(&b, "store_metric_history", rc);
        ms[i] = (double)(rv_clock_mono_ns() - t) / 1e6;
        n_out += n;
        free(pts);
        store_read_end(r);
    }
    double p50, p99, max;
    bench_percentiles(ms, n_queries, &p50, &p99, &max);
    printf("{\"figure\":\"history_downsampled\",\"series_points\":%zu,"
           "\"downsample\":1000,\"queries\":%zu,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"avg_points_out\":%.0f,"
           "\"target_ms\":50}\n",
           n_points, n_queries, p50, p99, max,
           (double)n_out / (double)n_queries);
    fflush(stdout);
    free(ms);
    bench_close(&b, 0);
}

int
main(int argc, char **argv)
{
    size_t n_runs = 1000000, n_points = 10000000, n_batches = 3000;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (v == NULL && a[0] == '-') {
            fprintf(stderr, "bench_store: %s needs a value\n", a);
            return 1;
        }
        if (strcmp(a, "--runs") == 0)
            n_runs = strtoull(v, &end, 10);
        else if (strcmp(a, "--history-points") == 0)
            n_points = strtoull(v, &end, 10);
        else if (strcmp(a, "--apply-batches") == 0)
            n_batches = strtoull(v, &end, 10);
        else if (strcmp(a, "--only") == 0)
            only = v;
        else {
            fprintf(stderr, "bench_store: unknown argument %s\n", a);
            return 1;
        }
        if (end != NULL && *end != '\0') {
            fprintf(stderr, "bench_store: bad number '%s'\n", v);
            return 1;
        }
        i++;
    }
    if (n_runs == 0 || n_points < 1000 || n_batches == 0) {
        fprintf(stderr, "bench_store: sizes must be positive\n");
        return 1;
    }
    if (only == NULL || strcmp(only, "apply") == 0)
        bench_apply(n_batches);
    if (only == NULL || strcmp(only, "history") == 0)
        bench_history(n_points, 40);
    if (only == NULL || strcmp(only, "runs") == 0)
        bench_runs(n_runs, 200);
    return 0;
}
