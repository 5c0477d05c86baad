/* The raft state machine: committed entries go to store_apply, snapshots
 * are small descriptors of the store (applied index and digest), never the
 * data (shared/research/raft-0.15.md §5).
 *
 * Rules kept here (raft-0.15.md §9): apply is idempotent by index (entries
 * at or below the store's applied index are skipped, as raft replays its
 * log on every start); business errors go into the result, never into the
 * return code, which would stall raft; a local fault (I/O, disk full,
 * corruption) returns RAFT_IOERR and marks the FSM failed so the node stops.
 *
 * Loop thread only: raft calls these on the thread that runs its loop. */
#ifndef RV_RAFT_RAFTFSM_H
#define RV_RAFT_RAFTFSM_H

#include "base/err.h"
#include "base/log.h"
#include "store/store.h"

#include <raft.h>

#define RAFTFSM_SNAPSHOT_MAGIC 0x5256534eu /* "RVSN" */
#define RAFTFSM_SNAPSHOT_BYTES (4 + 4 + 8 + STORE_DIGEST_BYTES)

/* What apply hands to the leader's raft_apply callback through *result.
 * Owned by the FSM and valid until the next apply: the callback runs in the
 * same call stack and must copy what it keeps. */
struct raftfsm_result {
    uint64_t index;
    struct store_result *results; /* One per command of the entry. */
    size_t n_results;
};

struct raftfsm {
    struct raft_fsm fsm;        /* Give &fsm to raft; fsm.data is this. */
    struct raft *raft;          /* Set with raftfsm_attach(). Borrowed. */
    struct store *store;        /* Borrowed. */
    const struct rv_log *log;   /* Borrowed; may be NULL. */
    struct raftfsm_result last; /* Owned. */
    int is_failed;              /* A local fault happened: stop the node. */
    uint64_t n_snapshots, n_restores_kept;
    char errmsg[RV_ERRMSG_SIZE];
};

/* Prepare f over store s (caller-allocated; no failure). */
void raftfsm_init(struct raftfsm *f, struct store *s, const struct rv_log *log);

/* Tell the FSM its raft instance, once raft_init has run: apply derives the
 * entry's index from raft_last_applied(). */
void raftfsm_attach(struct raftfsm *f, struct raft *r);

void raftfsm_close(struct raftfsm *f);

/* Encode and decode a snapshot descriptor (RAFTFSM_SNAPSHOT_BYTES, all
 * big-endian: magic, version 1, applied index, digest). Decode returns
 * RV_OK or RV_EMALFORMED. */
void raftfsm_snapshot_encode(uint64_t index,
                             const uint8_t digest[STORE_DIGEST_BYTES],
                             uint8_t *out);
int raftfsm_snapshot_decode(const void *buf, size_t len, uint64_t *index,
                            uint8_t digest[STORE_DIGEST_BYTES]);

#endif /* RV_RAFT_RAFTFSM_H */
