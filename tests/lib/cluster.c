/* Real runvault processes for tests and benchmarks (cluster.h). */
#include "tests/lib/cluster.h"

#include "base/clock.h"
#include "rpc/client/client.h"
#include "tests/lib/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *rv_bin;

static struct cluster *live; /* For the cleanup on every exit path. */

void
cluster_kill_all(struct cluster *c)
{
    for (int i = 0; i < c->n; i++) {
        if (c->nodes[i].pid > 0) {
            kill(c->nodes[i].pid, SIGKILL);
            waitpid(c->nodes[i].pid, NULL, 0);
            c->nodes[i].pid = 0;
        }
    }
}

static void
cleanup_at_exit(void)
{
    if (live != NULL)
        cluster_kill_all(live);
}

/* ---- Ports --------------------------------------------------------------
 * Node i listens on HTTP port + 10 i, RPC + 1, raft + 2: a block of
 * CLUSTER_PORT_BLOCK ports from port. Blocks start in [CLUSTER_PORT_LOW,
 * CLUSTER_PORT_LOW + CLUSTER_PORT_SPAN), below the kernel's ephemeral
 * ports (32768 and up), which outgoing connections take. */
#define CLUSTER_PORT_LOW   20000
#define CLUSTER_PORT_SPAN  12000
#define CLUSTER_PORT_BLOCK (10 * CLUSTER_MAX_NODES)
#define CLUSTER_PORT_TRIES 200

/* 1 if a TCP socket can bind 127.0.0.1:port now (as tests/lib/rvfixture.py
 * checks), else 0. */
static int
cluster_port_is_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int is_free = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return is_free;
}

/* The first port of a block whose every node port is free: a block per
 * process and cluster (from the pid), and the next block while one of its
 * ports is taken. Exits the test if none is found. */
static int
cluster_ports_pick(void)
{
    static int round; /* Clusters made by this process so far. */
    int start = (int)((getpid() * 97 + round++ * CLUSTER_PORT_BLOCK) %
                      CLUSTER_PORT_SPAN);
    for (int t = 0; t < CLUSTER_PORT_TRIES; t++) {
        int base = CLUSTER_PORT_LOW +
                   (start + t * CLUSTER_PORT_BLOCK) % CLUSTER_PORT_SPAN;
        int is_free = 1;
        for (int i = 0; i < CLUSTER_MAX_NODES && is_free; i++)
            for (int k = 0; k < 3 && is_free; k++)
                is_free = cluster_port_is_free(base + 10 * i + k);
        if (is_free)
            return base;
    }
    fprintf(stderr, "cluster: no free block of %d ports in %d-%d\n",
            CLUSTER_PORT_BLOCK, CLUSTER_PORT_LOW,
            CLUSTER_PORT_LOW + CLUSTER_PORT_SPAN);
    exit(1);
}

void
cluster_init(struct cluster *c, const char *tag, int n, const char *durability)
{
    memset(c, 0, sizeof *c);
    c->tmp = rv_test_tmpdir(tag);
    c->n = n;
    c->durability = durability;
    c->port = cluster_ports_pick();
    size_t pn = 0, en = 0;
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        struct cluster_node *nd = &c->nodes[i];
        nd->id = i + 1;
        nd->exit_status = -1;
        snprintf(nd->dir, sizeof nd->dir, "%s/n%d", c->tmp, i + 1);
        snprintf(nd->log, sizeof nd->log, "%s/n%d.log", c->tmp, i + 1);
        snprintf(nd->rpc, sizeof nd->rpc, "tcp://127.0.0.1:%d",
                 c->port + 10 * i + 1);
        snprintf(nd->raft, sizeof nd->raft, "127.0.0.1:%d",
                 c->port + 10 * i + 2);
        if (i < n) {
            pn += (size_t)snprintf(c->peers + pn, sizeof c->peers - pn,
                                   "%s%d=%s", i ? "," : "", i + 1, nd->raft);
            en += (size_t)snprintf(c->endpoints + en, sizeof c->endpoints - en,
                                   "%s%s", i ? "," : "", nd->rpc);
        }
    }
    live = c;
}

void
cluster_set_tls(struct cluster *c, const struct rvc_tls *tls)
{
    size_t en = 0;
    c->tls = tls;
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        struct cluster_node *nd = &c->nodes[i];
        char plain[sizeof nd->rpc];
        if (strncmp(nd->rpc, "tcp://", 6) == 0) {
            memcpy(plain, nd->rpc, sizeof plain);
            snprintf(nd->rpc, sizeof nd->rpc, "tls+%.*s",
                     (int)(sizeof nd->rpc - 5), plain);
        }
        if (i < c->n)
            en += (size_t)snprintf(c->endpoints + en, sizeof c->endpoints - en,
                                   "%s%s", i ? "," : "", nd->rpc);
    }
}

/* Start node i: a member of the initial voters, or a joiner. */
void
cluster_start(struct cluster *c, int i, int is_join)
{
    struct cluster_node *nd = &c->nodes[i];
    char id[16], http[32];
    snprintf(id, sizeof id, "%d", nd->id);
    snprintf(http, sizeof http, "127.0.0.1:%d", c->port + 10 * i);
    const char *argv[32];
    int a = 0;
    argv[a++] = rv_bin;
    argv[a++] = "serve";
    argv[a++] = "--id";
    argv[a++] = id;
    argv[a++] = "--data-dir";
    argv[a++] = nd->dir;
    argv[a++] = "--rpc-addr";
    argv[a++] = nd->rpc;
    argv[a++] = "--raft-addr";
    argv[a++] = nd->raft;
    argv[a++] = "--http-addr";
    argv[a++] = http;
    argv[a++] = is_join ? "--join" : "--peers";
    argv[a++] = is_join ? c->endpoints : c->peers;
    argv[a++] = "--durability";
    argv[a++] = c->durability;
    if (c->snapshot_bytes != NULL) {
        argv[a++] = "--snapshot-bytes";
        argv[a++] = c->snapshot_bytes;
    }
    for (int k = 0; k < 4 && c->extra[k] != NULL; k++)
        argv[a++] = c->extra[k];
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execv(rv_bin, (char *const *)argv);
        _exit(127);
    }
    nd->pid = pid;
}

