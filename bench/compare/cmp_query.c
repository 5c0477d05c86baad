/* Query comparison: runvault (3 nodes, HTTP/JSON) against PostgreSQL 15
 * holding MLflow's tracking schema, on the same run set.
 *
 *   load     the shared run set (bench/bench_runs.h, seed 2, as
 *            bench_gateway) into runvault through its native RPC write
 *            path (250 runs per write, replicated by raft) and, in a
 *            second thread, into PostgreSQL with COPY (bulk load, then
 *            MLflow's primary keys, foreign keys and indexes, then the
 *            operator's indexes, then VACUUM ANALYZE); plus one long
 *            series (run hist000000000, key loss) into both.
 *   query    ten MLflow-search-style filter + sort queries, first page of
 *            CQ_PAGE runs. Each query is defined once (struct cq_query) and
 *            rendered twice: as runvault's filter/order_by for GET
 *            /api/v2/experiments, and as the SQL MLflow's SqlAlchemyStore
 *            generates for search_runs (filter subqueries joined, order
 *            subqueries outer-joined, DISTINCT, CASE columns for missing
 *            values, start_time DESC and run_uuid tie-breakers). Rounds
 *            alternate the systems (A B, then B A) with the same constants,
 *            and every pair's run ids are compared.
 *   history  the series downsampled to CQ_DOWNSAMPLE points (runvault's
 *            M4: first, last, min, max per bucket) against the same M4 in
 *            SQL over the metrics table.
 *
 * usage: cmp_query --http H:P,H:P,H:P --rpc tcp://..,.. --pg CONNINFO
 *        --out DIR [--runs N] [--reps N] [--history-points N]
 *        [--budget-s S]   (S: seconds for the query and history phase)
 *        [--teams N] [--token-file FILE]
 * Writes DIR/query.json, DIR/query_cdf_runvault.dat,
 * DIR/query_cdf_postgres.dat and DIR/query_plans.txt, prints a table.
 * --teams N: the runs go to teams t0..t(N-1) (RunCreate.team, a hash of
 * the run's number) instead of the run set's own. --token-file FILE (else
 * $RUNVAULT_TOKEN): every runvault request carries that token
 * (Request.token natively, Authorization: Bearer over HTTP).
 *
 * Auth off against auth on (bench/compare/auth.sh), no PostgreSQL:
 *   cmp_query --rpc OFF_LIST --rpc-auth ON_LIST --token-file ADMIN
 *        --teams N --as-team tI --out DIR [--runs N] [--reps N]
 *        [--history-points N] [--budget-s S]
 * ADMIN is the auth-on cluster's cluster-admin token (its first leader's
 * admin.token). Creates the N teams on both clusters and a reader token of
 * tI on the auth-on one (Command.team_put, Command.token_put, hash only),
 * loads the same runs and the history series (in tI) into both, then
 * times the ten shapes and the history as tI over native RPC in pairs
 * that alternate the order: auth off with ListRunsRequest.team = tI, auth
 * on through the reader token alone (the node scopes it). Every pair must
 * return the same runs, all of team tI. Writes DIR/query_auth.json.
 * Exits 1 on a load failure or if any pair returned different runs. */
#include "base/buf.h"
#include "base/clock.h"
#include "bench/bench_args.h"
#include "bench/bench_auth.h"
#include "bench/bench_http.h"
#include "bench/bench_runs.h"
#include "proto/metrics_builder.h"
#include "rpc/client/client.h"
#include "rpc/client/tls.h"

#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --tls-ca: the client's TLS settings for tls+tcp:// endpoints (set once
 * before any thread starts, read-only after); NULL: plain only. */
static struct rvc_tls *cq_tls;

/* rvc_open with cq_tls. */
static int
cq_rvc_open(struct rvc **c, const char *endpoints, char *errmsg)
{
    int rc = rvc_open(c, endpoints, errmsg);
    if (rc == RV_OK)
        rvc_set_tls(*c, cq_tls);
    return rc;
}

#define CQ_PAGE         50
#define CQ_RUN_SEED     2 /* bench_gateway's run set. */
#define CQ_HIST_SEED    7
#define CQ_HIST_RUN     "hist000000000"
#define CQ_HIST_KEY     "loss"
#define CQ_HIST_EXP     201 /* MLflow experiment id of "hist/series". */
#define CQ_HIST_BATCH   1000
#define CQ_DOWNSAMPLE   1000
#define CQ_PROJECTS     10
#define CQ_EXPS         20 /* Per project. */
#define CQ_MAX_QUERIES  16
#define CQ_BLOCKS       5 /* For the median of per-block p99 ratios. */
#define CQ_SQL_BYTES    8192
#define CQ_COPY_FLUSH   (1u << 20)
#define CQ_RESERVE_S    30 /* Budget kept for the history and teardown. */
#define CQ_LOAD_THREADS 8
#define CQ_MIN_PAIRS    10    /* A query keeps at least this many pairs. */
#define CQ_HTTP_MS      30000 /* HTTP timeout per exchange. */
#define CQ_MAX_TEAMS    100
#define CQ_AUTH_CHUNKS  4 /* The auth comparison's load, alternated. */

/* ---- Small helpers -------------------------------------------------------
 */

static int
cq_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-quantile of v[0, n) (sorted copy; v is left alone). */
static double
cq_pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    double *s = malloc(n * sizeof *s);
    if (s == NULL)
        return 0;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cq_cmp_double);
    double r = s[(size_t)((double)(n - 1) * p + 0.5)];
    free(s);
    return r;
}

static double
cq_now_ms(void)
{
    return (double)rv_clock_mono_ns() / 1e6;
}

/* Append s to f as a JSON string. */
static void
cq_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static const char *
cq_status_name(Rv__RunStatus s)
{
    switch (s) {
    case RV__RUN_STATUS__RUNNING:
        return "RUNNING";
    case RV__RUN_STATUS__SCHEDULED:
        return "SCHEDULED";
    case RV__RUN_STATUS__FINISHED:
        return "FINISHED";
    case RV__RUN_STATUS__FAILED:
        return "FAILED";
    case RV__RUN_STATUS__KILLED:
        return "KILLED";
    default:
        return "FAILED";
    }
}

/* MLflow experiment id of run r's (project, experiment) pair. */
static unsigned
cq_exp_id(size_t r)
{
    return (unsigned)((r % CQ_PROJECTS) * CQ_EXPS + (r / 10) % CQ_EXPS + 1);
}

/* The history series, identical for both systems. */
static void
cq_hist_point(struct rv_rng *rng, int64_t step, int64_t *ts, double *value)
{
    *ts = 1690000000000 + 10 * step;
    *value = 1.0 + 0.5 * sin((double)step / 5000.0) + 0.1 * rv_rng_double(rng);
}

/* ---- HTTP (bench/bench_http.h) ------------------------------------------- */

/* GET uri; the status (-1 on a transport failure), the body NUL-terminated
 * in out (empty on a failure). */
static int
cq_http_get(struct bench_http *h, const char *uri, struct rv_buf *out)
{
    rv_buf_reset(out);
    int status = bench_http_do(h, "GET", uri, NULL, NULL, 0, out);
    if (status < 0)
        rv_buf_append_u8(out, 0);
    return status;
}

/* The unsigned number "name": in a JSON text; -1 if there is none, -2 if
 * it is not a count (bench_json_u64) or not below 2^63. */
static long long
cq_json_u64(const char *body, const char *name)
{
    uint64_t v;
    int rc = bench_json_u64(body, name, &v);
    return rc > 0 ? -1 : rc < 0 || v > INT64_MAX ? -2 : (long long)v;
}

/* ---- Loading runvault ----------------------------------------------------
 */

/* "t0".."t<CQ_MAX_TEAMS - 1>", made by cq_teams_init() before any loader
 * starts. */
static char cq_teams[CQ_MAX_TEAMS][8];

static void
cq_teams_init(void)
{
    for (int i = 0; i < CQ_MAX_TEAMS; i++)
        snprintf(cq_teams[i], sizeof cq_teams[i], "t%d", i);
}

/* The team of run r among n: a multiplicative hash of r, so each team's
 * runs are spread over every project and experiment (r % 10 and r / 10 %
 * 20 pick those). */
static const char *
cq_team_name(size_t r, size_t n)
{
    uint64_t h = (uint64_t)r * UINT64_C(0x9E3779B97F4A7C15);
    return cq_teams[(h >> 32) % n];
}

/* 1 if team is one of the first n teams' names. */
static int
cq_is_team_of(const char *team, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(team, cq_teams[i]) == 0)
            return 1;
    return 0;
}

/* One write of cmds as token (NULL: none). */
static int
cq_rv_write(struct rvc *rvc, const char *token, Rv__Command **cmds, size_t n,
            char *errmsg)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
    Rv__Response *resp = NULL;
    wr.n_commands = n;
    wr.commands = cmds;
    req.body_case = RV__REQUEST__BODY_WRITE;
    req.write = &wr;
    req.token = (char *)token;
    int r = rvc_call(rvc, &req, &resp, errmsg);
    int ok = r == RV_OK && resp->code == RV_OK;
    size_t bad = 0;
    /* A write retried inside rvc_call (after an unknown outcome, e.g. a
     * leader change) answers its already applied commands with ESTALE
     * (older than the kept window): those applied once. */
    for (; ok && bad < resp->n_results; bad++)
        ok = resp->results[bad]->code == RV_OK ||
             resp->results[bad]->code == RV_ESTALE;
    if (r == RV_OK && !ok) {
        int code = (int)resp->code;
        const char *msg = resp->message;
        if (code == RV_OK && bad > 0) {
            code = (int)resp->results[bad - 1]->code;
            msg = resp->results[bad - 1]->message;
        }
        snprintf(errmsg, RV_ERRMSG_SIZE, "%s (%s)", rv_strerror(code),
                 msg != NULL ? msg : "");
    }
    rvc_response_free(resp);
    return ok ? 0 : -1;
}

/* One of CQ_LOAD_THREADS writers. Each generates the whole run set (the
 * generator is sequential and cheap) and sends the batches whose number
 * is its own modulo CQ_LOAD_THREADS, over its own connection: concurrent
 * writes are what raft's group commit batches. The order runs are created
 * in does not change any answer (ties sort by start_time, then run id). */
struct cq_rv_loader {
    const char *endpoints;
    const char *token;     /* NULL: auth off. */
    size_t n_teams;        /* 0: the run set's own teams. */
    size_t lo, n_runs, id; /* Runs [lo, n_runs). */
    uint64_t seed;         /* Of the run set from run lo on. */
    uint64_t client_id;    /* Idempotency keys: this id, seq from 1. */
    int rc;
    struct bench_runs runs;
};

static void *
cq_rv_load_main(void *arg)
{
    struct cq_rv_loader *w = arg;
    char errmsg[RV_ERRMSG_SIZE] = "";
    struct rv_rng rng;
    struct rvc *rvc;
    w->rc = -1;
    if (cq_rvc_open(&rvc, w->endpoints, errmsg) != RV_OK) {
        fprintf(stderr, "cmp_query: runvault: %s\n", errmsg);
        return NULL;
    }
    rv_rng_seed(&rng, w->seed);
    bench_runs_init(&w->runs);
    size_t batch = 0;
    uint64_t seq = 0;
    for (size_t base = w->lo; base < w->n_runs;
         base += BENCH_RUNS_PER_FILL, batch++) {
        size_t k = w->n_runs - base < BENCH_RUNS_PER_FILL ? w->n_runs - base
                                                          : BENCH_RUNS_PER_FILL;
        bench_runs_fill(&w->runs, base, k, &rng);
        if (batch % CQ_LOAD_THREADS != w->id)
            continue;
        for (size_t j = 0; j < k && w->n_teams > 0; j++)
            w->runs.rc[j].team = (char *)cq_team_name(base + j, w->n_teams);
        for (size_t j = 0; j < 2 * k; j++) { /* Idempotency keys. */
            w->runs.cmds[j]->has_client_id = w->runs.cmds[j]->has_seq = 1;
            w->runs.cmds[j]->client_id = w->client_id;
            w->runs.cmds[j]->seq = ++seq;
        }
        if (w->id == 0 && base % 100000 < BENCH_RUNS_PER_FILL && base > 0)
            fprintf(stderr, "cmp_query: runvault: ~%zu runs written\n", base);
        if (cq_rv_write(rvc, w->token, w->runs.cmds, 2 * k, errmsg) != 0) {
            fprintf(stderr, "cmp_query: runvault load failed at run %zu: %s\n",
                    base, errmsg);
            bench_runs_free(&w->runs);
            rvc_close(rvc);
            return NULL;
        }
    }
    bench_runs_free(&w->runs);
    rvc_close(rvc);
    w->rc = 0;
    return NULL;
}

/* Runs [lo, hi) of the run set whose run lo starts at seed (the whole
 * set: 0, n, CQ_RUN_SEED), by CQ_LOAD_THREADS writers with client ids
 * from client_base on. */
