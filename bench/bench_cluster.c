/* Replication benchmark on real `runvault serve` processes (loopback):
 *
 *   ingest    acknowledged metric points/s and ack latency (p50/p99/max)
 *             on a 3-node cluster, per durability mode, over native RPC
 *   failover  leader SIGKILL -> first acknowledged write, repeated
 *   restart   a node holding N points: exec -> first linearizable read,
 *             after SIGTERM and after SIGKILL
 *
 * usage: bench_cluster PATH/TO/runvault [--quick] [--only NAME]
 *        [--restart-points N] [--auth on|off] [--mode MODE]
 * --auth on: the ingest clusters start with --auth on; the clients write
 * as a writer token of team t0, made with the leader's admin.token
 * (bench_auth.h), in Request.token of every request. --mode: ingest in
 * that durability mode only (memory, buffered or strict).
 * Prints tables and one JSON line per figure ({"figure","value","unit",
 * "target"}). Data lives under $TMPDIR (default /tmp). */
#include "base/clock.h"
#include "bench/bench_args.h"
#include "bench/bench_auth.h"
#include "rpc/client/client.h"
#include "tests/lib/cluster.h"
#include "tests/lib/writer.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLIENTS 64
#define KEYS        10
#define MAX_LAT     200000

static int is_quick;
static int is_auth;           /* --auth on */
static const char *only_mode; /* --mode */
#define BENCH_TEAM "t0"

static void
figure(const char *name, double value, const char *unit, const char *target)
{
    printf("{\"figure\":\"%s\",\"value\":%.3f,\"unit\":\"%s\","
           "\"target\":\"%s\"}\n",
           name, value, unit, target);
    fflush(stdout);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t
pct(uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

/* ---- A writing client -----------------------------------------------------
 */

struct client {
    const char *endpoints;
    const char *token; /* NULL: auth off. */
    uint64_t client_id;
    int durability;
    unsigned points; /* per write */
    atomic_int *stop;
    _Atomic uint64_t *measure_from_ms; /* Latencies recorded after this. */
    uint64_t n_acked_points, n_acked, n_failed;
    uint64_t *lat_us;
    size_t n_lat;
    _Atomic uint64_t last_ack_ms;
    pthread_t thread;
};

static void *
client_main(void *arg)
{
    struct client *c = arg;
    struct rvc *cl;
    char errmsg[RV_ERRMSG_SIZE], run_id[32];
    if (rvc_open(&cl, c->endpoints, errmsg) != RV_OK)
        return NULL;
    rvc_set_timeouts(cl, 3000, 20000);
    snprintf(run_id, sizeof run_id, "bench-%llu",
             (unsigned long long)c->client_id);
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RunCreate rc;
    testwriter_run_create(&cmd, &rc, run_id, "bench", "ingest");
    cmd.has_client_id = cmd.has_seq = 1;
    cmd.client_id = c->client_id;
    cmd.seq = 1;
    while (testwriter_send_as(cl, c->token, &cmd, 0, NULL) != RV_OK &&
           !atomic_load(c->stop))
        rv_clock_sleep_ms(50);
    /* KEYS keys, points / KEYS steps each: a training step's metrics. */
    unsigned n = c->points;
    char *keys[KEYS] = {"loss", "acc",  "lr",   "grad", "tput",
                        "mem",  "val0", "val1", "val2", "val3"};
    struct proto_metrics_builder mb;
    Rv__LogBatch lb;
    Rv__Metrics m;
    proto_metrics_init(&mb);
    int64_t step = 0;
    for (uint64_t seq = 2; !atomic_load(c->stop); seq++) {
        int64_t now = (int64_t)rv_clock_wall_ms();
        proto_metrics_reset(&mb);
        for (unsigned i = 0; i < n; i++) {
            int64_t s = step + i / KEYS;
            if (proto_metrics_add(&mb, keys[i % KEYS], NULL, s, now,
                                  1.0 / (double)(1 + s) + (double)(i % KEYS),
                                  NULL) != RV_OK)
                abort();
        }
        testwriter_log_batch(&cmd, &lb, &m, run_id, &mb);
        step += n / KEYS;
        cmd.seq = seq;
        uint64_t t0 = rv_clock_mono_ns();
        int code = testwriter_send_as(cl, c->token, &cmd, c->durability, NULL);
        uint64_t t1 = rv_clock_mono_ns();
        if (code == RV_OK) {
            uint64_t now_ms = t1 / 1000000u;
            atomic_store(&c->last_ack_ms, now_ms);
            if (now_ms >= atomic_load(c->measure_from_ms)) {
                c->n_acked++;
                c->n_acked_points += n;
                if (c->n_lat < MAX_LAT)
                    c->lat_us[c->n_lat++] = (t1 - t0) / 1000u;
            }
        } else {
            c->n_failed++;
        }
    }
    proto_metrics_free(&mb);
    rvc_close(cl);
    return NULL;
}

struct load {
    struct client c[MAX_CLIENTS];
    int n;
    atomic_int stop;
    _Atomic uint64_t measure_from_ms;
    const char *token; /* Every client's; NULL: auth off. */
};

static void
load_start(struct load *l, const char *endpoints, int n, unsigned points,
           int durability, uint64_t first_client)
{
    const char *token = l->token;
    memset(l, 0, sizeof *l);
    l->token = token;
    l->n = n;
    atomic_store(&l->measure_from_ms, UINT64_MAX);
    for (int i = 0; i < n; i++) {
        struct client *c = &l->c[i];
        c->endpoints = endpoints;
        c->token = token;
        c->client_id = first_client + (uint64_t)i;
        c->durability = durability;
        c->points = points;
        c->stop = &l->stop;
        c->measure_from_ms = &l->measure_from_ms;
        c->lat_us = calloc(MAX_LAT, sizeof *c->lat_us);
        pthread_create(&c->thread, NULL, client_main, c);
    }
}

static void
load_stop(struct load *l)
{
    atomic_store(&l->stop, 1);
    for (int i = 0; i < l->n; i++)
        pthread_join(l->c[i].thread, NULL);
}

static void
load_free(struct load *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->c[i].lat_us);
}

/* The leader's RPC address first, so clients start there. */
static void
leader_first(struct cluster *c, int leader, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "%s", c->nodes[leader].rpc);
    for (int i = 0; i < c->n; i++)
        if (i != leader)
            n += (size_t)snprintf(out + n, size - n, ",%s", c->nodes[i].rpc);
}

