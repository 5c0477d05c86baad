/* Real `runvault serve` processes on 127.0.0.1 for tests and benchmarks:
 * start, signal and reap nodes, ask their status, wait for a leader or for
 * every replica to agree. Children are SIGKILLed and reaped by
 * cluster_done() and, whatever happens, at exit. This is the one C cluster
 * launcher (library rv_testcluster); the benchmarks link it too.
 *
 * Ownership: a struct cluster owns its temporary directory (c->tmp) and
 * its children; cluster_done() releases both. No free block of ports ends
 * the program.
 *
 * Threads: a struct cluster is used by one thread at a time. */
#ifndef RV_TESTS_LIB_CLUSTER_H
#define RV_TESTS_LIB_CLUSTER_H

#include <stdint.h>
#include <sys/types.h>

#define CLUSTER_MAX_NODES 5

struct cluster_node {
    int id;
    pid_t pid;
    int exit_status; /* Of the last exit, -1 if unknown. */
    char dir[512], log[512];
    char rpc[64], raft[32];
};

struct cluster {
    char *tmp;
    int n;
    int port;
    struct cluster_node nodes[CLUSTER_MAX_NODES];
    char peers[512], endpoints[512];
    const char *durability;
    const char *snapshot_bytes;
    const char *extra[4];        /* More serve flags, NULL-terminated. */
    void (*on_done)(void *data); /* Called first by cluster_done. */
    const struct rvc_tls *tls;   /* cluster_set_tls; NULL: plain. */
    void *on_done_data;
    const char *token; /* Sent with status requests (auth on), or NULL. */
};

struct cluster_nstat {
    int is_up;
    char state[16];
    uint64_t applied, term, leader_id, n_catch_ups, n_fetched;
    char digest[40];
};

/* The runvault binary to start (once, before anything else). */
void cluster_set_binary(const char *path);

/* n initial voters under a fresh temporary dir, on a block of loopback
 * ports below the kernel's ephemeral range, each of which could be bound
 * when this was called (a taken one moves the cluster to the next block;
 * none free exits the test). Nothing runs yet. Main thread. */
void cluster_init(struct cluster *c, const char *tag, int n,
                  const char *durability);
/* The nodes serve with TLS (their certificate comes from the
 * RUNVAULT_TLS_CERT/KEY/CA variables the caller sets): their RPC
 * addresses become tls+tcp:// and the status calls dial with tls
 * (borrowed: it must outlive c). After cluster_init and any change of
 * ports, before the first start. */
struct rvc_tls;
void cluster_set_tls(struct cluster *c, const struct rvc_tls *tls);

/* Start node i (0-based) as an initial voter or as a joiner. */
void cluster_start(struct cluster *c, int i, int is_join);
void cluster_signal(struct cluster *c, int i, int sig);
/* Wait (bounded) for node i to exit: its exit code, or -1. */
int cluster_reap(struct cluster *c, int i, unsigned timeout_ms);
void cluster_kill_all(struct cluster *c);
/* Stop everything, print the logs' tails if is_failed, remove the dir. */
void cluster_done(struct cluster *c, int is_failed);

void cluster_node_status(struct cluster *c, int i, struct cluster_nstat *st);
/* The serving leader's index, or -1 after timeout_ms. */
int cluster_leader(struct cluster *c, unsigned timeout_ms);
/* 1 once every running node of the first n has the same applied index and
 * digest (stored in *applied), 0 after timeout_ms. */
int cluster_converged(struct cluster *c, unsigned timeout_ms,
                      uint64_t *applied);
/* Start the first n nodes; 1 once each answers (within 10 s). */
int cluster_start_all(struct cluster *c);

#endif /* RV_TESTS_LIB_CLUSTER_H */