static int
cq_rv_load_range(const char *endpoints, const char *token, size_t n_teams,
                 size_t lo, size_t hi, uint64_t seed, uint64_t client_base)
{
    static struct cq_rv_loader w[CQ_LOAD_THREADS];
    pthread_t th[CQ_LOAD_THREADS];
    int rc = 0;
    for (size_t i = 0; i < CQ_LOAD_THREADS; i++) {
        w[i].endpoints = endpoints;
        w[i].token = token;
        w[i].n_teams = n_teams;
        w[i].lo = lo;
        w[i].n_runs = hi;
        w[i].seed = seed;
        w[i].client_id = client_base + i;
        w[i].id = i;
        w[i].rc = -1;
        if (pthread_create(&th[i], NULL, cq_rv_load_main, &w[i]) != 0)
            return -1; /* The process exits: no join needed. */
    }
    for (size_t i = 0; i < CQ_LOAD_THREADS; i++) {
        pthread_join(th[i], NULL);
        rc |= w[i].rc;
    }
    return rc;
}

static int
cq_rv_load_runs(const char *endpoints, const char *token, size_t n_teams,
                size_t n_runs)
{
    return cq_rv_load_range(endpoints, token, n_teams, 0, n_runs, CQ_RUN_SEED,
                            1000);
}

/* The history run (in team, or "infra") and its series, as token. */
static int
cq_rv_load_history(struct rvc *rvc, const char *token, const char *team,
                   size_t n_points)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__RunCreate rc = RV__RUN_CREATE__INIT;
    rc.run_id = CQ_HIST_RUN;
    rc.name = CQ_HIST_RUN;
    rc.project = "hist";
    rc.experiment = "series";
    rc.team = (char *)(team != NULL ? team : "infra");
    rc.created_at_ms = 1690000000000;
    rc.has_status = 1;
    rc.status = RV__RUN_STATUS__FINISHED;
    cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd.run_create = &rc;
    if (cq_rv_write(rvc, token, cmds, 1, errmsg) != 0) {
        fprintf(stderr, "cmp_query: history run: %s\n", errmsg);
        return -1;
    }
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__Metrics m;
    struct proto_metrics_builder mb;
    struct rv_rng rng;
    rv_rng_seed(&rng, CQ_HIST_SEED);
    proto_metrics_init(&mb);
    lb.run_id = CQ_HIST_RUN;
    lb.metrics = &m;
    cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd.log_batch = &lb;
    for (size_t s0 = 0; s0 < n_points; s0 += CQ_HIST_BATCH) {
        size_t k =
            n_points - s0 < CQ_HIST_BATCH ? n_points - s0 : CQ_HIST_BATCH;
        proto_metrics_reset(&mb);
        for (size_t i = 0; i < k; i++) {
            int64_t ts;
            double v;
            cq_hist_point(&rng, (int64_t)(s0 + i), &ts, &v);
            if (proto_metrics_add(&mb, CQ_HIST_KEY, NULL, (int64_t)(s0 + i), ts,
                                  v, NULL) != RV_OK)
                abort();
        }
        proto_metrics_view(&mb, &m);
        if (cq_rv_write(rvc, token, cmds, 1, errmsg) != 0) {
            fprintf(stderr, "cmp_query: history batch %zu: %s\n", s0, errmsg);
            proto_metrics_free(&mb);
            return -1;
        }
    }
    proto_metrics_free(&mb);
    return 0;
}

/* ---- Loading PostgreSQL --------------------------------------------------
 */

/* MLflow's tracking tables (tests/db/schemas/postgresql.sql in MLflow,
 * columns and types as there), created without constraints for the bulk
 * load; cq_pg_ddl_after adds MLflow's keys and indexes afterwards. */
static const char cq_pg_ddl_before[] =
    "CREATE TABLE experiments (experiment_id SERIAL NOT NULL,"
    " name VARCHAR(256) NOT NULL, artifact_location VARCHAR(256),"
    " lifecycle_stage VARCHAR(32), creation_time BIGINT,"
    " last_update_time BIGINT,"
    " CONSTRAINT experiment_pk PRIMARY KEY (experiment_id),"
    " CONSTRAINT experiments_name_key UNIQUE (name),"
    " CONSTRAINT experiments_lifecycle_stage CHECK (lifecycle_stage IN"
    " ('active', 'deleted')));"
    "CREATE TABLE runs (run_uuid VARCHAR(32) NOT NULL, name VARCHAR(250),"
    " source_type VARCHAR(20), source_name VARCHAR(500),"
    " entry_point_name VARCHAR(50), user_id VARCHAR(256),"
    " status VARCHAR(9), start_time BIGINT, end_time BIGINT,"
    " source_version VARCHAR(50), lifecycle_stage VARCHAR(20),"
    " artifact_uri VARCHAR(200), experiment_id INTEGER,"
    " deleted_time BIGINT,"
    " CONSTRAINT runs_lifecycle_stage CHECK (lifecycle_stage IN"
    " ('active', 'deleted')),"
    " CONSTRAINT runs_status_check CHECK (status IN ('SCHEDULED', 'FAILED',"
    " 'FINISHED', 'RUNNING', 'KILLED')),"
    " CONSTRAINT source_type CHECK (source_type IN ('NOTEBOOK', 'JOB',"
    " 'LOCAL', 'UNKNOWN', 'PROJECT')));"
    "CREATE TABLE metrics (key VARCHAR(250) NOT NULL,"
    " value DOUBLE PRECISION NOT NULL, timestamp BIGINT NOT NULL,"
    " run_uuid VARCHAR(32) NOT NULL, step BIGINT DEFAULT 0 NOT NULL,"
    " is_nan BOOLEAN DEFAULT false NOT NULL);"
    "CREATE TABLE latest_metrics (key VARCHAR(250) NOT NULL,"
    " value DOUBLE PRECISION NOT NULL, timestamp BIGINT,"
    " step BIGINT NOT NULL, is_nan BOOLEAN NOT NULL,"
    " run_uuid VARCHAR(32) NOT NULL);"
    "CREATE TABLE params (key VARCHAR(250) NOT NULL,"
    " value VARCHAR(8000) NOT NULL, run_uuid VARCHAR(32) NOT NULL);"
    "CREATE TABLE tags (key VARCHAR(250) NOT NULL, value VARCHAR(8000),"
    " run_uuid VARCHAR(32) NOT NULL);";

/* Each statement on its own (a multi-statement PQexec would be one
 * transaction, and the index builds are timed one by one). The first
 * group is MLflow's own (model constraints + migration bd07f7e963c5's
 * run_uuid indexes); the second what an operator adds for these
 * searches. */
static const char *const cq_pg_ddl_after[] = {
    "ALTER TABLE runs ADD CONSTRAINT run_pk PRIMARY KEY (run_uuid)",
    "ALTER TABLE runs ADD CONSTRAINT runs_experiment_id_fkey FOREIGN KEY "
    "(experiment_id) REFERENCES experiments (experiment_id)",
    "ALTER TABLE metrics ADD CONSTRAINT metric_pk PRIMARY KEY "
    "(key, timestamp, step, run_uuid, value, is_nan)",
    "ALTER TABLE metrics ADD CONSTRAINT metrics_run_uuid_fkey FOREIGN KEY "
    "(run_uuid) REFERENCES runs (run_uuid)",
    "ALTER TABLE latest_metrics ADD CONSTRAINT latest_metric_pk PRIMARY KEY "
    "(key, run_uuid)",
    "ALTER TABLE latest_metrics ADD CONSTRAINT latest_metrics_run_uuid_fkey "
    "FOREIGN KEY (run_uuid) REFERENCES runs (run_uuid)",
    "ALTER TABLE params ADD CONSTRAINT param_pk PRIMARY KEY (key, run_uuid)",
    "ALTER TABLE params ADD CONSTRAINT params_run_uuid_fkey FOREIGN KEY "
    "(run_uuid) REFERENCES runs (run_uuid)",
    "ALTER TABLE tags ADD CONSTRAINT tag_pk PRIMARY KEY (key, run_uuid)",
    "ALTER TABLE tags ADD CONSTRAINT tags_run_uuid_fkey FOREIGN KEY "
    "(run_uuid) REFERENCES runs (run_uuid)",
    "CREATE INDEX index_params_run_uuid ON params (run_uuid)",
    "CREATE INDEX index_metrics_run_uuid ON metrics (run_uuid)",
    "CREATE INDEX index_latest_metrics_run_uuid ON latest_metrics "
    "(run_uuid)",
    "CREATE INDEX index_tags_run_uuid ON tags (run_uuid)",
    /* The operator's indexes. */
    "CREATE INDEX op_runs_experiment_start ON runs "
    "(experiment_id, start_time DESC, run_uuid)",
    "CREATE INDEX op_runs_start ON runs (start_time DESC, run_uuid)",
    "CREATE INDEX op_runs_status_start ON runs (status, start_time DESC)",
    "CREATE INDEX op_runs_name ON runs (name)",
    "CREATE INDEX op_latest_metrics_key_value ON latest_metrics "
    "(key, value, run_uuid)",
    "CREATE INDEX op_params_key_value ON params (key, value, run_uuid)",
    "CREATE INDEX op_tags_key_value ON tags (key, value, run_uuid)",
    "CREATE INDEX op_metrics_run_key_step ON metrics (run_uuid, key, step)",
    "VACUUM ANALYZE",
};

enum cq_table { CQ_T_RUNS, CQ_T_PARAMS, CQ_T_TAGS, CQ_T_METRICS, CQ_T_LATEST };

static const char *const cq_copy_sql[] = {
    "COPY runs FROM STDIN",
    "COPY params (key, value, run_uuid) FROM STDIN",
    "COPY tags (key, value, run_uuid) FROM STDIN",
    "COPY metrics (key, value, timestamp, run_uuid, step, is_nan) FROM STDIN",
    "COPY latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
    "FROM STDIN",
};

struct cq_pg_load {
    const char *conninfo;
    size_t n_runs, n_hist;
    double load_s, index_s;
    int is_failed;
    char err[512];
};

static int
cq_pg_exec(PGconn *pg, const char *sql, char *err, size_t cap)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, cap, "%.120s: %s", sql, PQerrorMessage(pg));
    PQclear(res);
    return ok ? 0 : -1;
}

static void
cq_copy_flush(PGconn *pg, struct rv_buf *b, int *is_failed)
{
    if (b->len > 0 &&
        PQputCopyData(pg, (const char *)b->data, (int)b->len) != 1)
        *is_failed = 1;
    rv_buf_reset(b);
}

/* The COPY rows of run r (from the generator's commands) for table t. */
static void
cq_copy_run_rows(struct rv_buf *b, enum cq_table t, size_t r,
                 const Rv__RunCreate *rc, const Rv__Metrics *m)
{
    const char *id = rc->run_id;
    switch (t) {
    case CQ_T_RUNS:
        rv_buf_printf(b,
                      "%s\t%s\tUNKNOWN\t\t\t\t%s\t%lld\t\\N\t\tactive\t"
                      "mlflow-artifacts:/%u/%s/artifacts\t%u\t\\N\n",
                      id, rc->name, cq_status_name(rc->status),
                      (long long)rc->created_at_ms, cq_exp_id(r), id,
                      cq_exp_id(r));
        break;
    case CQ_T_PARAMS:
        for (size_t j = 0; j < rc->n_params; j++)
            rv_buf_printf(b, "%s\t%s\t%s\n", rc->params[j]->key,
                          rc->params[j]->value, id);
        break;
    case CQ_T_TAGS:
        for (size_t j = 0; j < rc->n_tags; j++)
            rv_buf_printf(b, "%s\t%s\t%s\n", rc->tags[j]->key,
                          rc->tags[j]->value, id);
        break;
    case CQ_T_METRICS:
        for (size_t j = 0; j < m->n_values; j++)
            rv_buf_printf(b, "%s\t%.17g\t%lld\t%s\t%lld\tfalse\n",
                          m->keys[m->key_idx[j]], m->values[j],
                          (long long)m->timestamps_ms[j], id,
                          (long long)m->steps[j]);
        break;
    case CQ_T_LATEST:
        /* One point per key in this run set: it is the latest. */
        for (size_t j = 0; j < m->n_values; j++)
            rv_buf_printf(b, "%s\t%.17g\t%lld\t%lld\tfalse\t%s\n",
                          m->keys[m->key_idx[j]], m->values[j],
                          (long long)m->timestamps_ms[j],
                          (long long)m->steps[j], id);
        break;
    }
}

/* The history run's rows for table t. */
static void
cq_copy_hist_rows(PGconn *pg, struct rv_buf *b, enum cq_table t,
                  size_t n_points, int *is_failed)
{
    struct rv_rng rng;
    int64_t ts = 0;
    double v = 0;
    rv_rng_seed(&rng, CQ_HIST_SEED);
    if (t == CQ_T_RUNS)
        rv_buf_printf(b,
                      "%s\t%s\tUNKNOWN\t\t\t\tFINISHED\t1690000000000\t\\N\t\t"
                      "active\tmlflow-artifacts:/%d/%s/artifacts\t%d\t\\N\n",
                      CQ_HIST_RUN, CQ_HIST_RUN, CQ_HIST_EXP, CQ_HIST_RUN,
                      CQ_HIST_EXP);
    if (t != CQ_T_METRICS && t != CQ_T_LATEST)
        return;
    for (size_t s = 0; s < n_points; s++) {
        cq_hist_point(&rng, (int64_t)s, &ts, &v);
        if (t == CQ_T_METRICS)
            rv_buf_printf(b, "%s\t%.17g\t%lld\t%s\t%zu\tfalse\n", CQ_HIST_KEY,
                          v, (long long)ts, CQ_HIST_RUN, s);
        if (b->len > CQ_COPY_FLUSH)
            cq_copy_flush(pg, b, is_failed);
    }
    if (t == CQ_T_LATEST && n_points > 0)
        rv_buf_printf(b, "%s\t%.17g\t%lld\t%zu\tfalse\t%s\n", CQ_HIST_KEY, v,
                      (long long)ts, n_points - 1, CQ_HIST_RUN);
}

