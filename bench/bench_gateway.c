/* Gateway benchmark on real `runvault serve` processes (loopback):
 *
 *   ingest   acknowledged metric points/s end to end on a 3-node cluster
 *            (buffered), over HTTP/JSON (POST log-batch of 1000 points
 *            with an Idempotency-Key, clients spread over every node, so
 *            followers forward) and over native RPC (the C client), with
 *            the same stream: C clients x runs of 10 keys, 1000 points per
 *            request; ack latency p50/p99. Afterwards every run's point
 *            count is read back and compared with the acknowledged points.
 *   query    1M runs loaded into a single node over native RPC, then the
 *            first page of filtered, sorted run lists through HTTP: p50,
 *            p99 over Q queries each, for the four queries of bench_store.
 *
 * usage: bench_gateway [RUNVAULT] [--quick] [--only ingest|query]
 *        [--clients N] [--seconds N] [--runs N] [--queries N]
 *        [--path native|http|mlflow] [--durability MODE] [--warmup-ms N]
 *        [--port-base N] [--lat-file PATH] [--auth on|off]
 * RUNVAULT defaults to $RUNVAULT_BIN. Prints one JSON object per figure.
 * --auth on: the ingest clusters start with --auth on and every client
 * writes as a writer token of team t0 (made with the leader's admin.token,
 * bench_auth.h): "Authorization: Bearer" over HTTP, Request.token over
 * native RPC. A node answering 401 to that token over HTTP (a gateway
 * without bearer tokens) makes the HTTP figure a "skipped" line, not a
 * failure.
 * --path runs one ingest path only (mlflow: the HTTP clients post the same
 * bodies to MLflow's /api/2.0/mlflow/runs/log-batch, run_id in the body);
 * --durability sets the nodes' mode (default buffered); with --warmup-ms the
 * first N ms are not counted (points/s over the rest of the window);
 * --port-base puts node i on BASE+10i (HTTP), +1 (RPC), +2 (raft); --lat-file
 * writes every counted ack latency in ms, one a line (bench/compare plots their
 * CDFs). Every child is SIGKILLed and reaped at the end. Exits 1 if a cluster
 * failed or an acknowledged point is missing. */
#include "base/clock.h"
#include "bench/bench_args.h"
#include "bench/bench_auth.h"
#include "bench/bench_http.h"
#include "bench/bench_runs.h"
#include "proto/metrics_builder.h"
#include "rpc/client/client.h"
#include "rpc/client/tls.h"
#include "tests/lib/cluster.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BG_KEYS        10
#define BG_POINTS      1000 /* Per request. */
#define BG_MAX_CLIENTS 64
#define BG_PROG        "bench_gateway"
#define BG_MAX_LAT     100000
#define BG_BODY_BYTES  (96u << 10)

/* How an ingest run is set up (the command line). */
struct bg_opts {
    const char *durability;
    struct rvc_tls *tls;      /* --tls-ca: TLS on; NULL: plain. */
    nng_tls_config *http_tls; /* Its client configuration for https. */
    unsigned warmup_ms;
    int port_base; /* 0: the cluster library's choice. */
    const char *lat_file;
    int is_auth;
    int is_mlflow; /* --path mlflow: HTTP through MLflow's log-batch. */
};

struct bg_client {
    int index;
    const char *http; /* "127.0.0.1:PORT" */
    const char *rpc_list;
    const struct bg_opts *o;
    int is_native;
    const char *token;        /* NULL: auth off. */
    int is_unauthorized;      /* HTTP answered 401 to token. */
    uint64_t measure_from_ms; /* Acks before this are not counted. */
    uint64_t deadline_ms;
    char run_id[32];
    uint64_t n_acked, n_counted, n_failed, n_lat;
    double *lat_ms;
    char err[RV_ERRMSG_SIZE + 16];
};

static int
bg_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
bg_pct(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, bg_cmp);
    return v[(size_t)((double)(n - 1) * p)];
}

/* ---- Ingest -------------------------------------------------------------- */

/* One acknowledged request sent at t0_ns: counted (points and latency)
 * if it was acknowledged inside the measured window. */
static void
bg_count(struct bg_client *c, uint64_t t0_ns)
{
    uint64_t t1 = rv_clock_mono_ns(), t1_ms = t1 / 1000000u;
    c->n_acked += BG_POINTS;
    if (t1_ms < c->measure_from_ms || t1_ms > c->deadline_ms)
        return;
    c->n_counted += BG_POINTS;
    if (c->n_lat < BG_MAX_LAT)
        c->lat_ms[c->n_lat++] = (double)(t1 - t0_ns) / 1e6;
}

