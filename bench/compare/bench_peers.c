/* The comparison's load generator for the peers (bench/compare/run.sh):
 * the same metric stream runvault gets from bench_gateway, written into
 *
 *   etcd      a 3-member cluster through its JSON gateway
 *             (POST /v3/kv/txn), one key per point, transactions of up
 *             to 128 puts (etcd's --max-txn-ops default), clients spread
 *             over every member;
 *   postgres  one PostgreSQL server holding MLflow's tracking schema
 *             (mlflow_schema.sql), one transaction per 1000 points as
 *             MLflow's log_batch does: a multi-row INSERT into metrics
 *             and the upsert of latest_metrics.
 *
 * The stream: R runs x 10 keys, steps ascending; a run's point j is
 * (key j % 10, step j / 10), value 1 / (1 + step) + key, timestamp the
 * wall clock at send. Client c owns the runs r with r % clients == c and
 * writes them in turn, one request at a time (closed loop). Acks inside
 * [warm-up, warm-up + seconds] are counted; afterwards the stored points
 * are counted and compared with every acknowledged one.
 *
 * usage: bench_peers etcd HOST:PORT[,HOST:PORT...] | postgres CONNINFO
 *        [--clients N] [--runs N] [--seconds N] [--warmup-ms N]
 *        [--batch N] [--lat-file PATH]
 * Prints one JSON line (the fields of bench_gateway's ingest figure).
 * Exits 1 if nothing was acknowledged or an acknowledged point is
 * missing. */
#include "base/buf.h"
#include "base/clock.h"
#include "bench/bench_args.h"
#include "bench/bench_http.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BP_KEYS        10
#define BP_MAX_CLIENTS 256
#define BP_MAX_BATCH   1000
#define BP_MAX_LAT     200000
#define BP_MAX_EPS     8

enum bp_kind { BP_ETCD, BP_POSTGRES };

struct bp_opts {
    enum bp_kind kind;
    const char *target; /* etcd endpoints or a libpq conninfo. */
    char eps[BP_MAX_EPS][64];
    int n_eps;
    int n_clients, n_runs;
    unsigned seconds, warmup_ms, batch;
    const char *lat_file;
};

struct bp_client {
    int index;
    const struct bp_opts *o;
    uint64_t measure_from_ms, deadline_ms;
    uint64_t n_acked, n_counted, n_retries;
    uint64_t *next; /* Next point of each run, indexed by run. */
    double *lat_ms;
    size_t n_lat;
    char err[256];
};

/* One point of the stream. */
struct bp_point {
    int run, key;
    int64_t step;
    double value;
};

static const char *const bp_key_names[BP_KEYS] = {
    "loss", "acc", "lr", "grad", "tput", "mem", "val0", "val1", "val2", "val3"};

static void
bp_point_of(int run, uint64_t j, struct bp_point *p)
{
    p->run = run;
    p->key = (int)(j % BP_KEYS);
    p->step = (int64_t)(j / BP_KEYS);
    p->value = 1.0 / (double)(1 + p->step) + (double)p->key;
}

/* MLflow's run_uuid: 32 hex characters. */
static void
bp_run_uuid(int run, char out[33])
{
    snprintf(out, 33, "%016x%016x", 0xbe4c4u, (unsigned)run);
}

static void
bp_count(struct bp_client *c, uint64_t t0_ns, unsigned n_points)
{
    uint64_t t1 = rv_clock_mono_ns(), t1_ms = t1 / 1000000u;
    c->n_acked += n_points;
    if (t1_ms < c->measure_from_ms || t1_ms > c->deadline_ms)
        return;
    c->n_counted += n_points;
    if (c->n_lat < BP_MAX_LAT)
        c->lat_ms[c->n_lat++] = (double)(t1 - t0_ns) / 1e6;
}

/* ---- etcd ------------------------------------------------------------------
 */