static int
cq_pg_copy_table(PGconn *pg, struct cq_pg_load *L, enum cq_table t, char *err,
                 size_t cap)
{
    struct bench_runs *runs = malloc(sizeof *runs); /* One per thread. */
    struct rv_rng rng;
    struct rv_buf b;
    int is_failed = 0;
    if (runs == NULL)
        return -1;
    bench_runs_init(runs);
    PGresult *res = PQexec(pg, cq_copy_sql[t]);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        snprintf(err, cap, "%s: %s", cq_copy_sql[t], PQerrorMessage(pg));
        PQclear(res);
        free(runs);
        return -1;
    }
    PQclear(res);
    rv_buf_init(&b);
    rv_rng_seed(&rng, CQ_RUN_SEED);
    for (size_t base = 0; base < L->n_runs && !is_failed;
         base += BENCH_RUNS_PER_FILL) {
        size_t k = L->n_runs - base < BENCH_RUNS_PER_FILL ? L->n_runs - base
                                                          : BENCH_RUNS_PER_FILL;
        bench_runs_fill(runs, base, k, &rng);
        for (size_t i = 0; i < k; i++)
            cq_copy_run_rows(&b, t, base + i, &runs->rc[i], &runs->m[i]);
        if (b.len > CQ_COPY_FLUSH)
            cq_copy_flush(pg, &b, &is_failed);
    }
    cq_copy_hist_rows(pg, &b, t, L->n_hist, &is_failed);
    cq_copy_flush(pg, &b, &is_failed);
    rv_buf_free(&b);
    bench_runs_free(runs);
    free(runs);
    if (PQputCopyEnd(pg, is_failed ? "generator failed" : NULL) != 1)
        is_failed = 1;
    res = PQgetResult(pg);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        snprintf(err, cap, "%s: %s", cq_copy_sql[t], PQerrorMessage(pg));
        is_failed = 1;
    }
    PQclear(res);
    while ((res = PQgetResult(pg)) != NULL)
        PQclear(res);
    return is_failed ? -1 : 0;
}

static int
cq_pg_experiments(PGconn *pg, char *err, size_t cap)
{
    char sql[512];
    for (unsigned p = 0; p < CQ_PROJECTS; p++) {
        for (unsigned e = 0; e < CQ_EXPS; e++) {
            /* Inserted in id order: experiment_id = p * 20 + e + 1. */
            snprintf(sql, sizeof sql,
                     "INSERT INTO experiments (name, artifact_location, "
                     "lifecycle_stage, creation_time, last_update_time) "
                     "VALUES ('proj-%u/exp-%u', 'mlflow-artifacts:/%u', "
                     "'active', 1690000000000, 1690000000000)",
                     p, e, p * CQ_EXPS + e + 1);
            if (cq_pg_exec(pg, sql, err, cap) != 0)
                return -1;
        }
    }
    return cq_pg_exec(pg,
                      "INSERT INTO experiments (name, artifact_location, "
                      "lifecycle_stage, creation_time, last_update_time) "
                      "VALUES ('hist/series', 'mlflow-artifacts:/201', "
                      "'active', 1690000000000, 1690000000000)",
                      err, cap);
}

/* One table's COPY on its own connection (the five run concurrently). */
struct cq_pg_copy {
    struct cq_pg_load *L;
    enum cq_table t;
    int rc;
    char err[512];
};

static void *
cq_pg_copy_main(void *arg)
{
    struct cq_pg_copy *cp = arg;
    PGconn *pg = PQconnectdb(cp->L->conninfo);
    cp->rc = -1;
    if (PQstatus(pg) != CONNECTION_OK)
        snprintf(cp->err, sizeof cp->err, "connect: %s", PQerrorMessage(pg));
    else
        cp->rc = cq_pg_copy_table(pg, cp->L, cp->t, cp->err, sizeof cp->err);
    PQfinish(pg);
    return NULL;
}

static int
cq_pg_copy_all(struct cq_pg_load *L)
{
    static struct cq_pg_copy cp[CQ_T_LATEST + 1];
    pthread_t th[CQ_T_LATEST + 1];
    int rc = 0;
    for (int t = CQ_T_RUNS; t <= CQ_T_LATEST; t++) {
        cp[t].L = L;
        cp[t].t = (enum cq_table)t;
        if (pthread_create(&th[t], NULL, cq_pg_copy_main, &cp[t]) != 0)
            return -1; /* The process exits: no join needed. */
    }
    for (int t = CQ_T_RUNS; t <= CQ_T_LATEST; t++) {
        pthread_join(th[t], NULL);
        if (cp[t].rc != 0 && rc == 0)
            snprintf(L->err, sizeof L->err, "%s", cp[t].err);
        rc |= cp[t].rc;
    }
    return rc;
}

static void *
cq_pg_load_main(void *arg)
{
    struct cq_pg_load *L = arg;
    double t0 = cq_now_ms();
    PGconn *pg = PQconnectdb(L->conninfo);
    L->is_failed = 1;
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(L->err, sizeof L->err, "connect: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    if (cq_pg_exec(pg, cq_pg_ddl_before, L->err, sizeof L->err) != 0 ||
        cq_pg_experiments(pg, L->err, sizeof L->err) != 0)
        goto done;
    if (cq_pg_copy_all(L) != 0)
        goto done;
    double t1 = cq_now_ms();
    L->load_s = (t1 - t0) / 1000.0;
    for (size_t i = 0; i < sizeof cq_pg_ddl_after / sizeof *cq_pg_ddl_after;
         i++)
        if (cq_pg_exec(pg, cq_pg_ddl_after[i], L->err, sizeof L->err) != 0)
            goto done;
    L->index_s = (cq_now_ms() - t1) / 1000.0;
    L->is_failed = 0;
done:
    PQfinish(pg);
    return NULL;
}

/* ---- The queries ---------------------------------------------------------
 */

enum cq_kind { CQ_ATTR, CQ_PARAM, CQ_TAG, CQ_METRIC };
enum cq_scope { CQ_ALL, CQ_PROJECT, CQ_EXPERIMENT };

struct cq_pred {
    enum cq_kind kind;
    const char *key; /* NULL ends the list. */
    const char *op;
    const char *value; /* With $NAME placeholders (cq_subst). */
};

struct cq_order {
    enum cq_kind kind;
    const char *key; /* NULL ends the list. */
    int is_desc;
};

struct cq_query {
    const char *name;
    enum cq_scope scope;
    struct cq_pred p[4];
    struct cq_order o[2];
};

static const struct cq_query cq_queries[] = {
    {"exp: param = AND status = AND metric >, by metric DESC",
     CQ_EXPERIMENT,
     {{CQ_PARAM, "optimizer", "=", "adam"},
      {CQ_ATTR, "status", "=", "FINISHED"},
      {CQ_METRIC, "accuracy", ">", "0.2"}},
     {{CQ_METRIC, "accuracy", 1}}},
    {"all: param = AND tag = AND metric <, by metric ASC",
     CQ_ALL,
     {{CQ_PARAM, "lr", "=", "$LR"},
      {CQ_TAG, "team", "=", "$TEAM"},
      {CQ_METRIC, "loss", "<", "1.5"}},
     {{CQ_METRIC, "loss", 0}}},
    {"all: status = AND param = AND metric <, default order",
     CQ_ALL,
     {{CQ_ATTR, "status", "=", "FINISHED"},
      {CQ_PARAM, "optimizer", "=", "sgd"},
      {CQ_METRIC, "loss", "<", "1.0"}},
     {{0}}},
    {"project: param = AND tag LIKE AND metric >=, by param DESC",
     CQ_PROJECT,
     {{CQ_PARAM, "batch_size", "=", "64"},
      {CQ_TAG, "team", "LIKE", "v%"},
      {CQ_METRIC, "accuracy", ">=", "0.5"}},
     {{CQ_PARAM, "lr", 1}}},
    {"exp: metric <, by metric ASC",
     CQ_EXPERIMENT,
     {{CQ_METRIC, "loss", "<", "0.5"}},
     {{CQ_METRIC, "loss", 0}}},
    {"exp: param = AND tag =, default order",
     CQ_EXPERIMENT,
     {{CQ_PARAM, "optimizer", "=", "lion"}, {CQ_TAG, "team", "=", "$TEAM"}},
     {{0}}},
    {"all: status = AND start_time >=, by start_time ASC",
     CQ_ALL,
     {{CQ_ATTR, "status", "=", "KILLED"}, {CQ_ATTR, "start_time", ">=", "$T"}},
     {{CQ_ATTR, "start_time", 0}}},
    {"project: metric range, by param ASC",
     CQ_PROJECT,
     {{CQ_METRIC, "accuracy", ">=", "$A"}, {CQ_METRIC, "accuracy", "<", "$B"}},
     {{CQ_PARAM, "lr", 0}}},
    {"all: metric > (top 0.1%), by metric DESC",
     CQ_ALL,
     {{CQ_METRIC, "accuracy", ">", "0.999"}},
     {{CQ_METRIC, "accuracy", 1}}},
    {"all: run_name LIKE prefix AND tag ILIKE, default order",
     CQ_ALL,
     {{CQ_ATTR, "run_name", "LIKE", "$PFX%"},
      {CQ_TAG, "team", "ILIKE", "$UTEAM"}},
     {{0}}},
};

#define CQ_N_QUERIES (sizeof cq_queries / sizeof cq_queries[0])

/* The varying constants of one repetition. */
struct cq_inst {
    unsigned proj, exp;
    char lr[16], team[16], uteam[16], t[24], a[16], b[16], pfx[16];
};

static void
cq_inst_make(struct cq_inst *in, struct rv_rng *rng, size_t n_runs)
{
    static const char *const teams[] = {"vision", "nlp", "speech", "rl",
                                        "infra"};
    in->proj = (unsigned)rv_rng_below(rng, CQ_PROJECTS);
    in->exp = (unsigned)rv_rng_below(rng, CQ_EXPS);
    snprintf(in->lr, sizeof in->lr, "%.4f",
             0.0001 * (double)(1 + rv_rng_below(rng, 100)));
    const char *team = teams[rv_rng_below(rng, 5)];
    snprintf(in->team, sizeof in->team, "%s", team);
    size_t i = 0;
    for (; team[i] != '\0' && i + 1 < sizeof in->uteam; i++)
        in->uteam[i] =
            (char)(team[i] >= 'a' && team[i] <= 'z' ? team[i] - 'a' + 'A'
                                                    : team[i]);
    in->uteam[i] = '\0';
    snprintf(in->t, sizeof in->t, "%lld",
             1700000000000LL + 1000LL * (long long)rv_rng_below(rng, n_runs));
    unsigned a = (unsigned)rv_rng_below(rng, 99);
    snprintf(in->a, sizeof in->a, "%.2f", a / 100.0);
    snprintf(in->b, sizeof in->b, "%.2f", (a + 1) / 100.0);
    char id[16];
    snprintf(id, sizeof id, "%09llu",
             (unsigned long long)rv_rng_below(rng, n_runs));
    snprintf(in->pfx, sizeof in->pfx, "run%.6s", id);
}

/* tmpl with its placeholders replaced. */
static void
cq_subst(char *out, size_t cap, const char *tmpl, const struct cq_inst *in)
{
    static const char *const names[] = {"$LR", "$TEAM", "$UTEAM", "$T",
                                        "$A",  "$B",    "$PFX"};
    const char *vals[] = {in->lr, in->team, in->uteam, in->t,
                          in->a,  in->b,    in->pfx};
    size_t n = 0;
    out[0] = '\0';
    while (*tmpl != '\0' && n + 1 < cap) {
        int hit = -1;
        size_t best = 0;
        for (int i = 0; *tmpl == '$' && i < 7; i++) {
            size_t ln = strlen(names[i]);
            if (strncmp(tmpl, names[i], ln) == 0 && ln > best) {
                hit = i;
                best = ln;
            }
        }
        if (hit >= 0) {
            n += (size_t)snprintf(out + n, cap - n, "%s", vals[hit]);
            tmpl += best;
        } else {
            out[n++] = *tmpl++;
            out[n] = '\0';
        }
        if (n >= cap)
            n = cap - 1;
    }
}

static int
cq_is_numeric(enum cq_kind kind, const char *key)
{
    return kind == CQ_METRIC ||
           (kind == CQ_ATTR &&
            (strcmp(key, "start_time") == 0 || strcmp(key, "end_time") == 0));
}

static const char *const cq_prefix[] = {"attributes.", "params.", "tags.",
                                        "metrics."};