/* ---- Ingest ---------------------------------------------------------------
 */

struct ingest_result {
    double points_per_s;
    uint64_t p50_us, p99_us, max_us, n_failed;
};

static int
ingest_run(const char *mode, int n_clients, unsigned points, unsigned secs,
           struct ingest_result *res)
{
    struct cluster c;
    struct load l;
    char eps[512];
    static uint64_t next_client = 1;
    char token[RV_TOKEN_TEXT_CHARS + 1] = "", errmsg[RV_ERRMSG_SIZE] = "";
    int leader = -1;
    cluster_init(&c, "bench-ingest", 3, mode);
    /* With auth on: team t0 and a writer token of it, the principal of
     * every client, made with the leader's admin.token. */
    if (is_auth && bench_auth_cluster_principal(
                       &c, BENCH_TEAM, RV__ROLE__ROLE_WRITER, "bench-writer",
                       token, &leader, errmsg) != RV_OK)
        fprintf(stderr, "bench_cluster: auth: %s\n", errmsg);
    else if (!is_auth && cluster_start_all(&c))
        leader = cluster_leader(&c, 10000);
    if (leader < 0) {
        cluster_done(&c, 1);
        return -1;
    }
    leader_first(&c, leader, eps, sizeof eps);
    l.token = is_auth ? token : NULL;
    load_start(&l, eps, n_clients, points, 0, next_client);
    next_client += (uint64_t)n_clients;
    rv_clock_sleep_ms(is_quick ? 500 : 1500); /* Warm-up. */
    uint64_t t0 = rv_clock_mono_ms();
    atomic_store(&l.measure_from_ms, t0);
    rv_clock_sleep_ms(secs * 1000);
    uint64_t t1 = rv_clock_mono_ms();
    atomic_store(&l.measure_from_ms, UINT64_MAX); /* Stop counting. */
    load_stop(&l);
    uint64_t pts = 0;
    size_t n_lat = 0;
    memset(res, 0, sizeof *res);
    for (int i = 0; i < l.n; i++) {
        pts += l.c[i].n_acked_points;
        n_lat += l.c[i].n_lat;
        res->n_failed += l.c[i].n_failed;
    }
    uint64_t *all = calloc(n_lat ? n_lat : 1, sizeof *all);
    size_t k = 0;
    for (int i = 0; i < l.n; i++)
        for (size_t j = 0; j < l.c[i].n_lat; j++)
            all[k++] = l.c[i].lat_us[j];
    qsort(all, n_lat, sizeof *all, cmp_u64);
    res->points_per_s = (double)pts * 1000.0 / (double)(t1 - t0);
    res->p50_us = pct(all, n_lat, 0.50);
    res->p99_us = pct(all, n_lat, 0.99);
    res->max_us = n_lat ? all[n_lat - 1] : 0;
    free(all);
    load_free(&l);
    cluster_done(&c, 0);
    return 0;
}