void
cluster_signal(struct cluster *c, int i, int sig)
{
    if (c->nodes[i].pid > 0)
        kill(c->nodes[i].pid, sig);
}

/* Wait for node i to exit (bounded); returns its exit code or -1. */
int
cluster_reap(struct cluster *c, int i, unsigned timeout_ms)
{
    struct cluster_node *nd = &c->nodes[i];
    uint64_t until = rv_clock_mono_ms() + timeout_ms;
    while (nd->pid > 0) {
        int st;
        pid_t p = waitpid(nd->pid, &st, WNOHANG);
        if (p == nd->pid) {
            nd->pid = 0;
            nd->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
            return nd->exit_status;
        }
        if (rv_clock_mono_ms() > until)
            return -1;
        rv_clock_sleep_ms(20);
    }
    return nd->exit_status;
}

void
cluster_done(struct cluster *c, int is_failed)
{
    if (c->on_done != NULL)
        c->on_done(c->on_done_data);
    if (is_failed) {
        for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
            char cmd[1100];
            if (access(c->nodes[i].log, R_OK) != 0)
                continue;
            fprintf(stderr, "---- node %d log (tail)\n", i + 1);
            snprintf(cmd, sizeof cmd, "tail -n 25 '%s' >&2", c->nodes[i].log);
            if (system(cmd) != 0)
                fprintf(stderr, "(tail failed)\n");
        }
    }
    int n = c->n;
    c->n = CLUSTER_MAX_NODES;
    cluster_kill_all(c);
    c->n = n;
    live = NULL;
    rv_test_rmdir(c->tmp);
}

void
cluster_set_binary(const char *path)
{
    rv_bin = path;
    atexit(cleanup_at_exit);
}

/* ---- Status ---------------------------------------------------------- */

void
cluster_node_status(struct cluster *c, int i, struct cluster_nstat *st)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__StatusRequest sr = RV__STATUS_REQUEST__INIT;
    Rv__Response *resp = NULL;
    char errmsg[RV_ERRMSG_SIZE];
    memset(st, 0, sizeof *st);
    req.body_case = RV__REQUEST__BODY_STATUS;
    req.status = &sr;
    req.token = (char *)c->token;
    if (c->nodes[i].pid <= 0 || rvc_call_once_tls(c->nodes[i].rpc, c->tls, &req,
                                                  1000, &resp, errmsg) != RV_OK)
        return;
    if (resp->self != NULL) {
        const Rv__NodeStatus *s = resp->self;
        st->is_up = 1;
        snprintf(st->state, sizeof st->state, "%s", s->state ? s->state : "");
        snprintf(st->digest, sizeof st->digest, "%s",
                 s->digest ? s->digest : "");
        st->applied = s->applied_index;
        st->term = s->term;
        st->leader_id = s->leader_id;
        st->n_catch_ups = s->n_catch_ups;
        st->n_fetched = s->n_fetched_records;
    }
    rvc_response_free(resp);
}

/* The index of the serving leader, or -1 after timeout_ms. */
int
cluster_leader(struct cluster *c, unsigned timeout_ms)
{
    uint64_t until = rv_clock_mono_ms() + timeout_ms;
    do {
        for (int i = 0; i < c->n; i++) {
            struct cluster_nstat st;
            cluster_node_status(c, i, &st);
            if (st.is_up && strcmp(st.state, "leader") == 0)
                return i;
        }
        rv_clock_sleep_ms(50);
    } while (rv_clock_mono_ms() < until);
    return -1;
}

/* Every running node of the first n at the same applied index and digest. */
int
cluster_converged(struct cluster *c, unsigned timeout_ms, uint64_t *applied)
{
    uint64_t until = rv_clock_mono_ms() + timeout_ms;
    do {
        struct cluster_nstat first, st;
        int ok = 1, have = 0;
        for (int i = 0; i < c->n && ok; i++) {
            if (c->nodes[i].pid <= 0)
                continue;
            cluster_node_status(c, i, &st);
            if (!st.is_up) {
                ok = 0;
            } else if (!have) {
                first = st;
                have = 1;
            } else if (st.applied != first.applied ||
                       strcmp(st.digest, first.digest) != 0) {
                ok = 0;
            }
        }
        if (ok && have) {
            if (applied != NULL)
                *applied = first.applied;
            return 1;
        }
        rv_clock_sleep_ms(100);
    } while (rv_clock_mono_ms() < until);
    return 0;
}

/* Start the first n nodes; 1 once every one answers (bounded). */
int
cluster_start_all(struct cluster *c)
{
    for (int i = 0; i < c->n; i++)
        cluster_start(c, i, 0);
    uint64_t until = rv_clock_mono_ms() + 10000;
    for (int i = 0; i < c->n; i++) {
        struct cluster_nstat st;
        do {
            cluster_node_status(c, i, &st);
            if (!st.is_up)
                rv_clock_sleep_ms(50);
        } while (!st.is_up && rv_clock_mono_ms() < until);
        if (!st.is_up) {
            fprintf(stderr, "node %d did not come up\n", i + 1);
            return 0;
        }
    }
    return 1;
}