/* runvault's filter and order_by strings for one instance. */
static void
cq_rv_strings(const struct cq_query *q, const struct cq_inst *in, char *filter,
              size_t fcap, char *order, size_t ocap)
{
    size_t n = 0;
    filter[0] = order[0] = '\0';
    for (int i = 0; i < 4 && q->p[i].key != NULL; i++) {
        const struct cq_pred *p = &q->p[i];
        char v[128];
        cq_subst(v, sizeof v, p->value, in);
        int num = cq_is_numeric(p->kind, p->key);
        n += (size_t)snprintf(filter + n, fcap - n, "%s%s%s %s %s%s%s",
                              i ? " AND " : "", cq_prefix[p->kind], p->key,
                              p->op, num ? "" : "'", v, num ? "" : "'");
    }
    n = 0;
    for (int i = 0; i < 2 && q->o[i].key != NULL; i++)
        n += (size_t)snprintf(order + n, ocap - n, "%s%s%s %s", i ? ", " : "",
                              cq_prefix[q->o[i].kind], q->o[i].key,
                              q->o[i].is_desc ? "DESC" : "ASC");
}

static size_t
cq_rv_uri(const struct cq_query *q, const struct cq_inst *in, char *uri,
          size_t cap)
{
    char filter[1024], order[256], ef[3072], eo[768];
    cq_rv_strings(q, in, filter, sizeof filter, order, sizeof order);
    bench_http_qenc(ef, sizeof ef, filter);
    bench_http_qenc(eo, sizeof eo, order);
    size_t n =
        (size_t)snprintf(uri, cap, "/api/v2/experiments?per_page=%d", CQ_PAGE);
    if (filter[0] != '\0')
        n += (size_t)snprintf(uri + n, cap - n, "&filter=%s", ef);
    if (order[0] != '\0')
        n += (size_t)snprintf(uri + n, cap - n, "&order_by=%s", eo);
    if (q->scope != CQ_ALL)
        n += (size_t)snprintf(uri + n, cap - n, "&project=proj-%u", in->proj);
    if (q->scope == CQ_EXPERIMENT)
        n += (size_t)snprintf(uri + n, cap - n, "&experiment=exp-%u", in->exp);
    return n;
}

static const char *const cq_entity_table[] = {"runs", "params", "tags",
                                              "latest_metrics"};

static const char *
cq_attr_column(const char *key)
{
    return strcmp(key, "run_name") == 0 ? "name" : key;
}

static const char cq_run_columns[] =
    "runs.run_uuid, runs.name, runs.source_type, runs.source_name, "
    "runs.entry_point_name, runs.user_id, runs.status, runs.start_time, "
    "runs.end_time, runs.source_version, runs.lifecycle_stage, "
    "runs.artifact_uri, runs.experiment_id, runs.deleted_time";

/* experiment_ids of q's instance into ids: the one experiment, the
 * project's CQ_EXPS, or all. */
static void
cq_sql_experiment_ids(const struct cq_query *q, const struct cq_inst *in,
                      char *ids, size_t cap)
{
    size_t ni = 0;
    unsigned lo = 1, hi = CQ_HIST_EXP;
    if (q->scope == CQ_PROJECT) {
        lo = in->proj * CQ_EXPS + 1;
        hi = lo + CQ_EXPS - 1;
    } else if (q->scope == CQ_EXPERIMENT) {
        lo = hi = in->proj * CQ_EXPS + in->exp + 1;
    }
    ids[0] = '\0';
    for (unsigned e = lo; e <= hi; e++)
        ni +=
            (size_t)snprintf(ids + ni, cap - ni, "%s%u", e > lo ? ", " : "", e);
}

/* The SQL SqlAlchemyStore._search_runs sends for this instance. */
static void
cq_sql(const struct cq_query *q, const struct cq_inst *in, char *sql,
       size_t cap)
{
    char sel[1024] = "", joins[4096] = "", where[1536] = "", ord[512] = "";
    size_t ns = 0, nj = 0, nw = 0, no = 0;
    int anon = 0, has_start = 0;
    for (int i = 0; i < 4 && q->p[i].key != NULL; i++) {
        const struct cq_pred *p = &q->p[i];
        char v[128];
        cq_subst(v, sizeof v, p->value, in);
        int num = cq_is_numeric(p->kind, p->key);
        const char *qt = num ? "" : "'";
        if (p->kind == CQ_ATTR) {
            nw += (size_t)snprintf(where + nw, sizeof where - nw,
                                   " AND runs.%s %s %s%s%s",
                                   cq_attr_column(p->key), p->op, qt, v, qt);
            continue;
        }
        const char *t = cq_entity_table[p->kind];
        anon++;
        nj += (size_t)snprintf(
            joins + nj, sizeof joins - nj,
            " JOIN (SELECT %s.key AS key, %s.value AS value, %s.run_uuid AS "
            "run_uuid FROM %s WHERE %s.key = '%s' AND %s.value %s %s%s%s) AS "
            "anon_%d ON runs.run_uuid = anon_%d.run_uuid",
            t, t, t, t, t, p->key, t, p->op, qt, v, qt, anon, anon);
    }
    for (int i = 0; i < 2 && q->o[i].key != NULL; i++) {
        const struct cq_order *o = &q->o[i];
        char val[64];
        anon++;
        if (o->kind == CQ_ATTR) {
            snprintf(val, sizeof val, "runs.%s", cq_attr_column(o->key));
            has_start |= strcmp(o->key, "start_time") == 0;
            ns += (size_t)snprintf(sel + ns, sizeof sel - ns,
                                   ", CASE WHEN (%s IS NULL) THEN 1 ELSE 0 END "
                                   "AS clause_%d",
                                   val, i + 1);
        } else {
            const char *t = cq_entity_table[o->kind];
            snprintf(val, sizeof val, "anon_%d.value", anon);
            nj += (size_t)snprintf(
                joins + nj, sizeof joins - nj,
                " LEFT OUTER JOIN (SELECT %s.* FROM %s WHERE %s.key = '%s') "
                "AS anon_%d ON runs.run_uuid = anon_%d.run_uuid",
                t, t, t, o->key, anon, anon);
            if (o->kind == CQ_METRIC)
                ns += (size_t)snprintf(
                    sel + ns, sizeof sel - ns,
                    ", CASE WHEN (anon_%d.is_nan = true) THEN 1 WHEN (%s IS "
                    "NULL) THEN 2 ELSE 0 END AS clause_%d, %s",
                    anon, val, i + 1, val);
            else
                ns += (size_t)snprintf(sel + ns, sizeof sel - ns,
                                       ", CASE WHEN (%s IS NULL) THEN 1 ELSE "
                                       "0 END AS clause_%d, %s",
                                       val, i + 1, val);
        }
        no += (size_t)snprintf(ord + no, sizeof ord - no, "clause_%d, %s%s, ",
                               i + 1, val, o->is_desc ? " DESC" : "");
    }
    if (!has_start)
        no += (size_t)snprintf(ord + no, sizeof ord - no,
                               "runs.start_time DESC, ");
    snprintf(ord + no, sizeof ord - no, "runs.run_uuid");
    char ids[1024];
    cq_sql_experiment_ids(q, in, ids, sizeof ids);
    snprintf(sql, cap,
             "SELECT DISTINCT %s%s FROM runs%s WHERE runs.experiment_id IN "
             "(%s) AND runs.lifecycle_stage IN ('active')%s ORDER BY %s "
             "LIMIT %d OFFSET 0",
             cq_run_columns, sel, joins, ids, where, ord, CQ_PAGE);
}

/* ---- Measuring -----------------------------------------------------------
 */

struct cq_stats {
    double *rv_ms, *pg_ms;
    size_t n;
    size_t n_mismatch, n_rv_errors, n_pg_errors;
    double rv_server_ms, rv_examined, rv_rows;
    char plans[64]; /* The plans runvault named, distinct, '/'-joined. */
    char first_mismatch[512];
};

/* Note the plan named in a runvault list answer (its "plan" string). */
static void
cq_plan_note(struct cq_stats *st, const char *body)
{
    const char *p = strstr(body, "\"plan\":\"");
    char plan[24];
    size_t n = 0;
    if (p == NULL)
        return;
    for (p += 8; *p != '\0' && *p != '"' && n + 1 < sizeof plan; p++)
        plan[n++] = *p;
    plan[n] = '\0';
    size_t have = strlen(st->plans);
    for (const char *q = st->plans; (q = strstr(q, plan)) != NULL; q++)
        if ((q == st->plans || q[-1] == '/') && (q[n] == '\0' || q[n] == '/'))
            return;
    if (have + n + 2 <= sizeof st->plans)
        snprintf(st->plans + have, sizeof st->plans - have, "%s%s",
                 have ? "/" : "", plan);
}

/* The run ids of a runvault list answer, in order, into ids (n at most
 * CQ_PAGE). */
static size_t
cq_rv_ids(const char *body, char ids[][40])
{
    size_t n = 0;
    for (const char *p = body; n < CQ_PAGE && (p = strstr(p, "\"run_id\":\""));
         n++) {
        p += 10;
        const char *e = strchr(p, '"');
        if (e == NULL)
            break;
        snprintf(ids[n], 40, "%.*s", (int)(e - p), p);
        p = e;
    }
    return n;
}

/* One cluster of the auth comparison (--rpc-auth): a client on its
 * leader, the token its queries carry (NULL: auth off) and the team they
 * name in ListRunsRequest.team (auth off: the equivalent of the token's
 * scope; auth on: NULL, the token scopes them). */
struct cq_side {
    const char *endpoints;
    const char *token, *team;
    const char *as; /* The team every run returned must be in. */
    struct rvc *rvc;
    char leader[64];
};

struct cq_ctx {
    struct bench_http http;
    PGconn *pg;
    struct rv_buf body;
    size_t n_runs;
    /* The auth comparison: the pairs are off against on, not runvault
     * against PostgreSQL (struct cq_stats' rv_ms then holds auth off's
     * times, pg_ms auth on's). NULL otherwise. */
    struct cq_side *off, *on;
};

/* One runvault sample; its ids. Returns the time in ms, or -1. */
static double
cq_rv_once(struct cq_ctx *c, const struct cq_query *q, const struct cq_inst *in,
           struct cq_stats *st, char ids[][40], size_t *n_ids)
{
    char uri[4096];
    cq_rv_uri(q, in, uri, sizeof uri);
    double t0 = cq_now_ms();
    int status = cq_http_get(&c->http, uri, &c->body);
    double ms = cq_now_ms() - t0;
    const char *b = (const char *)c->body.data;
    if (status != 200) {
        fprintf(stderr, "cmp_query: runvault %s -> %d %.300s\n", uri, status,
                b);
        return -1;
    }
    *n_ids = cq_rv_ids(b, ids);
    const char *qt = strstr(b, "\"query_time_ms\":");
    if (st != NULL && qt != NULL)
        st->rv_server_ms += strtod(qt + 16, NULL);
    long long ex = cq_json_u64(b, "examined");
    if (ex < -1) {
        fprintf(stderr, "cmp_query: runvault %s -> bad examined: %.300s\n", uri,
                b);
        return -1;
    }
    if (st != NULL && ex >= 0)
        st->rv_examined += (double)ex;
    if (st != NULL) {
        st->rv_rows += (double)*n_ids;
        cq_plan_note(st, b);
    }
    return ms;
}

static double
cq_pg_once(struct cq_ctx *c, const struct cq_query *q, const struct cq_inst *in,
           char ids[][40], size_t *n_ids)
{
    char sql[CQ_SQL_BYTES];
    cq_sql(q, in, sql, sizeof sql);
    double t0 = cq_now_ms();
    PGresult *res = PQexec(c->pg, sql);
    double ms = cq_now_ms() - t0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "cmp_query: postgres: %s\n%s\n", PQerrorMessage(c->pg),
                sql);
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res);
    *n_ids = 0;
    for (int i = 0; i < n && i < CQ_PAGE; i++)
        snprintf(ids[(*n_ids)++], 40, "%s", PQgetvalue(res, i, 0));
    PQclear(res);
    return ms;
}

/* rv's and pg's ids (the two sides of a pair, named a and b) the same? */
static void
cq_compare_as(struct cq_stats *st, const char *a, const char *b, char rv[][40],
              size_t n_rv, char pg[][40], size_t n_pg, const char *uri_hint)
{
    int same = n_rv == n_pg;
    size_t at = 0;
    for (; same && at < n_rv; at++)
        same = strcmp(rv[at], pg[at]) == 0;
    if (same)
        return;
    if (st->n_mismatch++ == 0)
        snprintf(st->first_mismatch, sizeof st->first_mismatch,
                 "%s: %s %zu rows, %s %zu rows, first difference at row %zu "
                 "(%s vs %s)",
                 uri_hint, a, n_rv, b, n_pg, at ? at - 1 : 0,
                 at && at - 1 < n_rv ? rv[at - 1] : "-",
                 at && at - 1 < n_pg ? pg[at - 1] : "-");
}

/* One query of side sd through native RPC (ListRunsRequest, first page
 * of CQ_PAGE); its ids. Returns the time in ms, or -1. */