/* Move the cluster's nodes to fixed ports: HTTP base + 10 i, RPC + 1,
 * raft + 2 (cluster_start derives HTTP from c->port). */
static void
bg_set_ports(struct cluster *c, int base)
{
    size_t pn = 0, en = 0;
    c->port = base;
    for (int i = 0; i < c->n; i++) {
        struct cluster_node *nd = &c->nodes[i];
        snprintf(nd->rpc, sizeof nd->rpc, "tcp://127.0.0.1:%d",
                 base + 10 * i + 1);
        snprintf(nd->raft, sizeof nd->raft, "127.0.0.1:%d", base + 10 * i + 2);
        pn += (size_t)snprintf(c->peers + pn, sizeof c->peers - pn, "%s%d=%s",
                               i ? "," : "", i + 1, nd->raft);
        en += (size_t)snprintf(c->endpoints + en, sizeof c->endpoints - en,
                               "%s%s", i ? "," : "", nd->rpc);
    }
}

/* Every counted latency, one a line, in ms. */
static void
bg_write_lat(const char *path, const double *ms, size_t n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return;
    }
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.3f\n", ms[i]);
    fclose(f);
}

/* A log-batch body of BG_POINTS points; with run_id, MLflow's (the run in
 * the body). */
static size_t
bg_body(char *b, size_t cap, uint64_t step0, int64_t ts, const char *run_id)
{
    size_t n = run_id != NULL ? (size_t)snprintf(b, cap,
                                                 "{\"run_id\":\"%s\","
                                                 "\"metrics\":[",
                                                 run_id)
                              : (size_t)snprintf(b, cap, "{\"metrics\":[");
    for (int i = 0; i < BG_POINTS && n < cap; i++) {
        uint64_t step = step0 + (uint64_t)(i / BG_KEYS);
        n += (size_t)snprintf(b + n, cap - n,
                              "%s{\"key\":\"metric_%d\",\"value\":%.6f,"
                              "\"step\":%llu,\"timestamp\":%lld}",
                              i ? "," : "", i % BG_KEYS,
                              (double)(step % 1000) / 1000.0,
                              (unsigned long long)step, (long long)ts);
    }
    n += (size_t)snprintf(b + n, cap - n, "]}");
    return n;
}

static const char *
bg_path_name(int is_native, const struct bg_opts *o)
{
    return is_native ? "native" : o->is_mlflow ? "mlflow" : "http";
}

/* 0, 401 (the token was refused: no retry) or -1. */
static int
bg_create_run_http(struct bench_http *h, const char *run_id)
{
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"project\":\"bench\",\"experiment\":\"gateway\","
                     "\"run_id\":\"%s\",\"resume\":\"allow\"}",
                     run_id);
    for (int i = 0; i < 50; i++) {
        int st = bench_http_do(h, "POST", "/api/v2/runs", NULL, body, (size_t)n,
                               NULL);
        if (st == 200 || st == 201)
            return 0;
        if (st == 401 && h->token != NULL)
            return 401;
        rv_clock_sleep_ms(100);
    }
    return -1;
}

