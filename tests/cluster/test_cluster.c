/* Real `runvault serve` processes on 127.0.0.1, each with its own data dir
 * under a temporary directory: writes while the leader is SIGKILLed, kill
 * -9 of every node and restart (buffered and strict), clean-restart
 * idempotency, tiny entries, continuous commits, catch-up of a lagging
 * follower through a snapshot descriptor, and adding and removing a node
 * under load. After each: every acknowledged write is present exactly once
 * and every replica reaches the same digest at the same applied index.
 *
 * usage: test_cluster PATH/TO/runvault [TEST]. RV_TEST_SCALE=small shortens
 * the loads (CI under the sanitizers). Every child is killed and reaped
 * when a test ends, pass or fail. */
#include "base/clock.h"
#include "rpc/client/client.h"
#include "tests/lib/cluster.h"
#include "tests/lib/harness.h"
#include "tests/lib/writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WRITERS 8
#define POINTS      50   /* Points per write: history stays one read. */
#define MAX_WRITES  1800 /* Per writer: < 100k points per run. */

static int is_small;

/* ---- Writers ---------------------------------------------------------- */

enum outcome { W_NONE, W_ACKED, W_FAILED };

struct writer {
    struct cluster *c;
    int no;
    uint64_t client_id;
    char run_id[32];
    atomic_int *stop;
    int durability;
    int n_writes;
    unsigned char outcome[MAX_WRITES];
    uint64_t last_index;
    uint64_t n_acked, n_failed;
    _Atomic uint64_t last_ack_ms;
    pthread_t thread;
};

static void *
writer_main(void *arg)
{
    struct writer *w = arg;
    struct rvc *cl;
    char errmsg[RV_ERRMSG_SIZE];
    if (rvc_open(&cl, w->c->endpoints, errmsg) != RV_OK)
        return NULL;
    rvc_set_timeouts(cl, 2000, 15000);
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RunCreate rc;
    testwriter_run_create(&cmd, &rc, w->run_id, "cluster-test", "writers");
    cmd.has_client_id = cmd.has_seq = 1;
    cmd.client_id = w->client_id;
    cmd.seq = 1;
    while (testwriter_send(cl, &cmd, w->durability, NULL) != RV_OK &&
           !atomic_load(w->stop))
        rv_clock_sleep_ms(100);
    Rv__LogBatch lb;
    Rv__Metrics m;
    struct proto_metrics_builder mb;
    proto_metrics_init(&mb);
    for (int i = 0; i < MAX_WRITES && !atomic_load(w->stop); i++) {
        proto_metrics_reset(&mb);
        for (int j = 0; j < POINTS; j++)
            if (proto_metrics_add(&mb, "loss", NULL, (int64_t)i * POINTS + j,
                                  1000 + i, (double)(i * POINTS + j) * 0.5,
                                  NULL) != RV_OK)
                abort();
        testwriter_log_batch(&cmd, &lb, &m, w->run_id, &mb);
        cmd.seq = 2 + (uint64_t)i;
        uint64_t index = 0;
        int code = testwriter_send(cl, &cmd, w->durability, &index);
        w->n_writes = i + 1;
        if (code == RV_OK) {
            w->outcome[i] = W_ACKED;
            w->n_acked++;
            if (index > w->last_index)
                w->last_index = index;
            atomic_store(&w->last_ack_ms, rv_clock_mono_ms());
        } else {
            w->outcome[i] = W_FAILED;
            w->n_failed++;
        }
    }
    proto_metrics_free(&mb);
    rvc_close(cl);
    return NULL;
}

struct writers {
    struct writer w[MAX_WRITERS];
    int n;
    atomic_int stop;
    struct cluster *c;
};

static void writers_stop(struct writers *ws);

static void
writers_stop_cb(void *data)
{
    writers_stop(data);
}