static void
bp_b64(struct rv_buf *b, const char *s, size_t n)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)u[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)u[i + 1] << 8;
        if (i + 2 < n)
            v |= u[i + 2];
        char q[4] = {t[(v >> 18) & 63], t[(v >> 12) & 63],
                     i + 1 < n ? t[(v >> 6) & 63] : '=',
                     i + 2 < n ? t[v & 63] : '='};
        rv_buf_append(b, q, 4);
    }
}

static void
bp_append_str(struct rv_buf *b, const char *s)
{
    rv_buf_append(b, s, strlen(s));
}

/* The key of a point: /rv/m/<run_uuid>/<key>/<step, 10 digits>, so a
 * run's series is one ordered range. The value: "<value> <timestamp>". */
static void
bp_etcd_body(struct rv_buf *b, const struct bp_point *pts, unsigned n,
             int64_t ts)
{
    rv_buf_reset(b);
    bp_append_str(b, "{\"success\":[");
    for (unsigned i = 0; i < n; i++) {
        char uuid[33], k[128], v[64];
        bp_run_uuid(pts[i].run, uuid);
        int kn = snprintf(k, sizeof k, "/rv/m/%s/%s/%010lld", uuid,
                          bp_key_names[pts[i].key], (long long)pts[i].step);
        int vn =
            snprintf(v, sizeof v, "%.17g %lld", pts[i].value, (long long)ts);
        bp_append_str(b, i ? ",{\"requestPut\":{\"key\":\""
                           : "{\"requestPut\":{\"key\":\"");
        bp_b64(b, k, (size_t)kn);
        bp_append_str(b, "\",\"value\":\"");
        bp_b64(b, v, (size_t)vn);
        bp_append_str(b, "\"}}");
    }
    bp_append_str(b, "]}");
}

static void *
bp_etcd_client(void *arg)
{
    struct bp_client *c = arg;
    const struct bp_opts *o = c->o;
    struct bench_http h;
    struct rv_buf body, out;
    struct bp_point pts[BP_MAX_BATCH];
    const char *ep = o->eps[c->index % o->n_eps];
    rv_buf_init(&body);
    rv_buf_init(&out);
    if (bench_http_open(&h, ep) != 0) {
        snprintf(c->err, sizeof c->err, "client %d: cannot connect to %s",
                 c->index, ep);
        bench_http_close(&h);
        return NULL;
    }
    int run = c->index;
    while (run < o->n_runs && rv_clock_mono_ms() < c->deadline_ms) {
        for (unsigned i = 0; i < o->batch; i++)
            bp_point_of(run, c->next[run] + i, &pts[i]);
        bp_etcd_body(&body, pts, o->batch, (int64_t)rv_clock_wall_ms());
        uint64_t t0 = rv_clock_mono_ns();
        int st = -1;
        /* Puts are idempotent: a failed transaction is sent again. */
        for (int tries = 0; tries < 20; tries++) {
            st = bench_http_do(&h, "POST", "/v3/kv/txn", NULL,
                               (const char *)body.data, body.len, &out);
            if (st == 200)
                break;
            c->n_retries++;
            if (st < 0) {
                bench_http_close(&h);
                if (bench_http_open(&h, ep) != 0)
                    rv_clock_sleep_ms(50);
            }
        }
        if (st != 200) {
            snprintf(c->err, sizeof c->err, "client %d: txn -> %d %.120s",
                     c->index, st, out.data ? (char *)out.data : "");
            break;
        }
        bp_count(c, t0, o->batch);
        c->next[run] += o->batch;
        run += o->n_clients;
        if (run >= o->n_runs)
            run = c->index;
    }
    bench_http_close(&h);
    rv_buf_free(&body);
    rv_buf_free(&out);
    return NULL;
}

