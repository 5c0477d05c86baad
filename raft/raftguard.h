/* A work-around for a raft 0.15 safety bug (ARCHITECTURE.md, "The raft
 * state machine"): a follower answers a successful AppendEntries with
 * last_log_index = its last stored index, which counts a stale suffix past
 * the entries the leader sent; the leader takes that as the match index and
 * can commit an entry a majority does not hold.
 *
 * The guard wraps the raft_io of one server: start (to see incoming
 * messages) and send (to rewrite outgoing results). A successful
 * AppendEntriesResult never reports more than prev_log_index + n_entries of
 * the request it answers, the match index Raft defines. Replies sent while
 * the request is being received are matched to it directly; replies sent
 * later (after the entries were written to disk) are matched to the
 * requests in arrival order. Reporting less than the truth is always safe:
 * the leader resends and the follower answers again.
 *
 * Loop thread only (raft's thread). */
#ifndef RV_RAFT_RAFTGUARD_H
#define RV_RAFT_RAFTGUARD_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

#define RAFTGUARD_MAX_PENDING 256

struct raftguard {
    struct raft *raft; /* Borrowed. */
    void *user_data;   /* raft->data now points to the guard; this is what
                          the caller had there. */
    int (*start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                 raft_io_recv_cb recv);
    int (*send)(struct raft_io *io, struct raft_io_send *req,
                const struct raft_message *message, raft_io_send_cb cb);
    raft_io_recv_cb recv;
    raft_term term;
    int is_in_recv, has_replied;
    raft_index cur_bound, last_bound;
    raft_index pending[RAFTGUARD_MAX_PENDING]; /* Ring of async bounds. */
    size_t head, n_pending;
    uint64_t n_clamped; /* Results whose last_log_index was lowered. */
};

/* Install g on r: after raft_init(), before raft_start(). Sets r->data to
 * g (the previous value is kept in g->user_data). */
void raftguard_install(struct raftguard *g, struct raft *r);

#endif /* RV_RAFT_RAFTGUARD_H */