static void
writers_start(struct writers *ws, struct cluster *c, int n, int durability)
{
    static uint64_t next_client = 1000;
    memset(ws, 0, sizeof *ws);
    ws->n = n;
    ws->c = c;
    c->on_done = writers_stop_cb;
    c->on_done_data = ws;
    for (int i = 0; i < n; i++) {
        struct writer *w = &ws->w[i];
        w->c = c;
        w->no = i;
        w->client_id = next_client++;
        w->stop = &ws->stop;
        w->durability = durability;
        snprintf(w->run_id, sizeof w->run_id, "run-%llu",
                 (unsigned long long)w->client_id);
        pthread_create(&w->thread, NULL, writer_main, w);
    }
}

static void
writers_stop(struct writers *ws)
{
    atomic_store(&ws->stop, 1);
    for (int i = 0; i < ws->n; i++)
        pthread_join(ws->w[i].thread, NULL);
    ws->c->on_done = NULL;
}

static uint64_t
writers_acked(const struct writers *ws)
{
    uint64_t n = 0;
    for (int i = 0; i < ws->n; i++)
        n += ws->w[i].n_acked;
    return n;
}

/* Every acknowledged write's points present exactly once, nothing from a
 * write never sent; read linearizably through the leader. Returns the
 * number of lost acknowledged writes (0 expected), -1 if unreadable. */
static long
writers_check(struct writers *ws, struct cluster *c, uint64_t *n_unknown)
{
    struct rvc *cl;
    char errmsg[RV_ERRMSG_SIZE];
    long lost = 0;
    *n_unknown = 0;
    if (rvc_open(&cl, c->endpoints, errmsg) != RV_OK)
        return -1;
    for (int i = 0; i < ws->n; i++) {
        struct writer *w = &ws->w[i];
        Rv__Request req = RV__REQUEST__INIT;
        Rv__HistoryRequest h = RV__HISTORY_REQUEST__INIT;
        Rv__ReadOptions ro = RV__READ_OPTIONS__INIT;
        Rv__Response *resp = NULL;
        h.run_id = w->run_id;
        h.key = "loss";
        ro.has_consistency = 1;
        ro.consistency = RV__CONSISTENCY__LINEARIZABLE;
        req.body_case = RV__REQUEST__BODY_HISTORY;
        req.history = &h;
        req.read = &ro;
        if (w->n_acked == 0)
            continue;
        if (rvc_call(cl, &req, &resp, errmsg) != RV_OK || resp->code != RV_OK) {
            fprintf(stderr, "history of %s: %s\n", w->run_id,
                    resp && resp->message ? resp->message : errmsg);
            rvc_response_free(resp);
            rvc_close(cl);
            return -1;
        }
        static unsigned char seen[MAX_WRITES * POINTS];
        memset(seen, 0, sizeof seen);
        for (size_t k = 0; k < resp->n_steps; k++) {
            int64_t s = resp->steps[k];
            if (s < 0 || s >= (int64_t)w->n_writes * POINTS || seen[s]++ != 0) {
                fprintf(stderr, "%s: step %lld stored twice or never sent\n",
                        w->run_id, (long long)s);
                lost++;
            }
        }
        for (int k = 0; k < w->n_writes; k++) {
            int n_here = 0;
            for (int j = 0; j < POINTS; j++)
                n_here += seen[k * POINTS + j];
            if (w->outcome[k] == W_ACKED && n_here != POINTS) {
                fprintf(stderr, "%s: acknowledged write %d has %d points\n",
                        w->run_id, k, n_here);
                lost++;
            }
            if (w->outcome[k] != W_ACKED && n_here != 0 && n_here != POINTS)
                lost++; /* A write is all or nothing. */
            if (w->outcome[k] != W_ACKED)
                (*n_unknown)++;
        }
        rvc_response_free(resp);
    }
    rvc_close(cl);
    return lost;
}

/* CHECK inside a test that runs a cluster: on failure the nodes' logs are
 * printed and every process is stopped before the test returns. */
