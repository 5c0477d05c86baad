/* A replica: one node's raft instance (canonical/raft 0.15 on raft_uv and
 * its TCP transport), the store it materialises, and the batcher that turns
 * client writes into raft entries.
 *
 * Threads. replica_start() runs a libuv loop on its own thread; that thread
 * owns raft and every store write (shared/research/raft-0.15.md §9.1).
 * Other threads hand work in with replica_submit() (a locked queue and
 * uv_async_send) and read the published state with replica_info().
 *
 * Batching. At most one entry is in flight (raft 0.15 stalls its commit
 * index under pipelined applies, §4.3); writes that arrive meanwhile are
 * merged into the next entry (group commit), up to PROTO_MAX_ENTRY_BYTES.
 * Barriers (for linearizable reads and after winning an election) and
 * configuration changes share the same single-entry window.
 *
 * Acknowledgement by durability mode (DESIGN §6): memory when the leader
 * accepted the write into its next batch; buffered when the entry is
 * committed and applied on the leader (the store syncs in the background
 * every sync_ms); strict when, in addition, the leader's vlog and LMDB are
 * synced (a sync begun after the entry applied has ended; one sync covers
 * every strict write waiting). Syncs run on libuv's thread pool, not on
 * the loop (replica.c, "Syncs").
 *
 * Faults. A raft disk error on the leader (apply callback) or on a follower
 * (the raftguard's on_write_failed hook), or a store fault in apply, stops
 * the replica (fail-stop): replica_wait() returns RV_EXIT_IO. The vlog scrub
 * (store/scrub.h), started and stopped with the replica, re-checks every
 * record of the sealed vlog segments; a damaged one stops the replica with
 * RV_EXIT_CORRUPT (the node is wiped and rejoins). When raft stops itself
 * the replica stops with RV_EXIT_RAFT without closing raft, and node/
 * exits the process (replica_wait). This module never exits the process.
 *
 * Membership changes (add, remove, transfer; a new node goes spare ->
 * standby -> voter) run in raft/membership.c. */
#ifndef RV_RAFT_REPLICA_H
#define RV_RAFT_REPLICA_H

#include "base/err.h"
#include "base/exit.h"
#include "base/log.h"
#include "proto/proto.h"
#include "raft/raftfsm.h"
#include "raft/transport_tls.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

#define REPLICA_MAX_PEERS        9
#define REPLICA_DEFAULT_ELECTION 600 /* ms */
/* A raft connect attempt is given up after this (a fresh one follows
 * after REPLICA_PEER_RETRY_MS): a SYN sent into a network cut would
 * otherwise wait on TCP's SYN backoff (1, 2, 4, 8 s ...) after the heal. */
#define REPLICA_PEER_CONNECT_MS   500
#define REPLICA_PEER_RETRY_MS     250
#define REPLICA_DEFAULT_HEARTBEAT 60 /* ms */
#define REPLICA_DEFAULT_SYNC_MS   100
#define REPLICA_DEFAULT_SNAPSHOT  ((uint64_t)64 << 20) /* bytes of vlog */
#define REPLICA_SNAPSHOT_TRAILING 64 /* entries kept behind a snapshot */
#define REPLICA_MAX_PENDING_BYTES ((size_t)64 << 20) /* queued writes */
/* The loop-lag probe: a timer every REPLICA_LAG_PROBE_MS records how late
 * it fired, in a histogram of REPLICA_LAG_BUCKETS upper bounds
 * (replica_lag_bucket_us, then +Inf); a lag of REPLICA_LAG_LOG_MS or more
 * is logged with the longest piece of work seen on the loop since the
 * last probe. */
#define REPLICA_LAG_PROBE_MS 20
#define REPLICA_LAG_BUCKETS  10
#define REPLICA_LAG_LOG_MS   100
extern const uint64_t replica_lag_bucket_us[REPLICA_LAG_BUCKETS];

/* A histogram of durations (µs): counts per bucket of
 * replica_lag_bucket_us (cumulative is left to the reader), beyond the
 * last one, sum and max. */
struct replica_hist {
    uint64_t bucket[REPLICA_LAG_BUCKETS + 1];
    uint64_t count, sum_us, max_us;
};

enum replica_durability {
    REPLICA_MEMORY = 1,
    REPLICA_BUFFERED = 2,
    REPLICA_STRICT = 3
};

