/* The leader's periodic proposals (DESIGN §12): retention sweeps,
 * divergence check points and compactions. Both are commands of the node (no
 * token; the RPC door refuses them from clients), stamped with the leader's
 * clock when proposed; apply decides everything from that stamp and the
 * replicated state. At most one of them is in flight at a time, and none
 * is proposed on an idle cluster: a check needs an entry applied since
 * the last one, a sweep needs a run to trash or purge (store_retention_due,
 * the selection apply runs). Loop thread. */
#include "base/clock.h"
#include "raft/replica_int.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

static void
replica__maint_done(struct replica_op *op)
{
    struct replica *r = op->data;
    int code = op->code != RV_OK    ? op->code
               : op->n_results == 1 ? op->results[0].code
                                    : RV_OK;
    if (code != RV_OK && code != RV_ENOTLEADER)
        rv_logf(r->log, RV_LOG_WARN, "replica", "%s at index %llu: %s",
                r->maint_what, (unsigned long long)op->index,
                op->code != RV_OK    ? op->message
                : op->n_results == 1 ? op->results[0].message
                                     : "");
    else if (code == RV_OK && op->index > 0)
        rv_logf(r->log, RV_LOG_DEBUG, "replica", "%s applied at index %llu",
                r->maint_what, (unsigned long long)op->index);
    replica_op_clean(op);
    r->is_maint_busy = 0;
    /* A sweep does at most STORE_SWEEP_MAX_RUNS: look again at the next
     * tick rather than after a whole interval. */
    if (code == RV_OK && strcmp(r->maint_what, "retention sweep") == 0)
        r->sweep_last_ms = 0;
}

/* Queue cmd (stamped now) as a write of the node's own. */
static void
replica__maint_propose(struct replica *r, Rv__Command *cmd, const char *what)
{
    char errmsg[RV_ERRMSG_SIZE];
    Rv__Command *cmds[1] = {cmd};
    cmd->has_stamped_at_ms = 1;
    cmd->stamped_at_ms = (int64_t)rv_clock_wall_ms();
    rv_buf_reset(&r->maint_packed);
    if (replica_pack_commands(cmds, 1, &r->maint_packed, errmsg) != RV_OK) {
        rv_logf(r->log, RV_LOG_WARN, "replica", "%s: %s", what, errmsg);
        return;
    }
    memset(&r->maint_write, 0, sizeof r->maint_write);
    r->maint_write.kind = REPLICA_OP_WRITE;
    r->maint_write.packed = r->maint_packed.data;
    r->maint_write.packed_len = r->maint_packed.len;
    r->maint_write.n_commands = 1;
    r->maint_write.done = replica__maint_done;
    r->maint_write.data = r;
    snprintf(r->maint_what, sizeof r->maint_what, "%s", what);
    r->is_maint_busy = 1;
    replica__push(&r->writes, &r->maint_write);
    r->pending_bytes += r->maint_packed.len;
}

/* A check point: every check_entries entries or check_interval_ms, if an
 * entry was applied since the last one. */
static int
replica__maint_check(struct replica *r, uint64_t now_ms)
{
    uint64_t applied = store_applied_index(r->store);
    if (r->check_interval_ms == 0 || applied <= r->check_last_index)
        return 0;
    if (applied - r->check_last_index < r->check_entries &&
        now_ms - r->check_last_ms < r->check_interval_ms)
        return 0;
    struct store_check_info ci;
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__Check ck = RV__CHECK__INIT;
    store_check_info(r->store, &ci);
    if (ci.last_index > 0) {
        ck.has_hash_index = 1;
        ck.hash_index = ci.last_index;
        ck.has_hash = 1;
        ck.hash.len = STORE_DIGEST_BYTES;
        ck.hash.data = r->maint_hash;
        memcpy(r->maint_hash, ci.last_hash, STORE_DIGEST_BYTES);
    }
    cmd.body_case = RV__COMMAND__BODY_CHECK;
    cmd.check = &ck;
    r->check_last_ms = now_ms;
    r->check_last_index = applied + 1; /* The check entry itself. */
    replica__maint_propose(r, &cmd, "check");
    return 1;
}

/* A retention sweep every retention_interval_ms when one is due. */
static void
replica__maint_sweep(struct replica *r, uint64_t now_ms)
{
    char errmsg[RV_ERRMSG_SIZE];
    struct store_read *rd;
    int is_due = 0;
    if (r->retention_interval_ms == 0 ||
        (r->sweep_last_ms != 0 &&
         now_ms - r->sweep_last_ms < r->retention_interval_ms))
        return;
    r->sweep_last_ms = now_ms;
    if (store_read_begin(r->store, STORE_EVERY_TEAM, &rd, errmsg) != RV_OK)
        return;
    int rc =
        store_retention_due(rd, (int64_t)rv_clock_wall_ms(), &is_due, errmsg);
    store_read_end(rd);
    if (rc != RV_OK) {
        rv_logf(r->log, RV_LOG_WARN, "replica", "retention: %s", errmsg);
        return;
    }
    if (!is_due)
        return;
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RetentionSweep sw = RV__RETENTION_SWEEP__INIT;
    cmd.body_case = RV__COMMAND__BODY_RETENTION_SWEEP;
    cmd.retention_sweep = &sw;
    replica__maint_propose(r, &cmd, "retention sweep");
}

/* A compaction every retention interval at most, once the bytes purged
 * since the last one reach compact_min_bytes. */
static int
replica__maint_compact(struct replica *r, uint64_t now_ms)
{
    char errmsg[RV_ERRMSG_SIZE];
    struct store_read *rd;
    uint64_t reclaim = 0;
    if (r->compact_min_bytes == 0 || r->retention_interval_ms == 0 ||
        now_ms - r->compact_last_ms < r->retention_interval_ms)
        return 0;
    r->compact_last_ms = now_ms;
    if (store_read_begin(r->store, STORE_EVERY_TEAM, &rd, errmsg) != RV_OK)
        return 0;
    store_reclaimable_bytes(rd, &reclaim);
    store_read_end(rd);
    if (reclaim < r->compact_min_bytes)
        return 0;
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__Compact c = RV__COMPACT__INIT;
    cmd.body_case = RV__COMMAND__BODY_COMPACT;
    cmd.compact = &c;
    rv_logf(r->log, RV_LOG_INFO, "replica",
            "proposing a compaction: %llu bytes purged since the last",
            (unsigned long long)reclaim);
    replica__maint_propose(r, &cmd, "compaction");
    return 1;
}

void
replica__maint_tick(struct replica *r)
{
    uint64_t now_ms = rv_clock_mono_ns() / 1000000u;
    if (!r->is_leader || !r->is_serving) {
        /* A new leader counts its intervals from when it starts serving. */
        r->check_last_ms = now_ms;
        r->sweep_last_ms = now_ms;
        r->compact_last_ms = now_ms;
        r->check_last_index = store_applied_index(r->store);
        return;
    }
    if (r->is_stopping || r->is_closing || r->is_maint_busy)
        return;
    if (r->check_last_ms == 0) {
        /* Elected before this tick ever ran as a follower: the intervals
         * start now too (no check point the moment a node starts). */
        r->check_last_ms = now_ms;
        r->compact_last_ms = now_ms;
        r->check_last_index = store_applied_index(r->store);
        return;
    }
    if (!replica__maint_check(r, now_ms) && !replica__maint_compact(r, now_ms))
        replica__maint_sweep(r, now_ms);
}