#define CCHECK(c, cond)                               \
    do {                                              \
        if (!(cond)) {                                \
            RV_CHECK_FAIL("CHECK(%s) failed", #cond); \
            cluster_done(c, 1);                       \
            return;                                   \
        }                                             \
    } while (0)

static unsigned
scaled(unsigned normal, unsigned small)
{
    return is_small ? small : normal;
}

/* ---- Tests ----------------------------------------------------------------
 */

static void
test_leader_sigkill_under_writes(void)
{
    struct cluster c;
    struct writers ws;
    uint64_t unknown, applied;
    cluster_init(&c, "cl-kill", 3, "buffered");
    CCHECK(&c, cluster_start_all(&c));
    int leader = cluster_leader(&c, 10000);
    CCHECK(&c, leader >= 0);
    writers_start(&ws, &c, 4, 0);
    rv_clock_sleep_ms(scaled(1500, 1000));
    uint64_t before = writers_acked(&ws);
    cluster_signal(&c, leader, SIGKILL);
    cluster_reap(&c, leader, 5000);
    uint64_t t_kill = rv_clock_mono_ms(); /* Dead: acks after are new. */
    /* The first acknowledgement after the kill, from any writer. */
    uint64_t first = 0;
    while (first == 0 && rv_clock_mono_ms() < t_kill + 10000) {
        for (int i = 0; i < ws.n; i++) {
            uint64_t t = atomic_load(&ws.w[i].last_ack_ms);
            if (t > t_kill && (first == 0 || t < first))
                first = t;
        }
        rv_clock_sleep_ms(5);
    }
    rv_clock_sleep_ms(scaled(1500, 1000));
    cluster_start(&c, leader, 0);
    rv_clock_sleep_ms(500);
    writers_stop(&ws);
    long lost = writers_check(&ws, &c, &unknown);
    int is_conv = cluster_converged(&c, 20000, &applied);
    printf("leader kill: %llu acked writes (%llu before the kill), %llu not "
           "acknowledged, %ld lost, first write %llu ms after the kill, "
           "replicas converged at %llu: %s\n",
           (unsigned long long)writers_acked(&ws), (unsigned long long)before,
           (unsigned long long)unknown, lost,
           (unsigned long long)(first ? first - t_kill : 0),
           (unsigned long long)applied, is_conv ? "yes" : "no");
    CCHECK(&c, first != 0 && writers_acked(&ws) > before);
    CCHECK(&c, lost == 0);
    CCHECK(&c, is_conv);
    cluster_done(&c, rv_test_failed);
}

static void
kill_all_and_restart(const char *durability)
{
    struct cluster c;
    struct writers ws;
    uint64_t unknown, applied, applied2;
    cluster_init(&c, "cl-killall", 3, durability);
    CCHECK(&c, cluster_start_all(&c));
    CCHECK(&c, cluster_leader(&c, 10000) >= 0);
    writers_start(&ws, &c, 4, 0);
    rv_clock_sleep_ms(scaled(1500, 1000));
    for (int i = 0; i < 3; i++)
        cluster_signal(&c, i, SIGKILL);
    for (int i = 0; i < 3; i++)
        cluster_reap(&c, i, 5000);
    writers_stop(&ws);
    CCHECK(&c, cluster_start_all(&c));
    CCHECK(&c, cluster_leader(&c, 10000) >= 0);
    long lost = writers_check(&ws, &c, &unknown);
    int is_conv = cluster_converged(&c, 20000, &applied);
    printf("kill -9 of all (%s): %llu acked writes, %llu unknown at the "
           "kill, %ld lost, converged at %llu: %s\n",
           durability, (unsigned long long)writers_acked(&ws),
           (unsigned long long)unknown, lost, (unsigned long long)applied,
           is_conv ? "yes" : "no");
    CCHECK(&c, writers_acked(&ws) > 0 && lost == 0 && is_conv);
    /* A clean stop and restart replays nothing new: same index, digest. */
    struct cluster_nstat before, after;
    cluster_node_status(&c, 0, &before);
    for (int i = 0; i < 3; i++)
        cluster_signal(&c, i, SIGTERM);
    for (int i = 0; i < 3; i++)
        CCHECK(&c, cluster_reap(&c, i, 10000) == 0);
    CCHECK(&c, cluster_start_all(&c));
    CCHECK(&c, cluster_leader(&c, 10000) >= 0);
    CCHECK(&c, cluster_converged(&c, 20000, &applied2));
    cluster_node_status(&c, 0, &after);
    /* The new leader's barrier is not a command: the index is unchanged
     * unless the leader recorded its addresses again (it does not: the
     * record is the same). */
    CCHECK(&c, after.applied == before.applied &&
                   strcmp(after.digest, before.digest) == 0);
    cluster_done(&c, rv_test_failed);
}

static void
test_kill_all_and_restart_buffered(void)
{
    kill_all_and_restart("buffered");
}

static void
test_kill_all_and_restart_strict(void)
{
    kill_all_and_restart("strict");
}

static int
has_corrupt_segment(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/raft", dir);
    DIR *d = opendir(path);
    struct dirent *e;
    int found = 0;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "corrupt", 7) == 0)
            found = 1;
    if (d != NULL)
        closedir(d);
    return found;
}