/* Why the loop ended, as codes of base/exit.h (enum rv_exit):
 *   RV_EXIT_OK       replica_stop()
 *   RV_EXIT_CORRUPT  the scrub found a damaged vlog segment
 *   RV_EXIT_IO       a disk error or store fault: fail-stop
 *   RV_EXIT_RAFT     raft stopped itself; it was left unclosed (closing it
 *                    crashes libraft 0.15): exit the process at once
 *   RV_EXIT_REMOVED  this node was removed from the cluster */

struct replica_peer {
    uint64_t id;
    char raft_addr[CONTRACT_MAX_ADDR_BYTES + 1];
};

struct replica_config {
    uint64_t id;           /* > 0 */
    const char *data_dir;  /* The store lives here, raft in raft/. */
    const char *raft_addr; /* IPv4 "a.b.c.d:port" (raft_uv_tcp). */
    const char *rpc_addr;  /* Announced to the others; may be NULL. */
    const char *http_addr; /* Announced to the others; may be NULL. */
    const struct replica_peer *peers; /* Static voters, or NULL. */
    size_t n_peers;
    int is_join;    /* Start empty and wait to be added: no bootstrap. */
    int durability; /* enum replica_durability; 0 = buffered. */
    unsigned election_ms, heartbeat_ms, sync_ms; /* 0 = defaults. */
    uint64_t snapshot_bytes;                     /* 0 = default. */
    uint64_t segment_bytes;     /* vlog segment size; 0 = default. */
    unsigned snapshot_trailing; /* 0 = default. */
    /* The leader's periodic proposals (raft/maint.c), 0 = never: a
     * divergence check point every check_entries entries (0: by time only)
     * or check_interval_ms, a retention sweep every retention_interval_ms
     * when one is due. serve sets the defaults. */
    uint64_t check_interval_ms, check_entries, retention_interval_ms;
    /* Compaction: the leader proposes one when the bytes purged since the
     * last reach compact_min_bytes (0: only when asked), looked at every
     * retention_interval_ms; a node rewrites at most compact_rate bytes/s
     * (0: unpaced). */
    uint64_t compact_min_bytes, compact_rate;
    /* Writes are refused (RV_ENOSPACE) while the data dir's file system
     * has less free space than this; 0 = no threshold. */
    uint64_t min_free_bytes;
    raftfsm_fetch_fn fetch; /* Catch-up from peers (rpc/). */
    raftfsm_image_fn fetch_image;
    void *fetch_data;
    /* Raft peer traffic over mutually authenticated TLS
     * (raft/transport_tls.h); NULL: plain TCP (raft_uv_tcp). Copied. */
    const struct transport_tls_config *tls;
    const struct rv_log *log;
};

struct replica;

/* Open the store and raft, bootstrap if this is a new cluster (no peers
 * and not joining: a single voter; peers: the same voter set on every
 * node; RAFT_CANTBOOTSTRAP on a restart is fine), and start the loop
 * thread. Errors: RV_EINVAL (config), RV_ECORRUPT, RV_EIO, RV_ENOMEM,
 * RV_EUNAVAILABLE (raft refused to start; detail in errmsg). */
int replica_start(struct replica **out, const struct replica_config *cfg,
                  char *errmsg);

/* Ask the loop to stop: if this node leads and another voter exists,
 * leadership is transferred first (bounded by two election timeouts).
 * Any thread, any number of times. */
void replica_stop(struct replica *r);

/* The leader says this node was removed from the configuration: stop with
 * RV_EXIT_REMOVED (unless this node leads). Any thread. */
void replica_removed(struct replica *r);

/* 0 once the loop thread has ended (stopped or failed). Any thread. */
int replica_is_running(struct replica *r);
/* Why the loop ended (an RV_EXIT_* code, above), once
 * replica_is_running() said 0; RV_EXIT_OK before. Any thread. */
int replica_exit_code(struct replica *r);

/* Wait for the loop thread to end, close raft and the store, and free r.
 * Returns an RV_EXIT_* code (above). On RV_EXIT_RAFT nothing is closed or
 * freed (raft cannot be closed safely): the caller must exit the process
 * without touching the replica, its store or the loop again; node/serve.c
 * exits as soon as replica_exit_code() says RV_EXIT_RAFT. */
int replica_wait(struct replica *r);

/* The store, for reads on any thread (store_read_*). */
struct store *replica_store(struct replica *r);

/* ---- Work handed to the loop ------------------------------------------- */