static void *
bg_http_client(void *arg)
{
    struct bg_client *c = arg;
    struct bench_http h;
    char *body = malloc(BG_BODY_BYTES), uri[96], key[48];
    uint64_t client_id = 1000 + (uint64_t)c->index, seq = 0, step = 0;
    int st = -1;
    if (body != NULL &&
        bench_http_open_tls(&h, c->http, 15000, c->o->http_tls, c->token) == 0)
        st = bg_create_run_http(&h, c->run_id);
    if (st != 0) {
        c->is_unauthorized = st == 401;
        snprintf(c->err, sizeof c->err, "client %d: cannot start%s", c->index,
                 st == 401 ? " (401 to a valid token)" : "");
        bench_http_close(&h);
        free(body);
        return NULL;
    }
    if (c->o->is_mlflow)
        snprintf(uri, sizeof uri, "/api/2.0/mlflow/runs/log-batch");
    else
        snprintf(uri, sizeof uri, "/api/v2/runs/%s/log-batch", c->run_id);
    while (rv_clock_mono_ms() < c->deadline_ms) {
        size_t n =
            bg_body(body, BG_BODY_BYTES, step, (int64_t)rv_clock_wall_ms(),
                    c->o->is_mlflow ? c->run_id : NULL);
        snprintf(key, sizeof key, "%llu/%llu", (unsigned long long)client_id,
                 (unsigned long long)++seq);
        uint64_t t0 = rv_clock_mono_ns();
        /* Retried with the same key until acknowledged (or out of time). */
        for (;;) {
            st = bench_http_do(&h, "POST", uri, key, body, n, NULL);
            if (st == 200 || rv_clock_mono_ms() > c->deadline_ms + 10000)
                break;
            if (st < 0) {
                bench_http_close(&h);
                if (bench_http_open_tls(&h, c->http, 15000, c->o->http_tls,
                                        c->token) != 0)
                    rv_clock_sleep_ms(50);
            }
            c->n_failed++;
        }
        if (st != 200)
            break;
        bg_count(c, t0);
        step += BG_POINTS / BG_KEYS;
    }
    bench_http_close(&h);
    free(body);
    return NULL;
}

static void *
bg_native_client(void *arg)
{
    struct bg_client *c = arg;
    struct rvc *rvc;
    char errmsg[RV_ERRMSG_SIZE];
    char names[BG_KEYS][16];
    uint64_t client_id = 2000 + (uint64_t)c->index, seq = 0, step = 0;
    if (rvc_open(&rvc, c->rpc_list, errmsg) != RV_OK) {
        snprintf(c->err, sizeof c->err, "%s", errmsg);
        return NULL;
    }
    rvc_set_tls(rvc, c->o->tls);
    for (int k = 0; k < BG_KEYS; k++)
        snprintf(names[k], sizeof names[k], "metric_%d", k);
    Rv__Request req = RV__REQUEST__INIT;
    Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__RunCreate rc = RV__RUN_CREATE__INIT;
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__Metrics m = RV__METRICS__INIT;
    struct proto_metrics_builder mb;
    Rv__Response *resp = NULL;
    req.body_case = RV__REQUEST__BODY_WRITE;
    req.write = &wr;
    req.token = (char *)c->token;
    wr.n_commands = 1;
    wr.commands = cmds;
    cmd.has_client_id = cmd.has_seq = 1;
    cmd.client_id = client_id;
    rc.run_id = c->run_id;
    rc.project = "bench";
    rc.experiment = "native";
    rc.has_resume = 1;
    rc.resume = RV__RESUME__RESUME_ALLOW;
    cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd.run_create = &rc;
    cmd.seq = ++seq;
    if (rvc_call(rvc, &req, &resp, errmsg) != RV_OK || resp->code != RV_OK) {
        snprintf(c->err, sizeof c->err, "create: %s", errmsg);
        rvc_response_free(resp);
        rvc_close(rvc);
        return NULL;
    }
    rvc_response_free(resp);
    proto_metrics_init(&mb);
    lb.run_id = c->run_id;
    lb.metrics = &m;
    cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd.log_batch = &lb;
    while (rv_clock_mono_ms() < c->deadline_ms) {
        int64_t now = (int64_t)rv_clock_wall_ms();
        proto_metrics_reset(&mb);
        for (int i = 0; i < BG_POINTS; i++) {
            int64_t s = (int64_t)(step + (uint64_t)(i / BG_KEYS));
            if (proto_metrics_add(&mb, names[i % BG_KEYS], NULL, s, now,
                                  (double)((uint64_t)s % 1000) / 1000.0,
                                  NULL) != RV_OK)
                abort();
        }
        proto_metrics_view(&mb, &m);
        cmd.seq = ++seq;
        uint64_t t0 = rv_clock_mono_ns();
        resp = NULL;
        int r = rvc_call(rvc, &req, &resp, errmsg);
        /* In memory mode the leader answers on acceptance, without
         * per-command results. */
        int ok = r == RV_OK && resp->code == RV_OK &&
                 (resp->n_results == 0 ||
                  (resp->n_results == 1 && resp->results[0]->code == RV_OK));
        rvc_response_free(resp);
        if (!ok) {
            c->n_failed++;
            snprintf(c->err, sizeof c->err, "write: %s", errmsg);
            break;
        }
        bg_count(c, t0);
        step += BG_POINTS / BG_KEYS;
    }
    proto_metrics_free(&mb);
    rvc_close(rvc);
    return NULL;
}

