/* Storage-engine benchmark (issue: foundation). Measures, on one core:
 *
 *   apply      metric points/s through store_apply, batches of 1000 points
 *              over 100 series (10 steps each), one command per entry;
 *   runs       first page of filtered, sorted run lists over N runs (p50,
 *              p99 over many queries with varying constants);
 *   history    a 10M-point series downsampled to 1000 points (p50, p99);
 *   retain     over --retain-runs runs (10 projects): the retention
 *              selection of one project (store_retention_due, which apply's
 *              sweep also runs), sweeps purging that project (runs/s), and
 *              the divergence check's hash of the whole index (MB/s).
 *
 * usage: bench_store [--dir DIR] [--runs N] [--history-points N]
 *                    [--apply-batches N] [--retain-runs N]
 *                    [--only apply|runs|history|retain]
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
#include <sys/stat.h>
#include <time.h>
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

/* ---- retain ------------------------------------------------------------ */

static void
bench_apply_cmd(struct bench *b, Rv__Command *cmd, int64_t at)
{
    struct rv_buf e;
    rv_buf_init(&e);
    cmd->has_stamped_at_ms = 1;
    cmd->stamped_at_ms = at;
    bench_encode(b, &cmd, 1, &e);
    bench_apply_entry(b, &e);
    rv_buf_free(&e);
}

/* Active runs of team vision, project proj-0. */
static uint64_t
bench_proj0_runs(struct bench *b)
{
    struct store_read *r;
    struct store_count *cs;
    size_t n;
    uint64_t v = 0;
    if (store_read_begin(b->s, STORE_EVERY_TEAM, &r, b->errmsg) != RV_OK ||
        store_analytics(r, STORE_GROUP_PROJECT, "vision", NULL, &cs, &n,
                        b->errmsg) != RV_OK)
        bench_die(b, "analytics", RV_EIO);
    for (size_t i = 0; i < n; i++)
        if (strcmp(cs[i].label, "proj-0") == 0)
            v = cs[i].n;
    store_counts_free(cs, n);
    store_read_end(r);
    return v;
}