static double
cq_side_once(struct cq_side *sd, const struct cq_query *q,
             const struct cq_inst *in, struct cq_stats *st, char ids[][40],
             size_t *n_ids)
{
    char filter[1024], order[256], proj[16], exp[16], errmsg[RV_ERRMSG_SIZE];
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ListRunsRequest lr = RV__LIST_RUNS_REQUEST__INIT;
    Rv__Response *resp = NULL;
    cq_rv_strings(q, in, filter, sizeof filter, order, sizeof order);
    snprintf(proj, sizeof proj, "proj-%u", in->proj);
    snprintf(exp, sizeof exp, "exp-%u", in->exp);
    lr.team = (char *)sd->team;
    lr.project = q->scope != CQ_ALL ? proj : NULL;
    lr.experiment = q->scope == CQ_EXPERIMENT ? exp : NULL;
    lr.filter = filter[0] != '\0' ? filter : NULL;
    lr.order_by = order[0] != '\0' ? order : NULL;
    lr.has_per_page = 1;
    lr.per_page = CQ_PAGE;
    req.body_case = RV__REQUEST__BODY_LIST_RUNS;
    req.list_runs = &lr;
    req.token = (char *)sd->token;
    double t0 = cq_now_ms();
    int rc = rvc_call(sd->rvc, &req, &resp, errmsg);
    double ms = cq_now_ms() - t0;
    if (rc == RV_OK)
        rc = (int)resp->code;
    if (rc != RV_OK) {
        fprintf(stderr, "cmp_query: auth %s: %s: %s %s\n",
                sd->token != NULL ? "on" : "off", filter, rv_strerror(rc),
                resp != NULL && resp->message != NULL ? resp->message : errmsg);
        rvc_response_free(resp);
        return -1;
    }
    *n_ids = 0;
    for (size_t i = 0; i < resp->n_runs && i < CQ_PAGE; i++) {
        const Rv__RunInfo *ri = resp->runs[i];
        snprintf(ids[(*n_ids)++], 40, "%s", ri->run_id);
        if (st == NULL || (ri->team != NULL && strcmp(ri->team, sd->as) == 0))
            continue;
        if (st->n_mismatch++ == 0) /* Outside the team: a wrong answer. */
            snprintf(st->first_mismatch, sizeof st->first_mismatch,
                     "%.200s: auth %s returned run %.40s of team '%.64s'",
                     filter, sd->token != NULL ? "on" : "off", ri->run_id,
                     ri->team != NULL ? ri->team : "");
    }
    if (st != NULL && sd->token == NULL) { /* Once per pair: auth off's. */
        st->rv_examined += (double)resp->n_examined;
        st->rv_rows += (double)*n_ids;
    }
    rvc_response_free(resp);
    return ms;
}

/* One pair of the auth comparison: off and on, in the order the round
 * gives; both must return the same runs. */
static void
cq_auth_pair(struct cq_ctx *c, size_t qi, const struct cq_inst *in,
             int on_first, struct cq_stats *st)
{
    static char off_ids[CQ_PAGE][40], on_ids[CQ_PAGE][40];
    size_t n_off = 0, n_on = 0;
    const struct cq_query *q = &cq_queries[qi];
    double on_ms = 0, off_ms = 0;
    if (on_first)
        on_ms = cq_side_once(c->on, q, in, st, on_ids, &n_on);
    off_ms = cq_side_once(c->off, q, in, st, off_ids, &n_off);
    if (!on_first)
        on_ms = cq_side_once(c->on, q, in, st, on_ids, &n_on);
    if (st == NULL)
        return; /* Warm-up. */
    if (off_ms < 0 || on_ms < 0) {
        st->n_rv_errors += off_ms < 0;
        st->n_pg_errors += on_ms < 0;
        return;
    }
    char filter[1024], order[256];
    cq_rv_strings(q, in, filter, sizeof filter, order, sizeof order);
    cq_compare_as(st, "auth off", "auth on", off_ids, n_off, on_ids, n_on,
                  filter);
    st->rv_ms[st->n] = off_ms;
    st->pg_ms[st->n] = on_ms;
    st->n++;
}

/* One pair: both systems, in the order the round gives. */
static void
cq_pair(struct cq_ctx *c, size_t qi, const struct cq_inst *in, int pg_first,
        struct cq_stats *st)
{
    static char rv_ids[CQ_PAGE][40], pg_ids[CQ_PAGE][40];
    size_t n_rv = 0, n_pg = 0;
    const struct cq_query *q = &cq_queries[qi];
    double pg_ms = 0, rv_ms = 0;
    if (c->off != NULL) {
        cq_auth_pair(c, qi, in, pg_first, st);
        return;
    }
    if (pg_first)
        pg_ms = cq_pg_once(c, q, in, pg_ids, &n_pg);
    rv_ms = cq_rv_once(c, q, in, st, rv_ids, &n_rv);
    if (!pg_first)
        pg_ms = cq_pg_once(c, q, in, pg_ids, &n_pg);
    if (st == NULL)
        return; /* Warm-up. */
    if (rv_ms < 0 || pg_ms < 0) {
        st->n_rv_errors += rv_ms < 0;
        st->n_pg_errors += pg_ms < 0;
        return;
    }
    char hint[256];
    cq_rv_uri(q, in, hint, sizeof hint);
    cq_compare_as(st, "runvault", "postgres", rv_ids, n_rv, pg_ids, n_pg, hint);
    st->rv_ms[st->n] = rv_ms;
    st->pg_ms[st->n] = pg_ms;
    st->n++;
}

/* ---- Noise ---------------------------------------------------------------
 */

struct cq_noise {
    double calib_ms_median, calib_ms_max, calib_cv;
    double load1;
    unsigned long long steal, total; /* /proc/stat jiffies. */
};

static void
cq_noise_sample(struct cq_noise *nz)
{
    double ms[25];
    volatile uint64_t sink = 0;
    for (int s = 0; s < 25; s++) {
        double t0 = cq_now_ms();
        uint64_t x = (uint64_t)s + 1;
        for (int i = 0; i < 4000000; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        sink += x;
        ms[s] = cq_now_ms() - t0;
    }
    (void)sink;
    double sum = 0, sq = 0;
    for (int s = 0; s < 25; s++) {
        sum += ms[s];
        sq += ms[s] * ms[s];
    }
    double mean = sum / 25;
    nz->calib_ms_median = cq_pct(ms, 25, 0.5);
    nz->calib_ms_max = cq_pct(ms, 25, 1.0);
    nz->calib_cv = sqrt(fmax(0, sq / 25 - mean * mean)) / mean;
    FILE *f = fopen("/proc/loadavg", "r");
    nz->load1 = -1;
    if (f != NULL) {
        if (fscanf(f, "%lf", &nz->load1) != 1)
            nz->load1 = -1;
        fclose(f);
    }
    unsigned long long v[8] = {0};
    f = fopen("/proc/stat", "r");
    if (f != NULL) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
            memset(v, 0, sizeof v);
        fclose(f);
    }
    nz->steal = v[7];
    nz->total = 0;
    for (int i = 0; i < 8; i++)
        nz->total += v[i];
}

static void
cq_noise_json(FILE *f, const char *name, const struct cq_noise *nz)
{
    fprintf(f,
            "\"%s\":{\"calib_ms_median\":%.2f,\"calib_ms_max\":%.2f,"
            "\"calib_cv\":%.3f,\"loadavg_1m\":%.2f}",
            name, nz->calib_ms_median, nz->calib_ms_max, nz->calib_cv,
            nz->load1);
}

/* ---- Runvault cluster state ----------------------------------------------
 */

/* Wait (bounded) until every node has applied the same index twice in a
 * row; the leader's http address into leader. */
static int
cq_rv_settle(char http[3][32], char *leader, size_t cap)
{
    struct rv_buf b;
    long long last = -1;
    int stable = 0;
    rv_buf_init(&b);
    for (int round = 0; round < 600 && stable < 2; round++) {
        long long idx[3], lid = -1;
        int ok = 1;
        for (int i = 0; i < 3 && ok; i++) {
            struct bench_http h;
            idx[i] = -1;
            if (bench_http_open_ms(&h, http[i], CQ_HTTP_MS) == 0 &&
                cq_http_get(&h, "/readyz", &b) == 200) {
                idx[i] = cq_json_u64((const char *)b.data, "applied_index");
                lid = cq_json_u64((const char *)b.data, "leader_id");
            }
            bench_http_close(&h);
            ok = idx[i] >= 0 && idx[i] == idx[0] && lid >= 1 && lid <= 3;
        }
        if (ok && idx[0] == last) {
            stable++;
            snprintf(leader, cap, "%s", http[lid - 1]);
        } else {
            stable = 0;
        }
        last = ok ? idx[0] : -1;
        rv_clock_sleep_ms(200);
    }
    rv_buf_free(&b);
    return stable >= 2 ? 0 : -1;
}

/* ---- History -------------------------------------------------------------
 */

struct cq_hist {
    size_t n_reps;
    double rv_ms[64], pg_ms[64];
    long long rv_points, pg_points;
};

static void
cq_hist_sql(char *sql, size_t cap)
{
    /* The M4 of store_metric_history: CQ_DOWNSAMPLE / 4 buckets of equal
     * step width over [min step, max step]; per bucket the points at the
     * first and last step and at the minimum and maximum value. */
    snprintf(sql, cap,
             "WITH s AS (SELECT step, timestamp, value FROM metrics WHERE "
             "run_uuid = '%s' AND key = '%s'), "
             "r AS (SELECT min(step) AS lo, (max(step) - min(step)) / %d + 1 "
             "AS w FROM s), "
             "b AS (SELECT s.step, s.timestamp, s.value, (s.step - r.lo) / "
             "r.w AS bk FROM s, r), "
             "f AS (SELECT bk, min(step) AS fs, max(step) AS ls, min(value) "
             "AS mn, max(value) AS mx FROM b GROUP BY bk) "
             "SELECT DISTINCT b.step, b.timestamp, b.value FROM b JOIN f ON "
             "b.bk = f.bk WHERE b.step = f.fs OR b.step = f.ls OR b.value = "
             "f.mn OR b.value = f.mx ORDER BY b.step",
             CQ_HIST_RUN, CQ_HIST_KEY, CQ_DOWNSAMPLE / 4);
}

static int
cq_history(struct cq_ctx *c, size_t n_reps, struct cq_hist *h)
{
    char uri[256], sql[2048];
    snprintf(uri, sizeof uri, "/api/v2/runs/%s/metrics?key=%s&downsample=%d",
             CQ_HIST_RUN, CQ_HIST_KEY, CQ_DOWNSAMPLE);
    cq_hist_sql(sql, sizeof sql);
    h->n_reps = 0;
    for (size_t i = 0; i < n_reps + 2 && i < 64; i++) {
        double t0 = cq_now_ms();
        int status = cq_http_get(&c->http, uri, &c->body);
        double rv_ms = cq_now_ms() - t0;
        if (status != 200) {
            fprintf(stderr, "cmp_query: history: %d %.200s\n", status,
                    (const char *)c->body.data);
            return -1;
        }
        long long n = 0;
        for (const char *p = (const char *)c->body.data;
             (p = strstr(p, "],[")) != NULL; p++)
            n++;
        t0 = cq_now_ms();
        PGresult *res = PQexec(c->pg, sql);
        double pg_ms = cq_now_ms() - t0;
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, "cmp_query: history sql: %s\n",
                    PQerrorMessage(c->pg));
            PQclear(res);
            return -1;
        }
        h->pg_points = PQntuples(res);
        PQclear(res);
        h->rv_points = n + 1;
        if (i < 2)
            continue; /* Warm-up. */
        h->rv_ms[h->n_reps] = rv_ms;
        h->pg_ms[h->n_reps] = pg_ms;
        h->n_reps++;
    }
    return 0;
}

/* ---- Output --------------------------------------------------------------
 */

/* Median over CQ_BLOCKS consecutive blocks of pairs of pg p99 / rv p99. */
static double
cq_block_p99_ratio(const struct cq_stats *st)
{
    double r[CQ_BLOCKS];
    size_t nb = 0, per = st->n / CQ_BLOCKS;
    for (size_t b = 0; per > 0 && b < CQ_BLOCKS; b++) {
        double rv = cq_pct(st->rv_ms + b * per, per, 0.99);
        double pg = cq_pct(st->pg_ms + b * per, per, 0.99);
        r[nb++] = rv > 0 ? pg / rv : 0;
    }
    return nb ? cq_pct(r, nb, 0.5) : 0;
}

static double
cq_pair_ratio(const struct cq_stats *st, double p)
{
    double *r = malloc((st->n ? st->n : 1) * sizeof *r);
    if (r == NULL)
        return 0;
    for (size_t i = 0; i < st->n; i++)
        r[i] = st->rv_ms[i] > 0 ? st->pg_ms[i] / st->rv_ms[i] : 0;
    double v = cq_pct(r, st->n, p);
    free(r);
    return v;
}

static int
cq_write_cdf(const char *dir, const char *name, struct cq_stats *st, int is_pg)
{
    char path[1024];
    size_t n = 0;
    for (size_t q = 0; q < CQ_N_QUERIES; q++)
        n += st[q].n;
    double *all = malloc((n ? n : 1) * sizeof *all);
    if (all == NULL)
        return -1;
    size_t k = 0;
    for (size_t q = 0; q < CQ_N_QUERIES; q++)
        for (size_t i = 0; i < st[q].n; i++)
            all[k++] = is_pg ? st[q].pg_ms[i] : st[q].rv_ms[i];
    qsort(all, n, sizeof *all, cq_cmp_double);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        free(all);
        return -1;
    }
    fprintf(f,
            "# latency_ms cumulative_fraction (%zu first-page samples, "
            "all queries pooled)\n",
            n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.3f %.6f\n", all[i], (double)(i + 1) / (double)n);
    fclose(f);
    free(all);
    return 0;
}