/* The number of keys under /rv/m/ (a count-only range), or -1. */
static long long
bp_etcd_count(const struct bp_opts *o)
{
    struct bench_http h;
    struct rv_buf body, out;
    long long n = -1;
    rv_buf_init(&body);
    rv_buf_init(&out);
    bp_append_str(&body, "{\"key\":\"");
    bp_b64(&body, "/rv/m/", 6);
    bp_append_str(&body, "\",\"range_end\":\"");
    bp_b64(&body, "/rv/m0", 6);
    bp_append_str(&body, "\",\"count_only\":true}");
    if (bench_http_open(&h, o->eps[0]) == 0 &&
        bench_http_do(&h, "POST", "/v3/kv/range", NULL, (const char *)body.data,
                      body.len, &out) == 200) {
        /* int64 fields are JSON strings in the gateway's answers; a zero
         * count is left out. */
        uint64_t v = 0;
        if (bench_json_u64((const char *)out.data, "count", &v) >= 0 &&
            v <= INT64_MAX)
            n = (long long)v;
    }
    bench_http_close(&h);
    rv_buf_free(&body);
    rv_buf_free(&out);
    return n;
}

/* ---- PostgreSQL ------------------------------------------------------------
 */

static int
bp_pg_ok(PGconn *db, PGresult *r, char *err, size_t n, const char *what)
{
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, n, "%s: %s", what, PQerrorMessage(db));
    PQclear(r);
    return ok;
}

/* "INSERT INTO table (...) VALUES ($1,...,$6),(...)" for rows rows. */
static void
bp_pg_insert_sql(struct rv_buf *b, const char *table, unsigned rows)
{
    char t[96];
    rv_buf_reset(b);
    snprintf(t, sizeof t,
             "INSERT INTO %s (key, value, timestamp, step, is_nan, run_uuid) "
             "VALUES ",
             table);
    bp_append_str(b, t);
    for (unsigned r = 0; r < rows; r++) {
        unsigned p = 6 * r;
        snprintf(t, sizeof t, "%s($%u,$%u,$%u,$%u,$%u,$%u)", r ? "," : "",
                 p + 1, p + 2, p + 3, p + 4, p + 5, p + 6);
        bp_append_str(b, t);
    }
}

/* The two statements of a log_batch, prepared once per connection:
 * "metrics" inserts the batch; "latest" upserts each key's newest point,
 * replacing the stored one only if (step, timestamp, value) is greater,
 * MLflow's rule (SqlAlchemyStore._update_latest_metrics_if_necessary). */
static int
bp_pg_prepare(PGconn *db, unsigned batch, char *err, size_t n)
{
    struct rv_buf sql;
    rv_buf_init(&sql);
    bp_pg_insert_sql(&sql, "metrics", batch);
    rv_buf_append_u8(&sql, 0);
    int ok = bp_pg_ok(db, PQprepare(db, "metrics", (char *)sql.data, 0, NULL),
                      err, n, "prepare metrics");
    bp_pg_insert_sql(&sql, "latest_metrics", BP_KEYS);
    bp_append_str(&sql,
                  " ON CONFLICT (key, run_uuid) DO UPDATE SET "
                  "value = EXCLUDED.value, timestamp = EXCLUDED.timestamp, "
                  "step = EXCLUDED.step, is_nan = EXCLUDED.is_nan WHERE "
                  "(EXCLUDED.step, EXCLUDED.timestamp, EXCLUDED.value) > "
                  "(latest_metrics.step, latest_metrics.timestamp, "
                  "latest_metrics.value)");
    rv_buf_append_u8(&sql, 0);
    ok = ok && bp_pg_ok(db, PQprepare(db, "latest", (char *)sql.data, 0, NULL),
                        err, n, "prepare latest_metrics");
    rv_buf_free(&sql);
    return ok;
}

/* Text parameters for rows points: 6 per row, 48 bytes each at most. */
struct bp_pg_params {
    char text[BP_MAX_BATCH * 6][48];
    const char *p[BP_MAX_BATCH * 6];
};

static void
bp_pg_fill(struct bp_pg_params *pp, const struct bp_point *const *pts,
           unsigned rows, int64_t ts)
{
    for (unsigned r = 0; r < rows; r++) {
        char(*t)[48] = &pp->text[6 * r];
        snprintf(t[0], 48, "%s", bp_key_names[pts[r]->key]);
        snprintf(t[1], 48, "%.17g", pts[r]->value);
        snprintf(t[2], 48, "%lld", (long long)ts);
        snprintf(t[3], 48, "%lld", (long long)pts[r]->step);
        snprintf(t[4], 48, "false");
        bp_run_uuid(pts[r]->run, t[5]);
        for (int k = 0; k < 6; k++)
            pp->p[6 * r + (unsigned)k] = t[k];
    }
}