/* n_points of run_id, read linearizably through node 0's HTTP as token
 * (NULL: none); -2 if the node answered 401. */
static long long
bg_points_of(const char *http, const char *token, const char *run_id,
             nng_tls_config *tls)
{
    struct bench_http h;
    struct rv_buf out;
    char uri[96];
    long long n = -1;
    rv_buf_init(&out);
    snprintf(uri, sizeof uri, "/api/v2/runs/%s?consistency=linearizable",
             run_id);
    int st = bench_http_open_tls(&h, http, 15000, tls, token) == 0
                 ? bench_http_do(&h, "GET", uri, NULL, NULL, 0, &out)
                 : -1;
    if (st == 401)
        n = -2;
    if (st == 200) {
        uint64_t v;
        if (bench_json_u64((const char *)out.data, "n_points", &v) == 0 &&
            v <= INT64_MAX)
            n = (long long)v;
    }
    bench_http_close(&h);
    rv_buf_free(&out);
    return n;
}

/* Every acknowledged point is there, once: points acknowledged but missing
 * into *lost, points beyond the acknowledged into *extra. In memory mode a
 * write is acknowledged when the leader queued it, and a linearizable read
 * may ride on an entry ahead of the rest of the queue: the check is
 * repeated (up to 10 s) until the queue has drained. */
static void
bg_check_acked(const char *http, const struct bg_client *cl, int n_clients,
               int is_memory, nng_tls_config *tls, uint64_t *lost,
               uint64_t *extra, int *is_unchecked)
{
    *is_unchecked = 0;
    for (int tries = 0; tries < (is_memory ? 50 : 1); tries++) {
        *lost = *extra = 0;
        for (int i = 0; i < n_clients; i++) {
            long long n = bg_points_of(http, cl[i].token, cl[i].run_id, tls);
            if (n == -2) { /* HTTP refuses the token: cannot read back. */
                *is_unchecked = 1;
                *lost = *extra = 0;
                return;
            }
            if (n < 0 || (uint64_t)n < cl[i].n_acked)
                *lost += n < 0 ? cl[i].n_acked : cl[i].n_acked - (uint64_t)n;
            else
                *extra += (uint64_t)n - cl[i].n_acked;
        }
        if (*lost == 0)
            break;
        rv_clock_sleep_ms(200);
    }
}