struct cq_run {
    size_t n_runs, n_hist, reps, rounds_done;
    double rv_load_s, pg_load_s, pg_index_s, wall_s;
    double load_chunk_s[2][CQ_AUTH_CHUNKS]; /* Auth comparison: off, on. */
    struct cq_noise nz_start, nz_end;
    double steal_pct;
    struct cq_hist hist;
};

static void
cq_write_query_json(FILE *f, size_t qi, struct cq_stats *st,
                    const struct cq_run *run)
{
    const struct cq_query *q = &cq_queries[qi];
    struct cq_inst in0;
    struct rv_rng rng;
    char filter[1024], order[256], sql[CQ_SQL_BYTES];
    rv_rng_seed(&rng, 1000 + qi);
    cq_inst_make(&in0, &rng, run->n_runs);
    cq_rv_strings(q, &in0, filter, sizeof filter, order, sizeof order);
    cq_sql(q, &in0, sql, sizeof sql);
    double rv50 = cq_pct(st->rv_ms, st->n, 0.5);
    double rv99 = cq_pct(st->rv_ms, st->n, 0.99);
    double pg50 = cq_pct(st->pg_ms, st->n, 0.5);
    double pg99 = cq_pct(st->pg_ms, st->n, 0.99);
    double dn = st->n ? (double)st->n : 1;
    static const char *const scopes[] = {"all", "project", "experiment"};
    fprintf(f, "%s\n  {\"name\":", qi ? "," : "");
    cq_json_str(f, q->name);
    fprintf(f, ",\"scope\":\"%s\",\"filter\":", scopes[q->scope]);
    cq_json_str(f, filter);
    fprintf(f, ",\"order_by\":");
    cq_json_str(f, order);
    fprintf(f, ",\"sql\":");
    cq_json_str(f, sql);
    fprintf(
        f,
        ",\"samples\":%zu,\"runvault\":{\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
        "\"max_ms\":%.2f,\"avg_server_ms\":%.2f,\"avg_examined\":%.0f,"
        "\"avg_rows\":%.1f,\"errors\":%zu,\"plan\":\"%s\"},"
        "\"postgres\":{\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,"
        "\"errors\":%zu},"
        "\"ratio_p99_median\":%.2f,\"ratio_p99\":%.2f,"
        "\"ratio_pairwise_median\":%.2f,\"ratio_pairwise_p10\":%.2f,"
        "\"ratio_pairwise_p90\":%.2f,\"target_p99_met\":%s,"
        "\"target_5x_met\":%s,\"same_results\":%s,\"mismatches\":%zu",
        st->n, rv50, rv99, cq_pct(st->rv_ms, st->n, 1.0), st->rv_server_ms / dn,
        st->rv_examined / dn, st->rv_rows / dn, st->n_rv_errors, st->plans,
        pg50, pg99, cq_pct(st->pg_ms, st->n, 1.0), st->n_pg_errors,
        cq_block_p99_ratio(st), rv99 > 0 ? pg99 / rv99 : 0,
        cq_pair_ratio(st, 0.5), cq_pair_ratio(st, 0.1), cq_pair_ratio(st, 0.9),
        rv99 <= 20.0 ? "true" : "false",
        rv99 > 0 && pg99 / rv99 >= 5.0 ? "true" : "false",
        st->n_mismatch == 0 && st->n > 0 ? "true" : "false", st->n_mismatch);
    if (st->n_mismatch > 0) {
        fprintf(f, ",\"first_mismatch\":");
        cq_json_str(f, st->first_mismatch);
    }
    fprintf(f, "}");
}

static int
cq_write_json(const char *dir, struct cq_stats *st, const struct cq_run *run)
{
    char path[1024], hsql[2048];
    snprintf(path, sizeof path, "%s/query.json", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "{\"runs\":%zu,\"page\":%d,\"reps_per_query\":%zu,"
            "\"rounds_done\":%zu,\"order\":\"pairs alternate: runvault then "
            "postgres in even rounds, postgres then runvault in odd rounds\","
            "\"load\":{\"runvault_s\":%.1f,\"runvault_runs_per_s\":%.0f,"
            "\"postgres_copy_s\":%.1f,\"postgres_index_analyze_s\":%.1f},"
            "\"queries\":[",
            run->n_runs, CQ_PAGE, run->reps, run->rounds_done, run->rv_load_s,
            run->rv_load_s > 0 ? (double)run->n_runs / run->rv_load_s : 0,
            run->pg_load_s, run->pg_index_s);
    for (size_t qi = 0; qi < CQ_N_QUERIES; qi++)
        cq_write_query_json(f, qi, &st[qi], run);
    const struct cq_hist *h = &run->hist;
    double r50 = cq_pct(h->rv_ms, h->n_reps, 0.5);
    double p50 = cq_pct(h->pg_ms, h->n_reps, 0.5);
    cq_hist_sql(hsql, sizeof hsql);
    fprintf(
        f,
        "\n],\n\"history\":{\"run_id\":\"%s\",\"key\":\"%s\","
        "\"points\":%zu,\"downsample\":%d,\"reps\":%zu,"
        "\"runvault\":{\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"points_out\":%lld},"
        "\"postgres\":{\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"points_out\":%lld},"
        "\"ratio_p50\":%.2f,\"sql\":",
        CQ_HIST_RUN, CQ_HIST_KEY, run->n_hist, CQ_DOWNSAMPLE, h->n_reps, r50,
        cq_pct(h->rv_ms, h->n_reps, 0.99), h->rv_points, p50,
        cq_pct(h->pg_ms, h->n_reps, 0.99), h->pg_points,
        r50 > 0 ? p50 / r50 : 0);
    cq_json_str(f, hsql);
    fprintf(f, "},\n\"noise\":{");
    cq_noise_json(f, "start", &run->nz_start);
    fprintf(f, ",");
    cq_noise_json(f, "end", &run->nz_end);
    fprintf(f,
            ",\"cpu_steal_pct\":%.2f,\"note\":\"calib: 25 timings of a "
            "fixed 4M-step integer loop on the client thread; a cv above ~0.05 "
            "or a max well above the median means other load on the 2 "
            "vCPUs\"},\n\"wall_s\":%.1f}\n",
            run->steal_pct, run->wall_s);
    fclose(f);
    return 0;
}

static void
cq_print_table(struct cq_stats *st, const struct cq_run *run)
{
    printf("\nfirst page of %d over %zu runs, up to %zu pairs per query "
           "(ms; ratio = postgres / runvault)\n",
           CQ_PAGE, run->n_runs, run->rounds_done);
    printf("%-58s %5s %8s %8s %8s %8s %6s %6s %5s %9s %s\n", "query", "pairs",
           "rv p50", "rv p99", "pg p50", "pg p99", "r p99", "r med", "same",
           "examined", "plan");
    for (size_t qi = 0; qi < CQ_N_QUERIES; qi++) {
        const struct cq_stats *s = &st[qi];
        double rv99 = cq_pct(s->rv_ms, s->n, 0.99);
        double pg99 = cq_pct(s->pg_ms, s->n, 0.99);
        printf("%-58.58s %5zu %8.2f %8.2f %8.2f %8.2f %6.2f %6.2f %5s %9.0f "
               "%s\n",
               cq_queries[qi].name, s->n, cq_pct(s->rv_ms, s->n, 0.5), rv99,
               cq_pct(s->pg_ms, s->n, 0.5), pg99, rv99 > 0 ? pg99 / rv99 : 0,
               cq_pair_ratio(s, 0.5),
               s->n_mismatch == 0 && s->n > 0 ? "yes" : "NO",
               s->rv_examined / (s->n ? (double)s->n : 1), s->plans);
    }
    const struct cq_hist *h = &run->hist;
    printf("history %zu points -> %d: runvault p50 %.2f ms (%lld points), "
           "postgres p50 %.2f ms (%lld points)\n",
           run->n_hist, CQ_DOWNSAMPLE, cq_pct(h->rv_ms, h->n_reps, 0.5),
           h->rv_points, cq_pct(h->pg_ms, h->n_reps, 0.5), h->pg_points);
    printf("noise: calib cv %.3f -> %.3f, load %.2f -> %.2f, steal %.2f%%\n",
           run->nz_start.calib_cv, run->nz_end.calib_cv, run->nz_start.load1,
           run->nz_end.load1, run->steal_pct);
}

static void
cq_write_plans(const char *dir, struct cq_ctx *c, size_t n_runs)
{
    char path[1024], sql[CQ_SQL_BYTES + 64], body[CQ_SQL_BYTES];
    snprintf(path, sizeof path, "%s/query_plans.txt", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    for (size_t qi = 0; qi < CQ_N_QUERIES + 1; qi++) {
        if (qi < CQ_N_QUERIES) {
            struct cq_inst in0;
            struct rv_rng rng;
            rv_rng_seed(&rng, 1000 + qi);
            cq_inst_make(&in0, &rng, n_runs);
            cq_sql(&cq_queries[qi], &in0, body, sizeof body);
            fprintf(f, "==== %s\n", cq_queries[qi].name);
        } else {
            cq_hist_sql(body, sizeof body);
            fprintf(f, "==== history\n");
        }
        snprintf(sql, sizeof sql, "EXPLAIN (ANALYZE, BUFFERS) %s", body);
        PGresult *res = PQexec(c->pg, sql);
        for (int i = 0; i < PQntuples(res); i++)
            fprintf(f, "%s\n", PQgetvalue(res, i, 0));
        PQclear(res);
    }
    fclose(f);
}

/* ---- Main ----------------------------------------------------------------
 */

struct cq_args {
    const char *http, *rpc, *pg, *out;
    size_t n_runs, reps, n_hist;
    double budget_s;
    const char *token_file; /* --token-file (else RUNVAULT_TOKEN). */
    const char *token;      /* NULL: auth off. */
    char token_text[RV_TOKEN_TEXT_CHARS + 1];
    const char *rpc_auth; /* --rpc-auth: the auth comparison's "on" side. */
    const char *as_team;  /* --as-team */
    const char *tls_ca;   /* --tls-ca: CA file for tls+tcp:// endpoints. */
    size_t n_teams;       /* --teams; 0: the run set's own teams. */
};

static int
cq_args_parse(int argc, char **argv, struct cq_args *a)
{
    memset(a, 0, sizeof *a);
    a->n_runs = 1000000;
    a->reps = 200;
    a->n_hist = 1000000;
    a->budget_s = 450;
    int is_bad = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--http") == 0)
            a->http = v;
        else if (strcmp(k, "--rpc") == 0)
            a->rpc = v;
        else if (strcmp(k, "--pg") == 0)
            a->pg = v;
        else if (strcmp(k, "--out") == 0)
            a->out = v;
        else if (strcmp(k, "--runs") == 0)
            a->n_runs = (size_t)bench_flag_u64("cmp_query", k, v, 1, 1000000000,
                                               &is_bad);
        else if (strcmp(k, "--reps") == 0)
            a->reps =
                (size_t)bench_flag_u64("cmp_query", k, v, 1, 100000, &is_bad);
        else if (strcmp(k, "--history-points") == 0)
            a->n_hist = (size_t)bench_flag_u64("cmp_query", k, v, 0, 1000000000,
                                               &is_bad);
        else if (strcmp(k, "--budget-s") == 0)
            a->budget_s = strtod(v, NULL);
        else if (strcmp(k, "--token-file") == 0)
            a->token_file = v;
        else if (strcmp(k, "--rpc-auth") == 0)
            a->rpc_auth = v;
        else if (strcmp(k, "--as-team") == 0)
            a->as_team = v;
        else if (strcmp(k, "--tls-ca") == 0)
            a->tls_ca = v;
        else if (strcmp(k, "--teams") == 0)
            a->n_teams = (size_t)bench_flag_u64("cmp_query", k, v, 1,
                                                CQ_MAX_TEAMS, &is_bad);
        else
            return -1;
    }
    int rc = bench_token_load("cmp_query", a->token_file, a->token_text);
    a->token = rc == 0 ? a->token_text : NULL;
    if (is_bad || rc < 0 || a->rpc == NULL || a->out == NULL)
        return -1;
    if (a->rpc_auth != NULL) /* Auth off against on: no PostgreSQL. */
        return a->token != NULL && a->n_teams > 0 && a->as_team != NULL &&
                       cq_is_team_of(a->as_team, a->n_teams)
                   ? 0
                   : -1;
    return a->http && a->pg && a->as_team == NULL ? 0 : -1;
}

static int
cq_split_http(const char *list, char http[3][32])
{
    const char *p = list;
    for (int i = 0; i < 3; i++) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || n >= 32)
            return -1;
        snprintf(http[i], 32, "%.*s", (int)n, p);
        if (e == NULL)
            return i == 2 ? 0 : -1;
        p = e + 1;
    }
    return 0;
}

