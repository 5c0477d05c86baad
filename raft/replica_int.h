/* The replica's state, shared by the files of raft/ that run it on the
 * loop thread: replica.c (batches, barriers, leadership, stop),
 * replica_start.c (start), replica_state.c (what other threads read, disk
 * space, loop lag), replica_sync.c (store syncs), maint.c (the leader's
 * periodic proposals) and membership.c (adding, removing and promoting
 * nodes, leadership transfer, announcing this node's addresses). Never included
 * from outside raft/. Everything here runs on the loop thread unless a field
 * says otherwise. */
#ifndef RV_RAFT_REPLICA_INT_H
#define RV_RAFT_REPLICA_INT_H

#include "base/exit.h"
#include "raft/peersock.h"
#include "raft/raftguard.h"
#include "raft/replica.h"

#include <pthread.h>
#include <raft/uv.h>
#include <uv.h>

struct store_scrub;

/* A FIFO of ops (loop thread, or under r->lock for the inbound queue). */
struct replica__list {
    struct replica_op *head, *tail;
    size_t n;
};

enum replica__step {
    STEP_NONE,
    STEP_NODE_PUT, /* Record the node's addresses (a write). */
    STEP_ADD,      /* raft_add: spare. */
    STEP_STANDBY,  /* raft_assign standby. */
    STEP_CATCH_UP, /* Wait for its match index. */
    STEP_VOTER,    /* raft_assign voter. */
    STEP_REMOVE,   /* raft_remove. */
    STEP_NODE_DEL, /* Forget the node's addresses (a write). */
    STEP_TRANSFER  /* raft_transfer pending. */
};

struct replica {
    /* Configuration (copied). */
    uint64_t id;
    char *data_dir;
    char raft_dir[4096];
    char raft_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    char rpc_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    char http_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    int durability;
    unsigned election_ms, heartbeat_ms, sync_ms;
    const struct rv_log *log;

    struct store *store;
    struct raftfsm fsm;
    struct raftguard guard;
    uv_loop_t loop;
    struct raft_uv_transport transport;
    struct peersock peersock; /* Wraps the plain transport (peersock.h). */
    int is_peersock;
    struct raft_io io;
    struct raft raft;
    uv_async_t async;
    uv_check_t check;
    uv_timer_t sync_timer, tick_timer, close_timer, lag_timer;
    pthread_t thread;
    int is_raft_init, is_raft_started, is_loop_init, is_transport_init,
        is_transport_tls, is_io_init;

    /* Inbound queue and published state (under lock). */
    pthread_mutex_t lock;
    pthread_cond_t applied_cond;
    struct replica__list inbound;
    int is_stop_requested, is_loop_done, is_removed;
    /* The vlog scrub (store/scrub.h) and what it found. */
    struct store_scrub *scrub; /* Owned; NULL if it did not start. */
    int is_corrupt;
    char corrupt_msg[RV_ERRMSG_SIZE];
    struct replica_info info;

    /* Loop thread only. */
    struct replica__list writes, barriers, in_flight, sync_waiters;
    size_t pending_bytes;
    int is_in_flight;
    struct raft_apply apply_req;
    struct raft_barrier barrier_req;
    struct raft_change change_req;
    struct raft_transfer transfer_req;
    struct replica_op *change_op;
    enum replica__step step;
    uint64_t step_deadline_ms;
    struct replica_op step_write; /* node_put / node_del of a change. */
    /* step_write is queued, in flight or waiting for a strict sync: not
     * to be queued again until its done callback ran. */
    int is_step_write_busy;
    struct rv_buf step_packed;
    int is_leader, is_serving;
    int was_member; /* Seen in a configuration by this process. */
    int is_stopping, is_closing, is_closed;
    int exit_code;             /* enum rv_exit: why the loop ended. */
    int is_abandoned;          /* raft stopped itself and was left unclosed. */
    int is_transfer_sent;      /* cluster transfer: TimeoutNow sent. */
    int is_stop_transfer_sent; /* Stopping: handover started. */
    uint64_t stop_deadline_ms;
    uint64_t last_synced;
    uint64_t announced_term;
    uint64_t n_entries, n_commands, n_barriers, n_syncs;
    /* The loop-lag probe (replica.c): when it last fired (ns), the
     * histograms, how many stalls were logged. */
    uint64_t lag_last_ns;
    struct replica_hist loop_lag, sync_time;
    uint64_t n_stalls_logged;
    /* The store sync for durability runs on libuv's thread pool
     * (replica.c, "Syncs"): one job at a time. sync_work_done is set by
     * the worker under lock when store_sync_run returned. */
    struct store_sync_job sync_job;
    uv_work_t sync_work;
    uint64_t sync_begin_ns;
    int is_sync_running;
    int sync_work_done;       /* Under lock. */
    pthread_cond_t sync_cond; /* Signalled with sync_work_done. */
    /* The leader's periodic proposals (maint.c). */
    uint64_t check_interval_ms, check_entries, retention_interval_ms;
    uint64_t check_last_ms, check_last_index, sweep_last_ms;
    uint64_t compact_min_bytes, compact_last_ms;
    int is_maint_busy;
    uint64_t min_free_bytes, disk_free_bytes, disk_checked_ms;
    int is_disk_low;
    struct replica_op maint_write;
    struct rv_buf maint_packed;
    char maint_what[32];
    uint8_t maint_hash[16];

