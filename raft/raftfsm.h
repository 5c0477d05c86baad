/* The raft state machine: committed entries go to store_apply, snapshots
 * are small descriptors of the store (applied index, digest, where to fetch
 * the archive, its sealed segments), never the data
 * (shared/research/raft-0.15.md §5).
 *
 * Rules kept here (raft-0.15.md §9): apply is idempotent by index (entries
 * at or below the store's applied index are skipped, as raft replays its
 * log on every start); business errors go into the result, never into the
 * return code, which would stall raft; a local fault (I/O, disk full,
 * corruption) returns RAFT_IOERR and marks the FSM failed so the node stops.
 *
 * Catch-up: restoring a descriptor ahead of the local store fetches the
 * missing vlog records from the descriptor's sources (its taker first, then
 * the other members it knew) through the fetch function, a bounded chunk at
 * a time, materialises them and checks the digest at the descriptor's
 * index. A digest that differs is divergence: the FSM fails (fail-stop).
 *
 * Loop thread only: raft calls these on the thread that runs its loop. */
#ifndef RV_RAFT_RAFTFSM_H
#define RV_RAFT_RAFTFSM_H

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "proto/contract.h"
#include "store/store.h"
#include "store/vlog.h"

#include <raft.h>

#define RAFTFSM_SNAPSHOT_MAGIC 0x5256534eu /* "RVSN" */
/* The descriptor's format version; a greater one is refused (RV_EVERSION). */
#define RAFTFSM_SNAPSHOT_VERSION 2
#define RAFTFSM_MAX_SOURCES      16
#define RAFTFSM_MAX_SEGMENTS     4096 /* The newest ones, if there are more. */
#define RAFTFSM_FETCH_BYTES      CONTRACT_MAX_FETCH_BYTES /* Per round trip. */

/* What apply hands to the leader's raft_apply callback through *result.
 * Owned by the FSM and valid until the next apply: the callback runs in the
 * same call stack and must copy what it keeps. */
struct raftfsm_result {
    uint64_t index;
    struct store_result *results; /* One per command of the entry. */
    size_t n_results;
};

/* Append to out the records with index in [from, to] of the vlog at addr,
 * at most about RAFTFSM_FETCH_BYTES of them, in the format of
 * store_fetch_records. RV_OK with nothing appended means the source has
 * none of them. Blocking, bounded in time by the implementation. */
typedef int (*raftfsm_fetch_fn)(void *data, const char *addr, uint64_t from,
                                uint64_t to, struct rv_buf *out, char *errmsg);

/* Append to out the bytes of the compaction image of the vlog at addr from
 * offset (at most about RAFTFSM_FETCH_BYTES); *image_index is that
 * vlog's checkpoint (0: never compacted, then nothing is appended) and
 * *total the image's size. Blocking, bounded in time. */
typedef int (*raftfsm_image_fn)(void *data, const char *addr, uint64_t offset,
                                struct rv_buf *out, uint64_t *image_index,
                                uint64_t *total, char *errmsg);

struct raftfsm_descriptor {
    uint64_t index;
    uint8_t digest[STORE_DIGEST_BYTES];
    size_t n_sources;
    char sources[RAFTFSM_MAX_SOURCES][CONTRACT_MAX_ADDR_BYTES + 1];
    size_t n_segments;
    struct vlog_segment_info *segments; /* Owned. */
};

struct raftfsm {
    struct raft_fsm fsm;        /* Give &fsm to raft; fsm.data is this. */
    struct raft *raft;          /* Set with raftfsm_attach(). Borrowed. */
    struct store *store;        /* Borrowed. */
    const struct rv_log *log;   /* Borrowed; may be NULL. */
    struct raftfsm_result last; /* Owned. */
    int is_failed;              /* A local fault happened: stop the node. */
    int fail_rc; /* Its RV_E* code (RV_EVERSION: a newer format). */
    /* Set by the owner before raft_start (all optional). */
    const char *self_addr; /* This node's fetch address, first source. */
    raftfsm_fetch_fn fetch;
    raftfsm_image_fn fetch_image; /* NULL: no catch-up across compaction. */
    void *fetch_data;
    uint64_t snapshot_bytes; /* Snapshot once the vlog grew by this. */
    unsigned catch_up_secs;  /* Give up a catch-up after this (default 60). */
    /* Figures. */
    uint64_t vlog_bytes_at_snapshot;
    uint64_t compact_at_snapshot; /* The checkpoint at the last snapshot. */
    uint64_t n_snapshots, n_restores_kept, n_catch_ups, n_fetched_records;
    /* The longest piece of work done on the loop thread (apply, snapshot,
     * restore, and the owner's own through raftfsm_note_busy) since the
     * owner last cleared busy_us: what it was and how long, in µs. */
    uint64_t busy_us;
    const char *busy_what;
    char errmsg[RV_ERRMSG_SIZE];
};

/* Record that what (a static string) ran on the loop thread from t0_ns
 * (rv_clock_mono_ns) until now, if it is the longest since busy_us was
 * cleared. Loop thread. */
void raftfsm_note_busy(struct raftfsm *f, const char *what, uint64_t t0_ns);

/* Prepare f over store s (caller-allocated; no failure). */
void raftfsm_init(struct raftfsm *f, struct store *s, const struct rv_log *log);

/* Tell the FSM its raft instance, once raft_init has run: apply derives the
 * entry's index from raft_last_applied(). */
void raftfsm_attach(struct raftfsm *f, struct raft *r);

void raftfsm_close(struct raftfsm *f);

/* Encode d (all integers big-endian: magic, version 2, applied index,
 * digest, be16 source count, be32 segment count, sources as be16 length +
 * bytes, segments as be32 number, be64 first, be64 last, be64 bytes).
 * Decode checks every length; it returns RV_OK or RV_EMALFORMED, and on
 * RV_OK the caller frees with raftfsm_descriptor_free(). */
void raftfsm_descriptor_encode(const struct raftfsm_descriptor *d,
                               struct rv_buf *out);
int raftfsm_descriptor_decode(const void *buf, size_t len,
                              struct raftfsm_descriptor *d);
void raftfsm_descriptor_free(struct raftfsm_descriptor *d);

/* Bring f's store up to index from the given sources (catch-up without a
 * descriptor: also used by restore). Returns RV_OK, or the last source's
 * error after every source failed for catch_up_secs. */
int raftfsm_catch_up(struct raftfsm *f, uint64_t index,
                     char (*sources)[CONTRACT_MAX_ADDR_BYTES + 1],
                     size_t n_sources, char *errmsg);

#endif /* RV_RAFT_RAFTFSM_H */