/* Both loads at once: PostgreSQL in a thread, runvault here. */
static int
cq_load(const struct cq_args *a, struct cq_run *run)
{
    struct cq_pg_load L = {a->pg, a->n_runs, a->n_hist, 0, 0, 1, ""};
    pthread_t th;
    struct rvc *rvc;
    char errmsg[RV_ERRMSG_SIZE];
    if (pthread_create(&th, NULL, cq_pg_load_main, &L) != 0)
        return -1;
    double t0 = cq_now_ms();
    int rc = cq_rv_load_runs(a->rpc, a->token, a->n_teams, a->n_runs);
    run->rv_load_s = (cq_now_ms() - t0) / 1000.0;
    if (rc == 0)
        rc = cq_rvc_open(&rvc, a->rpc, errmsg) == RV_OK ? 0 : -1;
    if (rc == 0) {
        rc = cq_rv_load_history(rvc, a->token, NULL, a->n_hist);
        rvc_close(rvc);
    }
    fprintf(stderr, "cmp_query: runvault loaded %zu runs in %.1f s%s\n",
            a->n_runs, run->rv_load_s, rc ? " (FAILED)" : "");
    pthread_join(th, NULL);
    if (L.is_failed)
        fprintf(stderr, "cmp_query: postgres load failed: %s\n", L.err);
    else
        fprintf(stderr,
                "cmp_query: postgres COPY %.1f s, keys+indexes+analyze "
                "%.1f s\n",
                L.load_s, L.index_s);
    run->pg_load_s = L.load_s;
    run->pg_index_s = L.index_s;
    return rc != 0 || L.is_failed ? -1 : 0;
}

/* Mean time of one pair of query qi so far (ms). */
static double
cq_pair_mean_ms(const struct cq_stats *st)
{
    double sum = 0;
    for (size_t i = 0; i < st->n; i++)
        sum += st->rv_ms[i] + st->pg_ms[i];
    return st->n ? sum / (double)st->n : 0;
}

/* Rounds of one pair per active query, the systems' order alternating by
 * round. When the rounds still to run would not fit before deadline_ms,
 * the dearest query (by its mean pair time) that already has
 * CQ_MIN_PAIRS pairs stops, so cheap queries still get a p99 from
 * a->reps pairs and dear ones get what fits (struct cq_stats.n). */
static void
cq_measure(struct cq_ctx *c, const struct cq_args *a, struct cq_stats *st,
           struct cq_run *run, double deadline_ms)
{
    struct rv_rng rng[CQ_MAX_QUERIES];
    int is_active[CQ_MAX_QUERIES];
    struct cq_inst in;
    for (size_t qi = 0; qi < CQ_N_QUERIES; qi++) {
        rv_rng_seed(&rng[qi], 2000 + qi);
        for (int w = 0; w < 3; w++) { /* Warm-up, not recorded. */
            cq_inst_make(&in, &rng[qi], a->n_runs);
            cq_pair(c, qi, &in, w & 1, NULL);
        }
        rv_rng_seed(&rng[qi], 1000 + qi);
        is_active[qi] = 1;
    }
    run->rounds_done = 0;
    for (size_t r = 0; r < a->reps; r++) {
        double left_ms = deadline_ms - cq_now_ms();
        if (left_ms <= 0) {
            fprintf(stderr,
                    "cmp_query: time budget reached after %zu of %zu "
                    "rounds\n",
                    r, a->reps);
            break;
        }
        for (;;) { /* Drop the dearest until the rest fits. */
            double round_ms = 0, worst_ms = 0;
            size_t worst = SIZE_MAX;
            for (size_t qi = 0; qi < CQ_N_QUERIES; qi++) {
                double m = is_active[qi] ? cq_pair_mean_ms(&st[qi]) : 0;
                round_ms += m;
                if (is_active[qi] && st[qi].n >= CQ_MIN_PAIRS && m > worst_ms) {
                    worst_ms = m;
                    worst = qi;
                }
            }
            if (round_ms * (double)(a->reps - r) <= left_ms ||
                worst == SIZE_MAX)
                break;
            is_active[worst] = 0;
            fprintf(stderr,
                    "cmp_query: '%s' stops at %zu pairs (%.0f ms a "
                    "pair)\n",
                    cq_queries[worst].name, st[worst].n, worst_ms);
        }
        for (size_t qi = 0; qi < CQ_N_QUERIES; qi++) {
            if (!is_active[qi])
                continue;
            cq_inst_make(&in, &rng[qi], a->n_runs);
            cq_pair(c, qi, &in, (int)(r & 1), &st[qi]);
        }
        run->rounds_done = r + 1;
    }
}

/* ---- Auth off against auth on (--rpc-auth) -------------------------------
 *
 * Two clusters loaded with the same runs spread over --teams teams; every
 * query shape and the history timed as --as-team in alternating pairs:
 * on the auth-off cluster with ListRunsRequest.team = that team, on the
 * auth-on cluster through a reader token of that team (the node scopes
 * the query). Both must return the same runs. */

/* Every node of endpoints (comma-separated, at most 5) at the same applied
 * index twice in a row (status as token); the leader's address into
 * sd->leader. 0, or -1 after about 120 s. */
static int
cq_side_settle(struct cq_side *sd, const char *token)
{
    char eps[5][64];
    size_t n = 0;
    for (const char *p = sd->endpoints; *p != '\0' && n < 5; n++) {
        size_t k = strcspn(p, ",");
        snprintf(eps[n], sizeof eps[n], "%.*s", (int)k, p);
        p += k + (p[k] == ',');
    }
    uint64_t last = UINT64_MAX;
    for (int round = 0, stable = 0; round < 600; round++) {
        uint64_t idx = UINT64_MAX;
        int ok = n > 0, has_leader = 0;
        for (size_t i = 0; i < n && ok; i++) {
            Rv__Request req = RV__REQUEST__INIT;
            Rv__StatusRequest sr = RV__STATUS_REQUEST__INIT;
            Rv__Response *resp = NULL;
            char errmsg[RV_ERRMSG_SIZE];
            req.body_case = RV__REQUEST__BODY_STATUS;
            req.status = &sr;
            req.token = (char *)token;
            ok = rvc_call_once_tls(eps[i], cq_tls, &req, 2000, &resp, errmsg) ==
                     RV_OK &&
                 resp->code == RV_OK && resp->self != NULL &&
                 (i == 0 || resp->self->applied_index == idx);
            if (ok && i == 0)
                idx = resp->self->applied_index;
            if (ok && resp->self->state != NULL &&
                strcmp(resp->self->state, "leader") == 0) {
                snprintf(sd->leader, sizeof sd->leader, "%s", eps[i]);
                has_leader = 1;
            }
            rvc_response_free(resp);
        }
        stable = ok && has_leader && idx == last ? stable + 1 : 0;
        if (stable >= 2)
            return 0;
        last = ok ? idx : UINT64_MAX;
        rv_clock_sleep_ms(200);
    }
    return -1;
}

/* The history of side sd (natively, downsampled); the points it gave, or
 * -1. *ms: its time. */
static long long
cq_side_history(struct cq_side *sd, double *ms)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__HistoryRequest hr = RV__HISTORY_REQUEST__INIT;
    Rv__Response *resp = NULL;
    char errmsg[RV_ERRMSG_SIZE];
    hr.run_id = CQ_HIST_RUN;
    hr.key = CQ_HIST_KEY;
    hr.has_downsample = 1;
    hr.downsample = CQ_DOWNSAMPLE;
    req.body_case = RV__REQUEST__BODY_HISTORY;
    req.history = &hr;
    req.token = (char *)sd->token;
    double t0 = cq_now_ms();
    int rc = rvc_call(sd->rvc, &req, &resp, errmsg);
    *ms = cq_now_ms() - t0;
    if (rc == RV_OK)
        rc = (int)resp->code;
    long long n = rc == RV_OK ? (long long)resp->n_steps : -1;
    if (rc != RV_OK)
        fprintf(stderr, "cmp_query: history (auth %s): %s %s\n",
                sd->token != NULL ? "on" : "off", rv_strerror(rc),
                resp != NULL && resp->message != NULL ? resp->message : errmsg);
    rvc_response_free(resp);
    return n;
}

/* The history in alternating pairs (2 warm-up pairs); rv_* is auth off,
 * pg_* auth on. 0, or -1 on an error or different point counts. */
static int
cq_auth_history(struct cq_ctx *c, size_t n_reps, struct cq_hist *h)
{
    h->n_reps = 0;
    for (size_t i = 0; i < n_reps + 2 && i < 64; i++) {
        double off_ms = 0, on_ms = 0;
        long long n_on = 0, n_off = 0;
        if (i & 1)
            n_on = cq_side_history(c->on, &on_ms);
        n_off = cq_side_history(c->off, &off_ms);
        if (!(i & 1))
            n_on = cq_side_history(c->on, &on_ms);
        if (n_off < 0 || n_on < 0 || n_off != n_on) {
            fprintf(stderr,
                    "cmp_query: history: auth off %lld points, on %lld\n",
                    n_off, n_on);
            return -1;
        }
        h->rv_points = n_off;
        h->pg_points = n_on;
        if (i < 2)
            continue;
        h->rv_ms[h->n_reps] = off_ms;
        h->pg_ms[h->n_reps] = on_ms;
        h->n_reps++;
    }
    return 0;
}

/* Teams t0..t(n-1) on both clusters (as cluster-admin on the auth-on one;
 * auth off: every caller is one) and a reader token of as_team on the
 * auth-on one into reader. 0 or -1. */
static int
cq_auth_setup(const struct cq_args *a, char reader[RV_TOKEN_TEXT_CHARS + 1])
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    int rc =
        bench_auth_wait_admin(a->rpc_auth, cq_tls, a->token, 30000, errmsg);
    for (size_t i = 0; rc == RV_OK && i < a->n_teams; i++) {
        rc = bench_auth_team(a->rpc, cq_tls, NULL, cq_teams[i], errmsg);
        if (rc == RV_OK)
            rc = bench_auth_team(a->rpc_auth, cq_tls, a->token, cq_teams[i],
                                 errmsg);
    }
    if (rc == RV_OK)
        rc = bench_auth_token(a->rpc_auth, cq_tls, a->token, a->as_team,
                              RV__ROLE__ROLE_READER, "cmp_query-reader", reader,
                              errmsg);
    if (rc != RV_OK)
        fprintf(stderr, "cmp_query: auth setup: %s\n", errmsg);
    return rc == RV_OK ? 0 : -1;
}

/* Load both clusters with the same runs, as cluster-admin on the
 * auth-on one: CQ_AUTH_CHUNKS chunks, each into both, the order
 * alternating (off then on, on then off, ...), each chunk timed on each
 * side (run creation: 500 commands a write, authorised at apply with auth
 * on); then the history run (in as_team). Chunk c of the run set starts at
 * seed CQ_RUN_SEED + c, the same on both sides. */
static int
cq_auth_load(const struct cq_args *a, struct cq_run *run)
{
    const char *eps[2] = {a->rpc, a->rpc_auth}, *tok[2] = {NULL, a->token};
    size_t per = (a->n_runs + CQ_AUTH_CHUNKS - 1) / CQ_AUTH_CHUNKS;
    run->rv_load_s = run->pg_load_s = 0;
    for (size_t c = 0; c < CQ_AUTH_CHUNKS; c++) {
        size_t lo = c * per, hi = lo + per < a->n_runs ? lo + per : a->n_runs;
        for (int k = 0; k < 2 && lo < hi; k++) {
            int i = (int)(c & 1) ^ k; /* 0: off, 1: on. */
            double t0 = cq_now_ms();
            if (cq_rv_load_range(eps[i], tok[i], a->n_teams, lo, hi,
                                 CQ_RUN_SEED + c,
                                 1000 + CQ_LOAD_THREADS * c) != 0) {
                fprintf(stderr, "cmp_query: auth %s: load failed\n",
                        i ? "on" : "off");
                return -1;
            }
            double s = (cq_now_ms() - t0) / 1000.0;
            run->load_chunk_s[i][c] = s;
            *(i ? &run->pg_load_s : &run->rv_load_s) += s;
        }
    }
    for (int i = 0; i < 2; i++) {
        char errmsg[RV_ERRMSG_SIZE];
        struct rvc *rvc;
        int rc = cq_rvc_open(&rvc, eps[i], errmsg) == RV_OK ? 0 : -1;
        if (rc == 0) {
            rc = cq_rv_load_history(rvc, tok[i], a->as_team, a->n_hist);
            rvc_close(rvc);
        }
        fprintf(stderr, "cmp_query: auth %s: %zu runs in %.1f s%s\n",
                i ? "on" : "off", a->n_runs,
                i ? run->pg_load_s : run->rv_load_s,
                rc ? " (history FAILED)" : "");
        if (rc != 0)
            return -1;
    }
    return 0;
}