    /* The raft_io close wrapper (replica_start.c). */
    void (*io_close)(struct raft_io *io, raft_io_close_cb cb);
    raft_io_close_cb io_close_cb;
    int (*io_set_term)(struct raft_io *io, raft_term term);
    int (*io_set_vote)(struct raft_io *io, raft_id id);
    int is_io_close_fired;
};

/* ---- replica.c: queues and outcomes ---------------------------------------
 */

/* Append op to l / take the oldest op of l (NULL if empty). */
void replica__push(struct replica__list *l, struct replica_op *op);
struct replica_op *replica__pop(struct replica__list *l);

/* Finish op with code and message (NULL: the code's text): op->done() is
 * called, or an acknowledged memory-mode copy is freed. */
void replica__finish(struct replica_op *op, int code, const char *message);
void replica__finish_all(struct replica__list *l, int code,
                         const char *message);

/* Stop the replica with exit_code (enum rv_exit) after logging why. */
void replica__fail(struct replica *r, int exit_code, const char *why);

/* After a raft callback with status: schedule the next entry now (status
 * 0) or on a later loop turn (see replica.c for why). */
void replica__schedule_after(struct replica *r, int status);

/* The replica whose raft this is (through the guard's user_data). */
struct replica *replica__of_raft(struct raft *raft);

/* Publish the loop's state for replica_info() (under r->lock). */
void replica__publish(struct replica *r);

/* The loop thread's body: uv_run, then finish what is still queued. */
void *replica__thread(void *arg);

/* The loop's callbacks, installed by replica_start (replica_start.c):
 * raft closed; work handed in; every loop turn (leadership, faults); the
 * periodic sync; the tick (inbound work, membership, stopping). */
void replica__raft_closed(struct raft *raft);
void replica__async_cb(uv_async_t *h);
void replica__check_cb(uv_check_t *h);
void replica__sync_cb(uv_timer_t *t);

/* Start a store sync on the thread pool unless one runs; strict writes in
 * r->sync_waiters are answered when a sync covers their index
 * (replica_sync.c). */
void replica__sync_start(struct replica *r);

/* Refresh the data disk's free space, at most once a second; writes are
 * refused under the threshold (replica_state.c). */
void replica__disk_tick(struct replica *r);

/* After uv_run returned: wait for a sync job still on the thread pool and
 * close it (the store must not close under it). Loop thread. */
void replica__sync_drain(struct replica *r);
void replica__tick_cb(uv_timer_t *t);
void replica__lag_cb(uv_timer_t *t);

/* Count a duration of us µs into h. */
void replica__hist_add(struct replica_hist *h, uint64_t us);

/* The scrub's report of a damaged vlog segment (store_scrub_corrupt_fn):
 * the loop stops with RV_EXIT_CORRUPT. Scrub thread. */
void replica__on_corrupt(void *data, const char *why);

/* ---- maint.c: the leader's periodic proposals ----------------------------
 */

/* From the tick timer: propose a check point or a retention sweep when
 * one is due (a serving leader, nothing of maint.c in flight). */
void replica__maint_tick(struct replica *r);

/* ---- membership.c: configuration changes ----------------------------------
 */

/* The server id in raft's current configuration (its position in *pos if
 * pos is not NULL), or NULL. */
const struct raft_server *replica__member(struct replica *r, uint64_t id,
                                          unsigned *pos);

/* Take op (a REPLICA_OP_CHANGE) as the change in progress and start it;
 * the caller checked that no other change is in progress. */
void replica__change_start(struct replica *r, struct replica_op *op);

/* Take the next step of the change in progress, if it can go now. */
void replica__change_next(struct replica *r);

/* Finish the change in progress (if any) with code and msg. */
void replica__change_done(struct replica *r, int code, const char *msg);

/* raft_transfer's callback, for a cluster transfer and for the handover
 * of a stopping leader. */
void replica__transfer_cb(struct raft_transfer *req);

/* On a serving leader: record this node's addresses once per term, if the
 * store's record differs (a change op of its own). */
void replica__announce(struct replica *r);

/* From the tick timer: poll a catching-up promotion, and finish a
 * transfer whose callback did not come although leadership moved. */
void replica__membership_tick(struct replica *r);

#endif /* RV_RAFT_REPLICA_INT_H */