/* raft 0.15 corrupts its log for entries that are not a multiple of 8
 * bytes: the smallest commands must survive a restart. */
static void
test_tiny_payload_regression(void)
{
    struct cluster c;
    struct rvc *cl;
    char errmsg[RV_ERRMSG_SIZE];
    uint64_t last = 0, applied;
    cluster_init(&c, "cl-tiny", 3, "buffered");
    CCHECK(&c, cluster_start_all(&c));
    CCHECK(&c, cluster_leader(&c, 10000) >= 0);
    CCHECK(&c, rvc_open(&cl, c.endpoints, errmsg) == RV_OK);
    struct writer w;
    memset(&w, 0, sizeof w);
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__Noop noop = RV__NOOP__INIT;
    cmd.body_case = RV__COMMAND__BODY_NOOP;
    cmd.noop = &noop;
    int n_ok = 0;
    for (int i = 0; i < 200; i++) {
        /* No key, or a key: payloads of 2 to ~8 bytes, never padded by
         * the client. */
        cmd.has_client_id = cmd.has_seq = i % 2;
        cmd.client_id = 7;
        cmd.seq = (uint64_t)i + 1;
        uint64_t index = 0;
        if (testwriter_send(cl, &cmd, w.durability, &index) == RV_OK) {
            n_ok++;
            last = index;
        }
    }
    rvc_close(cl);
    CCHECK(&c, n_ok == 200);
    for (int i = 0; i < 3; i++)
        cluster_signal(&c, i, i == 0 ? SIGTERM : SIGKILL);
    for (int i = 0; i < 3; i++)
        cluster_reap(&c, i, 10000);
    CCHECK(&c, cluster_start_all(&c));
    CCHECK(&c, cluster_leader(&c, 10000) >= 0);
    CCHECK(&c, cluster_converged(&c, 20000, &applied));
    for (int i = 0; i < 3; i++)
        CCHECK(&c, !has_corrupt_segment(c.nodes[i].dir));
    printf("tiny entries: 200 acknowledged up to index %llu; after restart "
           "every node at %llu, no corrupt raft segment\n",
           (unsigned long long)last, (unsigned long long)applied);
    CCHECK(&c, applied >= last);
    cluster_done(&c, rv_test_failed);
}