/* One log_batch: BEGIN, the metrics, the latest values, COMMIT. */
static int
bp_pg_log_batch(PGconn *db, struct bp_pg_params *pp, const struct bp_point *pts,
                unsigned n, char *err, size_t en)
{
    const struct bp_point *rows[BP_MAX_BATCH], *latest[BP_KEYS] = {0};
    int64_t ts = (int64_t)rv_clock_wall_ms();
    for (unsigned i = 0; i < n; i++) {
        rows[i] = &pts[i];
        latest[pts[i].key] = &pts[i]; /* Steps ascend: the last wins. */
    }
    if (!bp_pg_ok(db, PQexec(db, "BEGIN"), err, en, "begin"))
        return 0;
    bp_pg_fill(pp, rows, n, ts);
    int ok = bp_pg_ok(
        db, PQexecPrepared(db, "metrics", (int)(6 * n), pp->p, NULL, NULL, 0),
        err, en, "insert metrics");
    bp_pg_fill(pp, latest, BP_KEYS, ts);
    ok = ok && bp_pg_ok(db,
                        PQexecPrepared(db, "latest", 6 * BP_KEYS, pp->p, NULL,
                                       NULL, 0),
                        err, en, "upsert latest_metrics");
    if (!ok) {
        PQclear(PQexec(db, "ROLLBACK"));
        return 0;
    }
    return bp_pg_ok(db, PQexec(db, "COMMIT"), err, en, "commit");
}

static void *
bp_pg_client(void *arg)
{
    struct bp_client *c = arg;
    const struct bp_opts *o = c->o;
    struct bp_point pts[BP_MAX_BATCH];
    struct bp_pg_params *pp = malloc(sizeof *pp);
    PGconn *db = PQconnectdb(o->target);
    if (pp == NULL || PQstatus(db) != CONNECTION_OK ||
        !bp_pg_prepare(db, o->batch, c->err, sizeof c->err)) {
        if (c->err[0] == '\0')
            snprintf(c->err, sizeof c->err, "client %d: %s", c->index,
                     PQerrorMessage(db));
        PQfinish(db);
        free(pp);
        return NULL;
    }
    int run = c->index;
    while (run < o->n_runs && rv_clock_mono_ms() < c->deadline_ms) {
        for (unsigned i = 0; i < o->batch; i++)
            bp_point_of(run, c->next[run] + i, &pts[i]);
        uint64_t t0 = rv_clock_mono_ns();
        if (!bp_pg_log_batch(db, pp, pts, o->batch, c->err, sizeof c->err))
            break;
        bp_count(c, t0, o->batch);
        c->next[run] += o->batch;
        run += o->n_clients;
        if (run >= o->n_runs)
            run = c->index;
    }
    PQfinish(db);
    free(pp);
    return NULL;
}

/* The experiment and its runs, created as MLflow's create_run does
 * (a runs row plus the run-name and user tags), before the clock starts. */