static int
bg_ingest(int is_native, int n_clients, unsigned seconds,
          const struct bg_opts *o)
{
    struct cluster c;
    struct bg_client cl[BG_MAX_CLIENTS];
    pthread_t th[BG_MAX_CLIENTS];
    char http[3][32];
    int is_failed = 0;
    char token[RV_TOKEN_TEXT_CHARS + 1] = "", errmsg[RV_ERRMSG_SIZE] = "";
    cluster_init(&c, is_native ? "bgnative" : "bghttp", 3, o->durability);
    if (o->port_base > 0)
        bg_set_ports(&c, o->port_base);
    int leader = -1;
    if (o->tls != NULL)
        cluster_set_tls(&c, o->tls);
    /* With auth on: team t0 and a writer token of it (every client's),
     * made with the leader's admin.token. */
    if (o->is_auth && bench_auth_cluster_principal(
                          &c, "t0", RV__ROLE__ROLE_WRITER, "bench-writer",
                          token, &leader, errmsg) != RV_OK)
        fprintf(stderr, "bench_gateway: auth: %s\n", errmsg);
    else if (!o->is_auth && cluster_start_all(&c))
        leader = cluster_leader(&c, 15000);
    if (leader < 0) {
        cluster_done(&c, 1);
        return -1;
    }
    for (int i = 0; i < 3; i++)
        snprintf(http[i], sizeof http[i], "127.0.0.1:%d", c.port + 10 * i);
    uint64_t t0 = rv_clock_mono_ms();
    for (int i = 0; i < n_clients; i++) {
        memset(&cl[i], 0, sizeof cl[i]);
        cl[i].index = i;
        cl[i].http = http[i % 3];
        cl[i].rpc_list = c.endpoints;
        cl[i].o = o;
        cl[i].is_native = is_native;
        cl[i].token = o->is_auth ? token : NULL;
        cl[i].measure_from_ms = t0 + o->warmup_ms;
        cl[i].deadline_ms = t0 + o->warmup_ms + seconds * 1000u;
        cl[i].lat_ms = malloc(BG_MAX_LAT * sizeof *cl[i].lat_ms);
        snprintf(cl[i].run_id, sizeof cl[i].run_id, "%s-%d",
                 bg_path_name(is_native, o), i);
        pthread_create(&th[i], NULL,
                       is_native ? bg_native_client : bg_http_client, &cl[i]);
    }
    uint64_t acked = 0, counted = 0, failed = 0, n_lat = 0;
    int n_unauthorized = 0;
    for (int i = 0; i < n_clients; i++) {
        pthread_join(th[i], NULL);
        n_unauthorized += cl[i].is_unauthorized;
        acked += cl[i].n_acked;
        counted += cl[i].n_counted;
        failed += cl[i].n_failed;
        n_lat += cl[i].n_lat;
        if (cl[i].err[0] != '\0')
            fprintf(stderr, "bench_gateway: %s\n", cl[i].err);
    }
    double secs = (double)(rv_clock_mono_ms() - t0) / 1000.0;
    double *all = malloc((n_lat ? n_lat : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < n_clients; i++) {
        memcpy(all + k, cl[i].lat_ms, cl[i].n_lat * sizeof *all);
        k += cl[i].n_lat;
    }
    if (o->lat_file != NULL)
        bg_write_lat(o->lat_file, all, k);
    double p50 = bg_pct(all, k, 0.5), p90 = bg_pct(all, k, 0.9);
    double p99 = bg_pct(all, k, 0.99), max = k ? all[k - 1] : 0;
    uint64_t lost = 0, extra = 0;
    int is_unchecked = 0;
    if (n_unauthorized > 0) {
        printf("{\"figure\":\"ingest_%s\",\"skipped\":\"the node answered "
               "401 to a valid token (%d of %d clients): no bearer tokens "
               "on this path yet\",\"auth\":\"on\"}\n",
               bg_path_name(is_native, o), n_unauthorized, n_clients);
        fflush(stdout);
        for (int i = 0; i < n_clients; i++)
            free(cl[i].lat_ms);
        free(all);
        memset(token, 0, sizeof token);
        cluster_done(&c, 0);
        return 0;
    }
    bg_check_acked(http[0], cl, n_clients, strcmp(o->durability, "memory") == 0,
                   o->http_tls, &lost, &extra, &is_unchecked);
    /* Without a warm-up: every ack over the whole run (the first
     * figures); with one: the acks inside the measured window. */
    double rate = (double)acked / secs;
    if (o->warmup_ms > 0) {
        secs = (double)seconds;
        rate = (double)counted / secs;
    }
    printf("{\"figure\":\"ingest_%s%s\",\"points_per_s\":%.0f,"
           "\"acked\":%llu,"
           "\"clients\":%d,\"points_per_request\":%d,\"seconds\":%.1f,"
           "\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"retries\":%llu,"
           "\"acked_lost\":%llu,\"applied_beyond_acked\":%llu,"
           "\"target\":%d,\"durability\":\"%s\",\"warmup_ms\":%u,"
           "\"p90_ms\":%.2f,\"max_ms\":%.2f,\"requests\":%zu,"
           "\"auth\":\"%s\",\"acked_checked\":%s}\n",
           bg_path_name(is_native, o), o->tls ? "_tls" : "", rate,
           (unsigned long long)acked, n_clients, BG_POINTS, secs, p50, p99,
           (unsigned long long)failed, (unsigned long long)lost,
           (unsigned long long)extra, is_native ? 1000000 : 500000,
           o->durability, o->warmup_ms, p90, max, k, o->is_auth ? "on" : "off",
           is_unchecked ? "false" : "true");
    fflush(stdout);
    is_failed = lost > 0 || acked == 0;
    for (int i = 0; i < n_clients; i++)
        free(cl[i].lat_ms);
    free(all);
    memset(token, 0, sizeof token);
    cluster_done(&c, is_failed);
    return is_failed ? -1 : 0;
}

/* ---- Query ------------------------------------------------------------------
 */

/* Load n runs of the shared run set (bench/bench_runs.h), in writes of
 * BENCH_RUNS_PER_FILL runs. */
static int
bg_load_runs(const char *endpoints, size_t n_runs)
{
    static struct bench_runs runs;
    struct rvc *rvc;
    char errmsg[RV_ERRMSG_SIZE];
    struct rv_rng rng;
    if (rvc_open(&rvc, endpoints, errmsg) != RV_OK)
        return -1;
    rv_rng_seed(&rng, 2);
    bench_runs_init(&runs);
    for (size_t base = 0; base < n_runs; base += BENCH_RUNS_PER_FILL) {
        size_t k = n_runs - base < BENCH_RUNS_PER_FILL ? n_runs - base
                                                       : BENCH_RUNS_PER_FILL;
        bench_runs_fill(&runs, base, k, &rng);
        Rv__Request req = RV__REQUEST__INIT;
        Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
        Rv__Response *resp = NULL;
        wr.n_commands = 2 * k;
        wr.commands = runs.cmds;
        req.body_case = RV__REQUEST__BODY_WRITE;
        req.write = &wr;
        int r = rvc_call(rvc, &req, &resp, errmsg);
        int ok = r == RV_OK && resp->code == RV_OK;
        for (size_t i = 0; ok && i < resp->n_results; i++)
            ok = resp->results[i]->code == RV_OK;
        rvc_response_free(resp);
        if (!ok) {
            fprintf(stderr, "bench_gateway: load failed at run %zu: %s\n", base,
                    errmsg);
            bench_runs_free(&runs);
            rvc_close(rvc);
            return -1;
        }
    }
    bench_runs_free(&runs);
    rvc_close(rvc);
    return 0;
}

struct bg_query {
    const char *name;
    int is_project, is_experiment;
    const char *filter; /* "$LR" replaced by a varying constant. */
    const char *order_by;
};

#define BG_URI_BYTES 2048

/* The URI of one instance of q into uri[BG_URI_BYTES]: $LR in the filter,
 * the project and the experiment drawn from rng, in that order. */
static void
bg_query_uri(const struct bg_query *q, struct rv_rng *rng, char *uri)
{
    char filter[512], ef[1024], eo[256];
    bench_runs_filter(filter, sizeof filter, q->filter, rng);
    bench_http_qenc(ef, sizeof ef, filter);
    bench_http_qenc(eo, sizeof eo, q->order_by ? q->order_by : "");
    int n = snprintf(uri, BG_URI_BYTES,
                     "/api/v2/experiments?per_page=100&filter=%s", ef);
    if (q->is_project)
        n += snprintf(uri + n, BG_URI_BYTES - (size_t)n, "&project=proj-%llu",
                      (unsigned long long)rv_rng_below(rng, 10));
    if (q->is_experiment)
        n += snprintf(uri + n, BG_URI_BYTES - (size_t)n, "&experiment=exp-%llu",
                      (unsigned long long)rv_rng_below(rng, 20));
    if (q->order_by != NULL)
        snprintf(uri + n, BG_URI_BYTES - (size_t)n, "&order_by=%s", eo);
}

/* Add one answer's rows, server time and examined runs to the totals: 0,
 * or -1 if its "examined" is not a count. */
static int
bg_query_tally(const struct rv_buf *out, uint64_t *n_rows, double *server_ms,
               uint64_t *n_examined)
{
    for (const char *p = (const char *)out->data;
         (p = strstr(p, "\"run_id\"")) != NULL; p++)
        (*n_rows)++;
    const char *qt = strstr((const char *)out->data, "query_time_ms\":");
    if (qt != NULL)
        *server_ms += strtod(qt + 15, NULL);
    uint64_t ex = 0; /* Absent: none counted. */
    if (bench_json_u64((const char *)out->data, "examined", &ex) < 0)
        return -1;
    *n_examined += ex;
    return 0;
}

static int
bg_query(size_t n_runs, size_t n_queries)
{
    static const struct bg_query qs[] = {
        {"experiment-scoped: 3 predicates, ORDER BY metric", 1, 1,
         "params.optimizer = 'adam' AND attributes.status = 'FINISHED' AND "
         "metrics.accuracy > 0.2",
         "metrics.accuracy DESC"},
        {"unscoped: param = AND tag = AND metric >, ORDER BY metric", 0, 0,
         "params.lr = '$LR' AND tags.team = 'vision' AND metrics.loss < 1.5",
         "metrics.loss ASC"},
        {"unscoped: status = AND param = AND metric <, default order", 0, 0,
         "attributes.status = 'FINISHED' AND params.optimizer = 'sgd' AND "
         "metrics.loss < 1.0",
         NULL},
        {"project-scoped: 3 predicates incl. LIKE, ORDER BY param", 1, 0,
         "params.batch_size = '64' AND tags.team LIKE 'v%' AND "
         "metrics.accuracy >= 0.5",
         "params.lr DESC"},
    };
    struct cluster c;
    struct rv_rng rng;
    char http[32];
    int is_failed = 0;
    cluster_init(&c, "bgquery", 1, "buffered");
    if (!cluster_start_all(&c) || cluster_leader(&c, 15000) < 0) {
        cluster_done(&c, 1);
        return -1;
    }
    snprintf(http, sizeof http, "127.0.0.1:%d", c.port);
    uint64_t t0 = rv_clock_mono_ms();
    if (bg_load_runs(c.endpoints, n_runs) != 0) {
        cluster_done(&c, 1);
        return -1;
    }
    double load_s = (double)(rv_clock_mono_ms() - t0) / 1000.0;
    printf("{\"figure\":\"query_load\",\"runs\":%zu,\"seconds\":%.1f,"
           "\"runs_per_s\":%.0f}\n",
           n_runs, load_s, (double)n_runs / load_s);
    struct bench_http h;
    struct rv_buf out;
    rv_buf_init(&out);
    if (bench_http_open(&h, http) != 0) {
        cluster_done(&c, 1);
        return -1;
    }
    rv_rng_seed(&rng, 3);
    double *ms = malloc(n_queries * sizeof *ms);
    for (size_t qi = 0; qi < sizeof qs / sizeof qs[0] && !is_failed; qi++) {
        const struct bg_query *q = &qs[qi];
        uint64_t n_rows = 0, n_examined = 0;
        double server_ms = 0;
        for (size_t i = 0; i < n_queries; i++) {
            char uri[BG_URI_BYTES];
            bg_query_uri(q, &rng, uri);
            uint64_t t = rv_clock_mono_ns();
            int status = bench_http_do(&h, "GET", uri, NULL, NULL, 0, &out);
            ms[i] = (double)(rv_clock_mono_ns() - t) / 1e6;
            if (status != 200) {
                fprintf(stderr, "bench_gateway: %s -> %d %s\n", uri, status,
                        out.data ? (char *)out.data : "");
                is_failed = 1;
                break;
            }
            if (bg_query_tally(&out, &n_rows, &server_ms, &n_examined)) {
                fprintf(stderr, "bench_gateway: %s -> bad examined: %.300s\n",
                        uri, (char *)out.data);
                is_failed = 1;
                break;
            }
        }
        if (is_failed)
            break;
        double p50 = bg_pct(ms, n_queries, 0.5);
        double p99 = bg_pct(ms, n_queries, 0.99);
        double max = ms[n_queries - 1];
        printf("{\"figure\":\"http_first_page\",\"query\":\"%s\",\"runs\":%zu,"
               "\"queries\":%zu,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
               "\"max_ms\":%.2f,\"avg_rows\":%.1f,\"avg_examined\":%.0f,"
               "\"avg_server_ms\":%.2f,\"target_p99_ms\":20}\n",
               q->name, n_runs, n_queries, p50, p99, max,
               (double)n_rows / (double)n_queries,
               (double)n_examined / (double)n_queries,
               server_ms / (double)n_queries);
        fflush(stdout);
    }
    free(ms);
    bench_http_close(&h);
    rv_buf_free(&out);
    cluster_done(&c, is_failed);
    return is_failed ? -1 : 0;
}

/* --tls-ca CERTS/ca.crt (deploy/make-certs.sh): the nodes serve with
 * CERTS/n1.crt (every node certificate names 127.0.0.1), passed in the
 * RUNVAULT_TLS_* variables, and the clients verify them with the CA. */
static int
bg_tls(struct bg_opts *o, const char *ca)
{
    char dir[512], cert[600], key[600], errmsg[RV_ERRMSG_SIZE];
    const char *slash = strrchr(ca, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - ca) : 1,
             slash ? ca : ".");
    snprintf(cert, sizeof cert, "%s/n1.crt", dir);
    snprintf(key, sizeof key, "%s/n1.key", dir);
    if (rvc_tls_open(&o->tls, ca, NULL, NULL, errmsg) != RV_OK ||
        rvc_tls_dial_config(o->tls, "127.0.0.1", &o->http_tls, errmsg) !=
            RV_OK) {
        fprintf(stderr, "bench_gateway: --tls-ca: %s\n", errmsg);
        return -1;
    }
    setenv("RUNVAULT_TLS_CERT", cert, 1);
    setenv("RUNVAULT_TLS_KEY", key, 1);
    setenv("RUNVAULT_TLS_CA", ca, 1);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *bin = getenv("RUNVAULT_BIN"), *only = NULL, *path = NULL;
    struct bg_opts o = {.durability = "buffered"};
    int n_clients = 48, is_quick = 0, is_bad = 0;
    unsigned seconds = 10;
    size_t n_runs = 1000000, n_queries = 200;
    const char *tls_ca = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(a, "--quick") == 0) {
            is_quick = 1;
        } else if (strcmp(a, "--only") == 0) {
            only = v;
            i++;
        } else if (strcmp(a, "--clients") == 0) {
            n_clients =
                (int)bench_flag_u64(BG_PROG, a, v, 1, BG_MAX_CLIENTS, &is_bad);
            i++;
        } else if (strcmp(a, "--seconds") == 0) {
            seconds =
                (unsigned)bench_flag_u64(BG_PROG, a, v, 1, 86400, &is_bad);
            i++;
        } else if (strcmp(a, "--runs") == 0) {
            n_runs =
                (size_t)bench_flag_u64(BG_PROG, a, v, 1, 1000000000, &is_bad);
            i++;
        } else if (strcmp(a, "--queries") == 0) {
            n_queries =
                (size_t)bench_flag_u64(BG_PROG, a, v, 1, 1000000, &is_bad);
            i++;
        } else if (strcmp(a, "--path") == 0) {
            path = v;
            i++;
        } else if (strcmp(a, "--durability") == 0) {
            o.durability = v;
            i++;
        } else if (strcmp(a, "--warmup-ms") == 0) {
            o.warmup_ms =
                (unsigned)bench_flag_u64(BG_PROG, a, v, 0, 600000, &is_bad);
            i++;
        } else if (strcmp(a, "--port-base") == 0) {
            o.port_base = (int)bench_flag_u64(BG_PROG, a, v, 0, 65000, &is_bad);
            i++;
        } else if (strcmp(a, "--lat-file") == 0) {
            o.lat_file = v;
            i++;
        } else if (strcmp(a, "--tls-ca") == 0) {
            tls_ca = v;
            i++;
        } else if (strcmp(a, "--auth") == 0) {
            is_bad |= bench_on_off(v, &o.is_auth);
            i++;
        } else if (a[0] != '-') {
            bin = a;
        } else {
            fprintf(stderr, "bench_gateway: unknown argument %s\n", a);
            return 2;
        }
    }
    if (is_quick) {
        seconds = 3;
        n_runs = 20000;
        n_queries = 40;
    }
    if (is_bad || bin == NULL ||
        (path != NULL && strcmp(path, "native") != 0 &&
         strcmp(path, "http") != 0 && strcmp(path, "mlflow") != 0)) {
        fprintf(stderr, "usage: bench_gateway RUNVAULT [--quick] [--only "
                        "ingest|query] [--clients 1-64] [--seconds N] "
                        "[--runs N] [--queries N] [--path native|http|mlflow] "
                        "[--durability memory|buffered|strict] "
                        "[--warmup-ms N] [--port-base N] [--lat-file PATH] "
                        "[--tls-ca CERTS/ca.crt] [--auth on|off]\n");
        return 2;
    }
    if (tls_ca != NULL && bg_tls(&o, tls_ca) != 0)
        return 2;
    cluster_set_binary(bin);
    int rc = 0;
    if (only == NULL || strcmp(only, "ingest") == 0) {
        if (path == NULL || strcmp(path, "http") == 0)
            rc |= bg_ingest(0, n_clients, seconds, &o);
        if (path != NULL && strcmp(path, "mlflow") == 0) {
            o.is_mlflow = 1;
            rc |= bg_ingest(0, n_clients, seconds, &o);
        }
        if (path == NULL || strcmp(path, "native") == 0)
            rc |= bg_ingest(1, n_clients, seconds, &o);
    }
    if (only == NULL || strcmp(only, "query") == 0)
        rc |= bg_query(n_runs, n_queries);
    if (o.http_tls != NULL)
        nng_tls_config_free(o.http_tls);
    rvc_tls_close(o.tls);
    return rc != 0 ? 1 : 0;
}