static void
bench_ingest(void)
{
    static const char *modes[] = {"memory", "buffered", "strict"};
    static const char *targets[] = {"", ">= 1000000", ">= 500000"};
    static const int clients_full[] = {8, 16, 32};
    static const unsigned points_full[] = {2000, 5000, 10000};
    int n_cfg = is_quick ? 1 : 3;
    unsigned secs = is_quick ? 1 : 5;
    printf("\n== ingest: 3 nodes, native RPC, log batches of 10 keys, "
           "auth %s\n",
           is_auth ? "on (a writer token of team " BENCH_TEAM ")" : "off");
    printf("%-9s %7s %7s %12s %9s %9s %9s %6s\n", "mode", "clients", "points",
           "points/s", "p50 ms", "p99 ms", "max ms", "fails");
    for (int m = 0; m < 3; m++) {
        struct ingest_result best = {0};
        if (only_mode != NULL && strcmp(only_mode, modes[m]) != 0)
            continue;
        for (int i = 0; i < n_cfg; i++) {
            int nc = is_quick ? 4 : clients_full[i];
            unsigned np = is_quick ? 1000 : points_full[i];
            struct ingest_result r;
            if (ingest_run(modes[m], nc, np, secs, &r) != 0) {
                printf("%-9s cluster did not start\n", modes[m]);
                continue;
            }
            printf("%-9s %7d %7u %12.0f %9.2f %9.2f %9.2f %6llu\n", modes[m],
                   nc, np, r.points_per_s, (double)r.p50_us / 1000.0,
                   (double)r.p99_us / 1000.0, (double)r.max_us / 1000.0,
                   (unsigned long long)r.n_failed);
            fflush(stdout);
            if (r.points_per_s > best.points_per_s)
                best = r;
        }
        char name[64];
        snprintf(name, sizeof name, "ingest_%s_points_per_s", modes[m]);
        figure(name, best.points_per_s, "points/s", targets[m]);
        snprintf(name, sizeof name, "ingest_%s_ack_p50_ms", modes[m]);
        figure(name, (double)best.p50_us / 1000.0, "ms", "");
        snprintf(name, sizeof name, "ingest_%s_ack_p99_ms", modes[m]);
        figure(name, (double)best.p99_us / 1000.0, "ms", "");
    }
}

/* ---- Failover -------------------------------------------------------------
 */

static void
bench_failover(void)
{
    struct cluster c;
    struct load l;
    int kills = is_quick ? 2 : 12;
    uint64_t ms[32];
    int n = 0;
    printf("\n== failover: leader SIGKILL -> first acknowledged write "
           "(election 600 ms, heartbeat 60 ms)\n");
    cluster_init(&c, "bench-failover", 3, "buffered");
    if (!cluster_start_all(&c) || cluster_leader(&c, 10000) < 0) {
        cluster_done(&c, 1);
        return;
    }
    char eps[512];
    snprintf(eps, sizeof eps, "%s,%s,%s", c.nodes[0].rpc, c.nodes[1].rpc,
             c.nodes[2].rpc);
    load_start(&l, eps, 4, 100, 0, 900000);
    atomic_store(&l.measure_from_ms, 0);
    for (int k = 0; k < kills; k++) {
        int leader = cluster_leader(&c, 10000);
        if (leader < 0)
            break;
        rv_clock_sleep_ms(500);
        cluster_signal(&c, leader, SIGKILL);
        cluster_reap(&c, leader, 5000);
        uint64_t t_kill = rv_clock_mono_ms(), first = 0;
        while (first == 0 && rv_clock_mono_ms() < t_kill + 15000) {
            for (int i = 0; i < l.n; i++) {
                uint64_t t = atomic_load(&l.c[i].last_ack_ms);
                if (t > t_kill && (first == 0 || t < first))
                    first = t;
            }
            rv_clock_sleep_ms(2);
        }
        if (first == 0) {
            printf("kill %d: no write succeeded within 15 s\n", k + 1);
            break;
        }
        ms[n++] = first - t_kill;
        printf("kill %2d: node %d, first write after %llu ms\n", k + 1,
               leader + 1, (unsigned long long)(first - t_kill));
        fflush(stdout);
        cluster_start(&c, leader, 0);
        uint64_t applied;
        cluster_converged(&c, 15000, &applied);
    }
    load_stop(&l);
    load_free(&l);
    cluster_done(&c, 0);
    qsort(ms, (size_t)n, sizeof *ms, cmp_u64);
    if (n > 0) {
        figure("failover_p50_ms", (double)pct(ms, (size_t)n, 0.5), "ms",
               "<= 1500");
        figure("failover_max_ms", (double)ms[n - 1], "ms", "<= 3000");
        figure("failover_kills", n, "count", ">= 10");
    }
}