static void
bench_retain(size_t n_runs)
{
    static const Rv__RunStatus all[] = {
        RV__RUN_STATUS__RUNNING,  RV__RUN_STATUS__SCHEDULED,
        RV__RUN_STATUS__FINISHED, RV__RUN_STATUS__FAILED,
        RV__RUN_STATUS__KILLED,   RV__RUN_STATUS__CRASHED};
    struct bench b;
    struct rv_rng rng;
    struct store_read *r;
    int64_t now = (int64_t)rv_clock_wall_ms() + 86400000;
    bench_open(&b, "retain");
    rv_rng_seed(&rng, 3);
    bench_create_runs(&b, n_runs, &rng);
    /* The selection: a rule on proj-0 that expires nothing (every run is
     * read, sorted, and kept). */
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RetentionPut rp = RV__RETENTION_PUT__INIT;
    rp.team = "vision"; /* proj-0's runs are all vision's (bench_runs.c). */
    rp.project = "proj-0";
    rp.has_keep_last = 1;
    rp.keep_last = n_runs;
    rp.has_max_age_ms = 1;
    rp.max_age_ms = 1;
    rp.statuses = (Rv__RunStatus *)all;
    rp.n_statuses = sizeof all / sizeof all[0];
    rp.has_trash_ms = 1;
    rp.trash_ms = 0;
    cmd.body_case = RV__COMMAND__BODY_RETENTION_PUT;
    cmd.retention_put = &rp;
    bench_apply_cmd(&b, &cmd, now);
    enum { ROUNDS = 20 };
    double ms[ROUNDS], p50, p99, max;
    for (int i = 0; i < ROUNDS; i++) {
        int is_due = 1;
        uint64_t t0 = rv_clock_mono_ns();
        if (store_read_begin(b.s, STORE_EVERY_TEAM, &r, b.errmsg) != RV_OK ||
            store_retention_due(r, now, &is_due, b.errmsg) != RV_OK || is_due)
            bench_die(&b, "retention_due", RV_EINVAL);
        store_read_end(r);
        ms[i] = (double)(rv_clock_mono_ns() - t0) / 1e6;
    }
    bench_percentiles(ms, ROUNDS, &p50, &p99, &max);
    uint64_t n_proj = bench_proj0_runs(&b);
    printf("{\"figure\":\"retention_selection\",\"runs\":%zu,"
           "\"project_runs\":%llu,\"p50_ms\":%.3f,\"max_ms\":%.3f}\n",
           n_runs, (unsigned long long)n_proj, p50, max);
    fflush(stdout);
    /* Sweeps: the rule now expires every run of proj-0 (trash 0). */
    rp.keep_last = 0;
    bench_apply_cmd(&b, &cmd, now);
    Rv__RetentionSweep sw = RV__RETENTION_SWEEP__INIT;
    Rv__Command scmd = RV__COMMAND__INIT;
    scmd.body_case = RV__COMMAND__BODY_RETENTION_SWEEP;
    scmd.retention_sweep = &sw;
    size_t n_sweeps = 0;
    uint64_t t0 = rv_clock_mono_ns();
    for (int is_due = 1; is_due; n_sweeps++) {
        bench_apply_cmd(&b, &scmd, now);
        if (store_read_begin(b.s, STORE_EVERY_TEAM, &r, b.errmsg) != RV_OK ||
            store_retention_due(r, now, &is_due, b.errmsg) != RV_OK)
            bench_die(&b, "retention_due", RV_EINVAL);
        store_read_end(r);
    }
    double sweep_s = (double)(rv_clock_mono_ns() - t0) / 1e9;
    uint64_t n_purged = n_proj - bench_proj0_runs(&b);
    printf("{\"figure\":\"retention_sweep\",\"runs_purged\":%llu,"
           "\"sweeps\":%zu,\"seconds\":%.3f,\"runs_per_s\":%.0f,"
           "\"ms_per_sweep\":%.1f}\n",
           (unsigned long long)n_purged, n_sweeps, sweep_s,
           (double)n_purged / sweep_s, sweep_s * 1e3 / (double)n_sweeps);
    fflush(stdout);
    /* The check's hash of the whole index. */
    struct store_check_info ci;
    if (store_sync(b.s, b.errmsg) != RV_OK ||
        store_check_start(b.s, b.errmsg) != RV_OK)
        bench_die(&b, "check", RV_EIO);
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/index.mdb", b.dir);
    double mb = stat(path, &st) == 0 ? (double)st.st_blocks * 512 / 1e6 : 0;
    for (int i = 0; i < 3; i++) {
        Rv__Check ck = RV__CHECK__INIT;
        Rv__Command ccmd = RV__COMMAND__INIT;
        ccmd.body_case = RV__COMMAND__BODY_CHECK;
        ccmd.check = &ck;
        store_check_info(b.s, &ci);
        uint64_t before = ci.n_hashed;
        t0 = rv_clock_mono_ns();
        bench_apply_cmd(&b, &ccmd, now);
        do {
            nanosleep(&(struct timespec){0, 1000000}, NULL);
            store_check_info(b.s, &ci);
        } while (ci.n_hashed == before);
        double s = (double)(rv_clock_mono_ns() - t0) / 1e9;
        printf("{\"figure\":\"check_hash\",\"index_mb\":%.1f,"
               "\"seconds\":%.3f,\"mb_per_s\":%.0f}\n",
               mb, s, mb / s);
        fflush(stdout);
    }
    bench_close(&b, 0);
}

int
main(int argc, char **argv)
{
    size_t n_runs = 1000000, n_points = 10000000, n_batches = 3000;
    size_t n_retain = 200000;
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
        else if (strcmp(a, "--retain-runs") == 0)
            n_retain = strtoull(v, &end, 10);
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
    if (n_runs == 0 || n_points < 1000 || n_batches == 0 || n_retain < 10) {
        fprintf(stderr, "bench_store: sizes must be positive\n");
        return 1;
    }
    if (only == NULL || strcmp(only, "apply") == 0)
        bench_apply(n_batches);
    if (only == NULL || strcmp(only, "history") == 0)
        bench_history(n_points, 40);
    if (only == NULL || strcmp(only, "runs") == 0)
        bench_runs(n_runs, 200);
    if (only == NULL || strcmp(only, "retain") == 0)
        bench_retain(n_retain);
    return 0;
}