static void
cq_auth_query_json(FILE *f, size_t qi, const struct cq_stats *st,
                   const struct cq_run *run)
{
    const struct cq_query *q = &cq_queries[qi];
    static const char *const scopes[] = {"all", "project", "experiment"};
    struct cq_inst in0;
    struct rv_rng rng;
    char filter[1024], order[256];
    rv_rng_seed(&rng, 1000 + qi);
    cq_inst_make(&in0, &rng, run->n_runs);
    cq_rv_strings(q, &in0, filter, sizeof filter, order, sizeof order);
    double off50 = cq_pct(st->rv_ms, st->n, 0.5);
    double off99 = cq_pct(st->rv_ms, st->n, 0.99);
    double on50 = cq_pct(st->pg_ms, st->n, 0.5);
    double on99 = cq_pct(st->pg_ms, st->n, 0.99);
    double dn = st->n ? (double)st->n : 1;
    fprintf(f, "%s\n  {\"name\":", qi ? "," : "");
    cq_json_str(f, q->name);
    fprintf(f, ",\"scope\":\"%s\",\"filter\":", scopes[q->scope]);
    cq_json_str(f, filter);
    fprintf(f, ",\"order_by\":");
    cq_json_str(f, order);
    fprintf(f,
            ",\"samples\":%zu,\"avg_rows\":%.1f,\"avg_examined\":%.0f,"
            "\"off\":{\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
            "\"errors\":%zu},"
            "\"on\":{\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
            "\"errors\":%zu},"
            "\"ratio_p50\":%.3f,\"ratio_p99\":%.3f,"
            "\"ratio_p99_block_median\":%.3f,\"ratio_pairwise_median\":%.3f,"
            "\"same_results\":%s,\"mismatches\":%zu",
            st->n, st->rv_rows / dn, st->rv_examined / dn, off50, off99,
            cq_pct(st->rv_ms, st->n, 1.0), st->n_rv_errors, on50, on99,
            cq_pct(st->pg_ms, st->n, 1.0), st->n_pg_errors,
            off50 > 0 ? on50 / off50 : 0, off99 > 0 ? on99 / off99 : 0,
            cq_block_p99_ratio(st), cq_pair_ratio(st, 0.5),
            st->n_mismatch == 0 && st->n > 0 ? "true" : "false",
            st->n_mismatch);
    if (st->n_mismatch > 0) {
        fprintf(f, ",\"first_mismatch\":");
        cq_json_str(f, st->first_mismatch);
    }
    fprintf(f, "}");
}

/* DIR/query_auth.json: per query and for the history, auth off and on
 * (ratios are on / off). */
static int
cq_auth_write_json(const struct cq_args *a, const struct cq_stats *st,
                   const struct cq_run *run)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/query_auth.json", a->out);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "{\"runs\":%zu,\"teams\":%zu,\"as_team\":\"%s\",\"page\":%d,"
            "\"path\":\"native RPC (ListRunsRequest, HistoryRequest)\","
            "\"reps_per_query\":%zu,\"rounds_done\":%zu,\"order\":\"pairs "
            "alternate: off then on in even rounds, on then off in odd "
            "rounds\",\"load\":{\"off_s\":%.2f,\"on_s\":%.2f,"
            "\"order\":\"%d chunks, each into both, off first in even "
            "chunks\",\"chunks\":[",
            run->n_runs, a->n_teams, a->as_team, CQ_PAGE, run->reps,
            run->rounds_done, run->rv_load_s, run->pg_load_s, CQ_AUTH_CHUNKS);
    for (size_t c = 0; c < CQ_AUTH_CHUNKS; c++)
        fprintf(f, "%s{\"off_s\":%.3f,\"on_s\":%.3f}", c ? "," : "",
                run->load_chunk_s[0][c], run->load_chunk_s[1][c]);
    fprintf(f, "]},\"queries\":[");
    for (size_t qi = 0; qi < CQ_N_QUERIES; qi++)
        cq_auth_query_json(f, qi, &st[qi], run);
    const struct cq_hist *h = &run->hist;
    double off50 = cq_pct(h->rv_ms, h->n_reps, 0.5);
    double off99 = cq_pct(h->rv_ms, h->n_reps, 0.99);
    double on50 = cq_pct(h->pg_ms, h->n_reps, 0.5);
    double on99 = cq_pct(h->pg_ms, h->n_reps, 0.99);
    fprintf(f,
            "\n],\n\"history\":{\"run_id\":\"%s\",\"key\":\"%s\","
            "\"points\":%zu,\"downsample\":%d,\"reps\":%zu,"
            "\"off\":{\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"points_out\":%lld},"
            "\"on\":{\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"points_out\":%lld},"
            "\"ratio_p50\":%.3f,\"ratio_p99\":%.3f},\n\"noise\":{",
            CQ_HIST_RUN, CQ_HIST_KEY, run->n_hist, CQ_DOWNSAMPLE, h->n_reps,
            off50, off99, h->rv_points, on50, on99, h->pg_points,
            off50 > 0 ? on50 / off50 : 0, off99 > 0 ? on99 / off99 : 0);
    cq_noise_json(f, "start", &run->nz_start);
    fprintf(f, ",");
    cq_noise_json(f, "end", &run->nz_end);
    fprintf(f, ",\"cpu_steal_pct\":%.2f},\n\"wall_s\":%.1f}\n", run->steal_pct,
            run->wall_s);
    fclose(f);
    return 0;
}

static void
cq_auth_print(const struct cq_stats *st, const struct cq_run *run)
{
    printf("\nfirst page of %d as one team, auth off vs on, up to %zu pairs "
           "(ms; ratio = on / off)\n",
           CQ_PAGE, run->rounds_done);
    printf("%-58s %5s %8s %8s %8s %8s %6s %6s %5s\n", "query", "pairs",
           "off p50", "off p99", "on p50", "on p99", "r p50", "r p99", "same");
    for (size_t qi = 0; qi < CQ_N_QUERIES; qi++) {
        const struct cq_stats *s = &st[qi];
        double f50 = cq_pct(s->rv_ms, s->n, 0.5);
        double f99 = cq_pct(s->rv_ms, s->n, 0.99);
        double n50 = cq_pct(s->pg_ms, s->n, 0.5);
        double n99 = cq_pct(s->pg_ms, s->n, 0.99);
        printf("%-58.58s %5zu %8.2f %8.2f %8.2f %8.2f %6.2f %6.2f %5s\n",
               cq_queries[qi].name, s->n, f50, f99, n50, n99,
               f50 > 0 ? n50 / f50 : 0, f99 > 0 ? n99 / f99 : 0,
               s->n_mismatch == 0 && s->n > 0 ? "yes" : "NO");
    }
    const struct cq_hist *h = &run->hist;
    printf("history %zu points -> %d: off p50 %.2f ms, on p50 %.2f ms (%lld "
           "points each)\n",
           run->n_hist, CQ_DOWNSAMPLE, cq_pct(h->rv_ms, h->n_reps, 0.5),
           cq_pct(h->pg_ms, h->n_reps, 0.5), h->rv_points);
}

/* The whole auth comparison; the process's exit code. */
static int
cq_auth_main(const struct cq_args *a, struct cq_stats *st, struct cq_run *run,
             struct cq_ctx *c)
{
    static struct cq_side off, on;
    char reader[RV_TOKEN_TEXT_CHARS + 1], errmsg[RV_ERRMSG_SIZE];
    double start_ms = cq_now_ms();
    if (cq_auth_setup(a, reader) != 0 || cq_auth_load(a, run) != 0)
        return 1;
    off = (struct cq_side){a->rpc, NULL, a->as_team, a->as_team, NULL, ""};
    on = (struct cq_side){a->rpc_auth, reader, NULL, a->as_team, NULL, ""};
    if (cq_side_settle(&off, NULL) != 0 || cq_side_settle(&on, a->token) ||
        cq_rvc_open(&off.rvc, off.leader, errmsg) != RV_OK ||
        cq_rvc_open(&on.rvc, on.leader, errmsg) != RV_OK) {
        fprintf(stderr, "cmp_query: convergence or connect failed\n");
        return 1;
    }
    fprintf(stderr,
            "cmp_query: converged; querying leaders %s (off) and %s "
            "(on) as team %s\n",
            off.leader, on.leader, a->as_team);
    c->off = &off;
    c->on = &on;
    c->n_runs = a->n_runs;
    cq_noise_sample(&run->nz_start);
    cq_measure(c, a, st, run,
               cq_now_ms() + (a->budget_s - CQ_RESERVE_S) * 1000.0);
    int bad = cq_auth_history(c, 60, &run->hist); /* A p99 of 60. */
    cq_noise_sample(&run->nz_end);
    unsigned long long dt = run->nz_end.total - run->nz_start.total;
    run->steal_pct =
        dt ? 100.0 * (double)(run->nz_end.steal - run->nz_start.steal) /
                 (double)dt
           : 0;
    run->wall_s = (cq_now_ms() - start_ms) / 1000.0;
    for (size_t qi = 0; qi < CQ_N_QUERIES; qi++) {
        bad |= st[qi].n_mismatch > 0 || st[qi].n == 0;
        if (st[qi].n_mismatch > 0)
            fprintf(stderr, "cmp_query: MISMATCH in '%s' (%zu pairs): %s\n",
                    cq_queries[qi].name, st[qi].n_mismatch,
                    st[qi].first_mismatch);
    }
    bad |= cq_auth_write_json(a, st, run) != 0;
    cq_auth_print(st, run);
    rvc_close(off.rvc);
    rvc_close(on.rvc);
    memset(reader, 0, sizeof reader);
    return bad ? 1 : 0;
}

int
main(int argc, char **argv)
{
    struct cq_args a;
    char http[3][32], leader[32];
    static struct cq_stats st[CQ_MAX_QUERIES];
    static struct cq_run run;
    static struct cq_ctx c;
    double start_ms = cq_now_ms();
    cq_teams_init();
    if (cq_args_parse(argc, argv, &a) != 0 ||
        (a.rpc_auth == NULL && cq_split_http(a.http, http))) {
        fprintf(stderr,
                "usage: cmp_query --http H:P,H:P,H:P --rpc LIST --pg "
                "CONNINFO --out DIR [--runs N] [--reps N] "
                "[--history-points N] [--budget-s S] [--teams N] "
                "[--token-file FILE]\n"
                "       cmp_query --rpc LIST --rpc-auth LIST --token-file "
                "ADMIN_TOKEN --teams N --as-team tI --out DIR [--runs N] "
                "[--reps N] [--history-points N] [--budget-s S] "
                "[--tls-ca CA]\n");
        return 2;
    }
    char tls_err[RV_ERRMSG_SIZE];
    if (a.tls_ca != NULL &&
        rvc_tls_open(&cq_tls, a.tls_ca, NULL, NULL, tls_err) != RV_OK) {
        fprintf(stderr, "cmp_query: --tls-ca: %s\n", tls_err);
        return 2;
    }
    run.n_runs = a.n_runs;
    run.n_hist = a.n_hist;
    run.reps = a.reps;
    for (size_t qi = 0; qi < CQ_N_QUERIES; qi++) {
        st[qi].rv_ms = calloc(a.reps, sizeof(double));
        st[qi].pg_ms = calloc(a.reps, sizeof(double));
        if (st[qi].rv_ms == NULL || st[qi].pg_ms == NULL)
            return 1;
    }
    if (a.rpc_auth != NULL) {
        int rc = cq_auth_main(&a, st, &run, &c);
        rvc_tls_close(cq_tls);
        return rc;
    }
    if (cq_load(&a, &run) != 0 || cq_rv_settle(http, leader, sizeof leader)) {
        fprintf(stderr, "cmp_query: load or convergence failed\n");
        return 1;
    }
    fprintf(stderr, "cmp_query: replicas converged; querying leader %s\n",
            leader);
    c.n_runs = a.n_runs;
    rv_buf_init(&c.body);
    c.pg = PQconnectdb(a.pg);
    if (PQstatus(c.pg) != CONNECTION_OK ||
        bench_http_open_tls(&c.http, leader, CQ_HTTP_MS, NULL, a.token)) {
        fprintf(stderr, "cmp_query: cannot connect: %s\n",
                PQerrorMessage(c.pg));
        return 1;
    }
    PQclear(PQexec(c.pg, "SET statement_timeout = '60s'"));
    cq_noise_sample(&run.nz_start);
    cq_measure(&c, &a, st, &run,
               cq_now_ms() + (a.budget_s - CQ_RESERVE_S) * 1000.0);
    int hrc = cq_history(&c, a.n_hist >= 1000000 ? 20 : 10, &run.hist);
    cq_noise_sample(&run.nz_end);
    unsigned long long dt = run.nz_end.total - run.nz_start.total;
    run.steal_pct = dt ? 100.0 *
                             (double)(run.nz_end.steal - run.nz_start.steal) /
                             (double)dt
                       : 0;
    cq_write_plans(a.out, &c, a.n_runs);
    run.wall_s = (cq_now_ms() - start_ms) / 1000.0;
    int bad = hrc != 0;
    for (size_t qi = 0; qi < CQ_N_QUERIES; qi++) {
        bad |= st[qi].n_mismatch > 0 || st[qi].n == 0;
        if (st[qi].n_mismatch > 0)
            fprintf(stderr, "cmp_query: MISMATCH in '%s' (%zu pairs): %s\n",
                    cq_queries[qi].name, st[qi].n_mismatch,
                    st[qi].first_mismatch);
    }
    if (cq_write_json(a.out, st, &run) != 0 ||
        cq_write_cdf(a.out, "query_cdf_runvault.dat", st, 0) != 0 ||
        cq_write_cdf(a.out, "query_cdf_postgres.dat", st, 1) != 0)
        bad = 1;
    cq_print_table(st, &run);
    bench_http_close(&c.http);
    PQfinish(c.pg);
    rv_buf_free(&c.body);
    for (size_t qi = 0; qi < CQ_N_QUERIES; qi++) {
        free(st[qi].rv_ms);
        free(st[qi].pg_ms);
    }
    return bad ? 1 : 0;
}