/* ---- Restart --------------------------------------------------------------
 */

/* From exec to the first linearizable read that succeeds. */
static uint64_t
time_to_serving(struct cluster *c, int sig)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
    Rv__ReadOptions ro = RV__READ_OPTIONS__INIT;
    char errmsg[RV_ERRMSG_SIZE];
    gr.run_id = "bench-1000000";
    ro.has_consistency = 1;
    ro.consistency = RV__CONSISTENCY__LINEARIZABLE;
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &gr;
    req.read = &ro;
    cluster_signal(c, 0, sig);
    cluster_reap(c, 0, 60000);
    uint64_t t0 = rv_clock_mono_ms();
    cluster_start(c, 0, 0);
    while (rv_clock_mono_ms() < t0 + 60000) {
        Rv__Response *resp = NULL;
        int rc = rvc_call_once(c->nodes[0].rpc, &req, 1000, &resp, errmsg);
        int is_ok = rc == RV_OK && resp->code == RV_OK;
        rvc_response_free(resp);
        if (is_ok)
            return rv_clock_mono_ms() - t0;
        rv_clock_sleep_ms(2);
    }
    return 0;
}

static void
bench_restart(uint64_t points)
{
    struct cluster c;
    struct load l;
    printf("\n== restart: one node holding %llu points\n",
           (unsigned long long)points);
    cluster_init(&c, "bench-restart", 1, "buffered");
    if (!cluster_start_all(&c) || cluster_leader(&c, 10000) < 0) {
        cluster_done(&c, 1);
        return;
    }
    load_start(&l, c.nodes[0].rpc, 8, 10000, 0, 1000000);
    atomic_store(&l.measure_from_ms, 0);
    uint64_t t0 = rv_clock_mono_ms(), have = 0;
    while (have < points && rv_clock_mono_ms() < t0 + 600000) {
        rv_clock_sleep_ms(200);
        have = 0;
        for (int i = 0; i < l.n; i++)
            have += l.c[i].n_acked_points;
    }
    load_stop(&l);
    have = 0;
    for (int i = 0; i < l.n; i++)
        have += l.c[i].n_acked_points;
    double secs = (double)(rv_clock_mono_ms() - t0) / 1000.0;
    printf("loaded %llu points in %.1f s (%.0f points/s, one node)\n",
           (unsigned long long)have, secs, (double)have / secs);
    load_free(&l);
    uint64_t clean = time_to_serving(&c, SIGTERM);
    uint64_t crash = time_to_serving(&c, SIGKILL);
    printf("restart after SIGTERM: %llu ms to the first linearizable read\n"
           "restart after SIGKILL: %llu ms\n",
           (unsigned long long)clean, (unsigned long long)crash);
    figure("restart_points_held", (double)have, "points", ">= 100000000");
    figure("restart_after_sigterm_ms", (double)clean, "ms", "<= 2000");
    figure("restart_after_sigkill_ms", (double)crash, "ms", "<= 2000");
    cluster_done(&c, 0);
}

int
main(int argc, char **argv)
{
    const char *only = NULL;
    uint64_t restart_points = 100000000;
    int is_bad = argc < 2;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            is_quick = 1;
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--restart-points") == 0 && i + 1 < argc)
            restart_points =
                bench_flag_u64("bench_cluster", "--restart-points", argv[++i],
                               0, UINT64_C(1000000000000), &is_bad);
        else if (strcmp(argv[i], "--auth") == 0 && i + 1 < argc)
            is_bad |= bench_on_off(argv[++i], &is_auth);
        else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
            only_mode = argv[++i];
        else
            is_bad = 1;
    }
    if (only_mode != NULL && strcmp(only_mode, "memory") != 0 &&
        strcmp(only_mode, "buffered") != 0 && strcmp(only_mode, "strict") != 0)
        is_bad = 1;
    if (is_bad) {
        fprintf(stderr, "usage: bench_cluster PATH/TO/runvault [--quick] "
                        "[--only ingest|failover|restart] "
                        "[--restart-points N] [--auth on|off] "
                        "[--mode memory|buffered|strict]\n");
        return 2;
    }
    if (is_quick)
        restart_points = 200000;
    cluster_set_binary(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    if (only == NULL || strcmp(only, "ingest") == 0)
        bench_ingest();
    if (only == NULL || strcmp(only, "failover") == 0)
        bench_failover();
    if (only == NULL || strcmp(only, "restart") == 0)
        bench_restart(restart_points);
    return 0;
}