static void
test_continuous_writes_keep_committing(void)
{
    struct cluster c;
    struct writers ws;
    uint64_t unknown;
    cluster_init(&c, "cl-cont", 3, "buffered");
    CCHECK(&c, cluster_start_all(&c));
    int leader = cluster_leader(&c, 10000);
    CCHECK(&c, leader >= 0);
    writers_start(&ws, &c, 8, 0);
    rv_clock_sleep_ms(300);
    uint64_t last = 0, last_change = rv_clock_mono_ms(), worst = 0;
    unsigned n_samples = 0, n_advanced = 0;
    uint64_t until = rv_clock_mono_ms() + scaled(4000, 2500);
    while (rv_clock_mono_ms() < until) {
        struct cluster_nstat st;
        cluster_node_status(&c, leader, &st);
        uint64_t now = rv_clock_mono_ms();
        if (st.applied > last) {
            if (n_samples > 0)
                n_advanced++;
            last = st.applied;
            last_change = now;
        }
        if (now - last_change > worst)
            worst = now - last_change;
        n_samples++;
        rv_clock_sleep_ms(100);
    }
    writers_stop(&ws);
    long lost = writers_check(&ws, &c, &unknown);
    printf("continuous writes: %llu acked by 8 writers, the leader's applied "
           "index advanced in %u of %u samples (100 ms), longest stall %llu "
           "ms\n",
           (unsigned long long)writers_acked(&ws), n_advanced, n_samples - 1,
           (unsigned long long)worst);
    CCHECK(&c, worst < 1000);
    CCHECK(&c, n_advanced * 10 >= (n_samples - 1) * 8);
    CCHECK(&c, lost == 0);
    cluster_done(&c, rv_test_failed);
}

static void
test_lagging_follower_catches_up_through_a_descriptor(void)
{
    struct cluster c;
    struct writers ws;
    uint64_t unknown, applied;
    cluster_init(&c, "cl-lag", 3, "buffered");
    c.snapshot_bytes = "1048576";
    CCHECK(&c, cluster_start_all(&c));
    int leader = cluster_leader(&c, 10000);
    CCHECK(&c, leader >= 0);
    int lag = (leader + 1) % 3;
    cluster_signal(&c, lag, SIGKILL);
    cluster_reap(&c, lag, 5000);
    writers_start(&ws, &c, 4, 0);
    /* Over 2 MiB of log: snapshots at every MiB, 64 entries kept. */
    uint64_t until = rv_clock_mono_ms() + 20000;
    while (writers_acked(&ws) < scaled(3000, 3000) &&
           rv_clock_mono_ms() < until)
        rv_clock_sleep_ms(50);
    writers_stop(&ws);
    cluster_start(&c, lag, 0);
    int is_conv = cluster_converged(&c, 30000, &applied);
    struct cluster_nstat st;
    cluster_node_status(&c, lag, &st);
    long lost = writers_check(&ws, &c, &unknown);
    printf("lagging follower: %llu writes while it was down; caught up to "
           "%llu with %llu catch-ups fetching %llu records: %s\n",
           (unsigned long long)writers_acked(&ws), (unsigned long long)applied,
           (unsigned long long)st.n_catch_ups, (unsigned long long)st.n_fetched,
           is_conv ? "converged" : "NOT converged");
    CCHECK(&c, is_conv && lost == 0);
    CCHECK(&c, st.n_catch_ups >= 1 && st.n_fetched > 0);
    cluster_done(&c, rv_test_failed);
}

static int
count_voters(struct cluster *c, int *has_id, int id)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    Rv__Response *resp = NULL;
    struct rvc *cl;
    char errmsg[RV_ERRMSG_SIZE];
    int n = -1;
    *has_id = 0;
    cr.op = RV__CLUSTER_OP__CLUSTER_STATUS;
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    if (rvc_open(&cl, c->endpoints, errmsg) != RV_OK)
        return -1;
    rvc_set_timeouts(cl, 1000, 2000);
    if (rvc_call(cl, &req, &resp, errmsg) == RV_OK && resp->code == RV_OK) {
        n = 0;
        for (size_t i = 0; i < resp->n_nodes; i++) {
            if (resp->nodes[i]->role &&
                strcmp(resp->nodes[i]->role, "voter") == 0)
                n++;
            if ((int)resp->nodes[i]->id == id)
                *has_id = 1;
        }
    }
    rvc_response_free(resp);
    rvc_close(cl);
    return n;
}