enum replica_op_kind {
    REPLICA_OP_WRITE,   /* Commands to apply. */
    REPLICA_OP_BARRIER, /* Wait until an entry of this term is applied. */
    REPLICA_OP_CHANGE   /* A membership change or leadership transfer. */
};

enum replica_change { REPLICA_ADD, REPLICA_REMOVE, REPLICA_TRANSFER };

struct replica_op {
    enum replica_op_kind kind;
    /* WRITE: the commands as CommandBatch field-1 records back to back
     * (see replica_pack_commands); borrowed until done. */
    const uint8_t *packed;
    size_t packed_len;
    size_t n_commands;
    int durability; /* 0 = the node's; a weaker one than the node's is
                       raised to the node's. */
    /* CHANGE */
    enum replica_change change;
    uint64_t node_id;
    char raft_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    char rpc_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    char http_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    /* Outcome, valid in done. code RV_ENOTLEADER: not applied, try the
     * leader; RV_EUNKNOWN: leadership was lost with the entry in flight,
     * it may still commit (retry with the same idempotency keys). */
    int code;
    char message[RV_ERRMSG_SIZE];
    uint64_t index;               /* The entry's raft index. */
    struct store_result *results; /* WRITE: n_commands, owned by the op
                                     (free with replica_op_clean). */
    size_t n_results;
    /* Called once on the loop thread when the op is finished. */
    void (*done)(struct replica_op *op);
    void *data;
    /* Private to the replica. */
    struct replica_op *next;
    size_t result_base;
    int is_acked;
};

/* Pack commands into one buffer of CommandBatch field-1 records; the loop
 * concatenates these into an entry without re-encoding. Any thread.
 * Returns RV_OK, RV_ETOOBIG (over PROTO_MAX_PAYLOAD_BYTES) or RV_ENOMEM. */
int replica_pack_commands(Rv__Command *const *commands, size_t n,
                          struct rv_buf *out, char *errmsg);

/* Hand op to the loop. Any thread. done() is called exactly once, also
 * when the replica stops (code RV_EUNAVAILABLE or RV_EUNKNOWN). */
void replica_submit(struct replica *r, struct replica_op *op);

/* Free op->results. */
void replica_op_clean(struct replica_op *op);

/* ---- Published state (any thread) -------------------------------------- */

struct replica_member {
    uint64_t id;
    char raft_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    int role; /* RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE */
};

struct replica_info {
    uint64_t id;
    int state;      /* RAFT_LEADER, RAFT_FOLLOWER, ... (raft.h) */
    int is_serving; /* Leader whose post-election barrier has applied. */
    uint64_t leader_id;
    uint64_t term, last_index, commit_index, applied_index;
    int durability;
    uint64_t n_entries, n_commands, n_barriers, n_syncs, n_snapshots;
    uint64_t n_catch_ups, n_fetched_records;
    size_t n_members;
    struct replica_member members[REPLICA_MAX_PEERS];
    /* The divergence check (store_check_info). */
    int is_diverged;
    uint64_t diverged_index, n_checks_hashed, n_checks_compared;
    /* Free space on the data dir's file system (statvfs, about once a
     * second) and the threshold under which writes are refused. */
    uint64_t disk_free_bytes, disk_min_free_bytes;
    int is_disk_low;
    /* How late the loop's probe timer fired (loop lag), and how long the
     * store syncs for durability took (periodic and strict). */
    struct replica_hist loop_lag, sync_time;
};

void replica_info(struct replica *r, struct replica_info *out);

/* RV_OK, or why this node refuses writes (RV_ENOSPACE: free space under
 * the threshold) or reads (RV_EUNAVAILABLE: the replica diverged), with
 * the reason in errmsg. Any thread. */
int replica_write_refusal(struct replica *r, char *errmsg);
int replica_read_refusal(struct replica *r, char *errmsg);

/* Wait until this node applied index (or timeout_ms passed). Returns
 * RV_OK, RV_ETIMEDOUT or RV_EUNAVAILABLE (stopping). Any thread. */
int replica_wait_applied(struct replica *r, uint64_t index,
                         unsigned timeout_ms);

/* Names for logs and status. */
const char *replica_state_name(int state);
const char *replica_role_name(int role);
const char *replica_durability_name(int durability);
int replica_durability_parse(const char *s, int *out);

#endif /* RV_RAFT_REPLICA_H */