static int
bp_pg_setup(const struct bp_opts *o)
{
    PGconn *db = PQconnectdb(o->target);
    char err[512] = "", sql[1024];
    int ok = PQstatus(db) == CONNECTION_OK;
    if (!ok)
        snprintf(err, sizeof err, "%s", PQerrorMessage(db));
    ok = ok && bp_pg_ok(db,
                        PQexec(db, "INSERT INTO experiments (name, "
                                   "artifact_location, lifecycle_stage, "
                                   "creation_time, last_update_time) VALUES "
                                   "('bench', '/tmp/bench', 'active', 0, 0)"),
                        err, sizeof err, "experiment");
    for (int r = 0; ok && r < o->n_runs; r++) {
        char uuid[33];
        bp_run_uuid(r, uuid);
        snprintf(sql, sizeof sql,
                 "BEGIN; INSERT INTO runs (run_uuid, name, source_type, "
                 "source_name, entry_point_name, user_id, status, start_time, "
                 "source_version, lifecycle_stage, artifact_uri, "
                 "experiment_id) SELECT '%s', 'run-%d', 'LOCAL', '', '', "
                 "'bench', 'RUNNING', %llu, '', 'active', '/tmp/bench/%s', "
                 "experiment_id FROM experiments WHERE name = 'bench'; "
                 "INSERT INTO tags (key, value, run_uuid) VALUES "
                 "('mlflow.runName', 'run-%d', '%s'), ('mlflow.user', "
                 "'bench', '%s'); COMMIT",
                 uuid, r, (unsigned long long)rv_clock_wall_ms(), uuid, r, uuid,
                 uuid);
        ok = bp_pg_ok(db, PQexec(db, sql), err, sizeof err, "create run");
    }
    if (!ok)
        fprintf(stderr, "bench_peers: postgres setup: %s\n", err);
    PQfinish(db);
    return ok ? 0 : -1;
}

static long long
bp_pg_count(const struct bp_opts *o)
{
    PGconn *db = PQconnectdb(o->target);
    long long n = -1;
    PGresult *r = PQexec(db, "SELECT count(*) FROM metrics");
    uint64_t v;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
        bench_parse_u64(PQgetvalue(r, 0, 0), 0, INT64_MAX, &v) == 0)
        n = (long long)v;
    PQclear(r);
    PQfinish(db);
    return n;
}

/* ---- Driver ----------------------------------------------------------------
 */

static int
bp_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
bp_pct(const double *v, size_t n, double p)
{
    return n == 0 ? 0 : v[(size_t)((double)(n - 1) * p)];
}