static void
test_add_and_remove_under_load(void)
{
    struct cluster c;
    struct writers ws;
    uint64_t unknown, applied;
    int has;
    cluster_init(&c, "cl-member", 3, "buffered");
    c.snapshot_bytes = "1048576";
    CCHECK(&c, cluster_start_all(&c));
    CCHECK(&c, cluster_leader(&c, 10000) >= 0);
    writers_start(&ws, &c, 4, 0);
    /* Over a MiB of log first: a snapshot, so the newcomer (whose log is
     * empty) is brought up through a descriptor and fetch. */
    uint64_t t_until = rv_clock_mono_ms() + 20000;
    while (writers_acked(&ws) < 2000 && rv_clock_mono_ms() < t_until)
        rv_clock_sleep_ms(50);
    /* A brand-new node joins: spare, standby, voter. */
    c.n = 4;
    cluster_start(&c, 3, 1);
    uint64_t until = rv_clock_mono_ms() + 30000;
    while (count_voters(&c, &has, 4) != 4 && rv_clock_mono_ms() < until)
        rv_clock_sleep_ms(100);
    CCHECK(&c, count_voters(&c, &has, 4) == 4);
    /* Node 3 leaves while the writes go on; it stops by itself. */
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    Rv__Response *resp = NULL;
    struct rvc *cl;
    char errmsg[RV_ERRMSG_SIZE];
    cr.op = RV__CLUSTER_OP__CLUSTER_REMOVE;
    cr.has_id = 1;
    cr.id = 3;
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    CCHECK(&c, rvc_open(&cl, c.endpoints, errmsg) == RV_OK);
    int code = RV_ESTATE;
    for (int i = 0; i < 100 && code == RV_ESTATE; i++) {
        rvc_response_free(resp);
        resp = NULL;
        code = rvc_call(cl, &req, &resp, errmsg);
        if (code == RV_OK)
            code = (int)resp->code;
        if (code == RV_ESTATE)
            rv_clock_sleep_ms(100);
    }
    rvc_response_free(resp);
    rvc_close(cl);
    CCHECK(&c, code == RV_OK);
    int exit3 = cluster_reap(&c, 2, 15000);
    rv_clock_sleep_ms(1000);
    writers_stop(&ws);
    int voters = count_voters(&c, &has, 3);
    long lost = writers_check(&ws, &c, &unknown);
    int is_conv = cluster_converged(&c, 20000, &applied);
    struct cluster_nstat st4;
    cluster_node_status(&c, 3, &st4);
    printf("membership: node 4 joined as a voter (%llu catch-ups, %llu "
           "records fetched), node 3 removed (exit %d); %d voters; %llu acked "
           "writes, %ld lost; converged at %llu: %s\n",
           (unsigned long long)st4.n_catch_ups,
           (unsigned long long)st4.n_fetched, exit3, voters,
           (unsigned long long)writers_acked(&ws), lost,
           (unsigned long long)applied, is_conv ? "yes" : "no");
    CCHECK(&c, exit3 == 6);
    CCHECK(&c, st4.n_catch_ups >= 1 && st4.n_fetched > 0);
    CCHECK(&c, voters == 3 && !has);
    CCHECK(&c, lost == 0 && is_conv);
    cluster_done(&c, rv_test_failed);
}

static const struct rv_test tests[] = {
    {"leader_sigkill_under_writes", test_leader_sigkill_under_writes},
    {"kill_all_and_restart_buffered", test_kill_all_and_restart_buffered},
    {"kill_all_and_restart_strict", test_kill_all_and_restart_strict},
    {"tiny_payload_regression", test_tiny_payload_regression},
    {"continuous_writes_keep_committing",
     test_continuous_writes_keep_committing},
    {"lagging_follower_catches_up_through_a_descriptor",
     test_lagging_follower_catches_up_through_a_descriptor},
    {"add_and_remove_under_load", test_add_and_remove_under_load},
    {NULL, NULL}};

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cluster PATH/TO/runvault [TEST]\n");
        return 2;
    }
    cluster_set_binary(argv[1]);
    const char *scale = getenv("RV_TEST_SCALE");
    is_small = scale != NULL && strcmp(scale, "small") == 0;
    signal(SIGPIPE, SIG_IGN);
    argv[1] = argv[0];
    return rv_test_main(argc - 1, argv + 1, tests);
}