static int
bp_run(const struct bp_opts *o)
{
    pthread_t th[BP_MAX_CLIENTS];
    struct bp_client *cl = calloc((size_t)o->n_clients, sizeof *cl);
    uint64_t *next = calloc((size_t)o->n_runs, sizeof *next);
    if (cl == NULL || next == NULL ||
        (o->kind == BP_POSTGRES && bp_pg_setup(o) != 0)) {
        free(cl);
        free(next);
        return 1;
    }
    uint64_t t0 = rv_clock_mono_ms();
    for (int i = 0; i < o->n_clients; i++) {
        memset(&cl[i], 0, sizeof cl[i]);
        cl[i].index = i;
        cl[i].o = o;
        cl[i].next = next; /* Each client only touches its own runs. */
        cl[i].measure_from_ms = t0 + o->warmup_ms;
        cl[i].deadline_ms = t0 + o->warmup_ms + o->seconds * 1000u;
        cl[i].lat_ms = malloc(BP_MAX_LAT * sizeof *cl[i].lat_ms);
        pthread_create(&th[i], NULL,
                       o->kind == BP_ETCD ? bp_etcd_client : bp_pg_client,
                       &cl[i]);
    }
    uint64_t acked = 0, counted = 0, retries = 0;
    size_t n_lat = 0;
    for (int i = 0; i < o->n_clients; i++) {
        pthread_join(th[i], NULL);
        acked += cl[i].n_acked;
        counted += cl[i].n_counted;
        retries += cl[i].n_retries;
        n_lat += cl[i].n_lat;
        if (cl[i].err[0] != '\0')
            fprintf(stderr, "bench_peers: %s\n", cl[i].err);
    }
    double *all = malloc((n_lat ? n_lat : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < o->n_clients; i++) {
        memcpy(all + k, cl[i].lat_ms, cl[i].n_lat * sizeof *all);
        k += cl[i].n_lat;
        free(cl[i].lat_ms);
    }
    qsort(all, k, sizeof *all, bp_cmp);
    if (o->lat_file != NULL) {
        FILE *f = fopen(o->lat_file, "w");
        for (size_t i = 0; f != NULL && i < k; i++)
            fprintf(f, "%.3f\n", all[i]);
        if (f != NULL)
            fclose(f);
    }
    long long stored = o->kind == BP_ETCD ? bp_etcd_count(o) : bp_pg_count(o);
    uint64_t lost = stored < 0                 ? acked
                    : (uint64_t)stored < acked ? acked - (uint64_t)stored
                                               : 0;
    printf("{\"figure\":\"ingest_%s\",\"points_per_s\":%.0f,\"acked\":%llu,"
           "\"clients\":%d,\"runs\":%d,\"points_per_request\":%u,"
           "\"seconds\":%u,\"warmup_ms\":%u,\"p50_ms\":%.2f,\"p90_ms\":%.2f,"
           "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"requests\":%zu,"
           "\"retries\":%llu,\"stored\":%lld,\"acked_lost\":%llu}\n",
           o->kind == BP_ETCD ? "etcd" : "postgres",
           (double)counted / (double)o->seconds, (unsigned long long)acked,
           o->n_clients, o->n_runs, o->batch, o->seconds, o->warmup_ms,
           bp_pct(all, k, 0.5), bp_pct(all, k, 0.9), bp_pct(all, k, 0.99),
           k ? all[k - 1] : 0, k, (unsigned long long)retries, stored,
           (unsigned long long)lost);
    free(all);
    free(next);
    free(cl);
    return acked == 0 || lost > 0;
}

static int
bp_parse_eps(struct bp_opts *o)
{
    const char *s = o->target;
    while (*s != '\0' && o->n_eps < BP_MAX_EPS) {
        size_t n = strcspn(s, ",");
        if (n == 0 || n >= sizeof o->eps[0])
            return -1;
        memcpy(o->eps[o->n_eps], s, n);
        o->eps[o->n_eps++][n] = '\0';
        s += n + (s[n] == ',');
    }
    return o->n_eps > 0 ? 0 : -1;
}

static unsigned
bp_uint(const char *flag, const char *v, unsigned lo, unsigned hi, int *is_bad)
{
    return (unsigned)bench_flag_u64("bench_peers", flag, v, lo, hi, is_bad);
}

int
main(int argc, char **argv)
{
    struct bp_opts o = {.n_clients = 16, .n_runs = 48, .seconds = 10};
    int is_bad = argc < 3;
    if (!is_bad) {
        is_bad =
            strcmp(argv[1], "etcd") != 0 && strcmp(argv[1], "postgres") != 0;
        o.kind = strcmp(argv[1], "etcd") == 0 ? BP_ETCD : BP_POSTGRES;
        o.target = argv[2];
    }
    for (int i = 3; !is_bad && i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(a, "--clients") == 0)
            o.n_clients = (int)bp_uint(a, v, 1, BP_MAX_CLIENTS, &is_bad);
        else if (strcmp(a, "--runs") == 0)
            o.n_runs = (int)bp_uint(a, v, 1, 100000, &is_bad);
        else if (strcmp(a, "--seconds") == 0)
            o.seconds = bp_uint(a, v, 1, 3600, &is_bad);
        else if (strcmp(a, "--warmup-ms") == 0)
            o.warmup_ms = bp_uint(a, v, 0, 600000, &is_bad);
        else if (strcmp(a, "--batch") == 0)
            o.batch = bp_uint(a, v, BP_KEYS, BP_MAX_BATCH, &is_bad);
        else if (strcmp(a, "--lat-file") == 0)
            o.lat_file = v;
        else
            is_bad = 1;
    }
    if (o.batch == 0)
        o.batch = o.kind == BP_ETCD ? 128 : 1000;
    if (!is_bad && o.kind == BP_ETCD)
        is_bad = bp_parse_eps(&o) != 0;
    if (is_bad || o.n_clients > o.n_runs) {
        fprintf(stderr,
                "usage: bench_peers etcd HOST:PORT[,...] | postgres CONNINFO "
                "[--clients N] [--runs N >= clients] [--seconds N] "
                "[--warmup-ms N] [--batch 10-1000] [--lat-file PATH]\n");
        return 2;
    }
    return bp_run(&o);
}
