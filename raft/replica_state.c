/* What the replica publishes to other threads (replica_info, the
 * refusals, replica_wait_applied), the data disk's free space, and the
 * loop-lag probe. The loop thread writes, under r->lock; every other
 * thread reads a copy. */
#include "base/clock.h"
#include "raft/replica_int.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

/* ---- Publishing state ---------------------------------------------------- */

void
replica__publish(struct replica *r)
{
    struct replica_info in;
    memset(&in, 0, sizeof in);
    in.id = r->id;
    in.state = r->is_raft_started ? raft_state(&r->raft) : RAFT_UNAVAILABLE;
    in.is_serving = r->is_serving;
    if (r->is_raft_started) {
        const char *addr;
        raft_id leader;
        raft_leader(&r->raft, &leader, &addr);
        in.leader_id = leader;
        in.term = r->raft.current_term;
        in.last_index = raft_last_index(&r->raft);
        in.commit_index = r->raft.commit_index;
        const struct raft_configuration *c = &r->raft.configuration;
        for (unsigned i = 0; i < c->n && i < REPLICA_MAX_PEERS; i++) {
            in.members[i].id = c->servers[i].id;
            snprintf(in.members[i].raft_addr, sizeof in.members[i].raft_addr,
                     "%s", c->servers[i].address);
            in.members[i].role = c->servers[i].role;
            in.n_members++;
        }
    }
    in.applied_index = store_applied_index(r->store);
    in.durability = r->durability;
    in.n_entries = r->n_entries;
    in.n_commands = r->n_commands;
    in.n_barriers = r->n_barriers;
    in.n_syncs = r->n_syncs;
    in.n_snapshots = r->fsm.n_snapshots;
    in.n_catch_ups = r->fsm.n_catch_ups;
    in.n_fetched_records = r->fsm.n_fetched_records;
    struct store_check_info ci;
    store_check_info(r->store, &ci);
    in.is_diverged = ci.is_diverged;
    in.diverged_index = ci.diverged_index;
    in.n_checks_hashed = ci.n_hashed;
    in.n_checks_compared = ci.n_compared;
    in.disk_free_bytes = r->disk_free_bytes;
    in.disk_min_free_bytes = r->min_free_bytes;
    in.is_disk_low = r->is_disk_low;
    in.loop_lag = r->loop_lag;
    in.sync_time = r->sync_time;
    pthread_mutex_lock(&r->lock);
    int is_advanced = in.applied_index != r->info.applied_index;
    r->info = in;
    if (is_advanced)
        pthread_cond_broadcast(&r->applied_cond);
    pthread_mutex_unlock(&r->lock);
}

void
replica_info(struct replica *r, struct replica_info *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->info;
    pthread_mutex_unlock(&r->lock);
}

int
replica_write_refusal(struct replica *r, char *errmsg)
{
    pthread_mutex_lock(&r->lock);
    int is_low = r->info.is_disk_low;
    uint64_t free_b = r->info.disk_free_bytes;
    uint64_t min_b = r->info.disk_min_free_bytes;
    pthread_mutex_unlock(&r->lock);
    if (!is_low)
        return RV_OK;
    rv_errmsg_printf(errmsg,
                     "node %llu has %llu bytes free on its data disk, under "
                     "its threshold of %llu: writes are refused until space "
                     "is freed",
                     (unsigned long long)r->id, (unsigned long long)free_b,
                     (unsigned long long)min_b);
    return RV_ENOSPACE;
}

int
replica_read_refusal(struct replica *r, char *errmsg)
{
    pthread_mutex_lock(&r->lock);
    int is_diverged = r->info.is_diverged;
    uint64_t at = r->info.diverged_index;
    pthread_mutex_unlock(&r->lock);
    if (!is_diverged)
        return RV_OK;
    rv_errmsg_printf(errmsg,
                     "node %llu diverged from the leader (index hash at %llu "
                     "differs): it refuses reads until repaired",
                     (unsigned long long)r->id, (unsigned long long)at);
    return RV_EUNAVAILABLE;
}

/* Free space on the data dir, at most once a second (tick timer). */
void
replica__disk_tick(struct replica *r)
{
    struct statvfs sv;
    uint64_t now = rv_clock_mono_ms();
    if (r->disk_checked_ms != 0 && now - r->disk_checked_ms < 1000)
        return;
    r->disk_checked_ms = now;
    if (statvfs(r->data_dir, &sv) != 0)
        return;
    r->disk_free_bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    int is_low =
        r->min_free_bytes > 0 && r->disk_free_bytes < r->min_free_bytes;
    if (is_low != r->is_disk_low)
        rv_logf(r->log, is_low ? RV_LOG_ERROR : RV_LOG_INFO, "replica",
                is_low ? "disk space low: %llu bytes free on %s, under the "
                         "threshold of %llu: refusing new writes"
                       : "disk space back: %llu bytes free on %s (threshold "
                         "%llu): accepting writes",
                (unsigned long long)r->disk_free_bytes, r->data_dir,
                (unsigned long long)r->min_free_bytes);
    r->is_disk_low = is_low;
}

int
replica_wait_applied(struct replica *r, uint64_t index, unsigned timeout_ms)
{
    struct timespec until;
    rv_deadline_mono(&until, timeout_ms);
    int rc = RV_OK;
    pthread_mutex_lock(&r->lock);
    while (r->info.applied_index < index) {
        if (r->is_loop_done) {
            rc = RV_EUNAVAILABLE;
            break;
        }
        if (pthread_cond_timedwait(&r->applied_cond, &r->lock, &until) ==
            ETIMEDOUT) {
            rc = r->info.applied_index >= index ? RV_OK : RV_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

struct store *
replica_store(struct replica *r)
{
    return r->store;
}

/* ---- The loop-lag probe ----------------------------------------------------
 */

const uint64_t replica_lag_bucket_us[REPLICA_LAG_BUCKETS] = {
    1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};

void
replica__hist_add(struct replica_hist *h, uint64_t us)
{
    size_t i = 0;
    while (i < REPLICA_LAG_BUCKETS && us > replica_lag_bucket_us[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

/* Every REPLICA_LAG_PROBE_MS: how late this timer fired is how long the
 * loop could not answer raft's messages and ticks (a heartbeat or vote
 * waits as long). A long stall is logged with the longest work the loop
 * did since the last probe (raftfsm_note_busy), the first 64 per start
 * and then every new maximum. */
void
replica__lag_cb(uv_timer_t *t)
{
    struct replica *r = t->data;
    uint64_t now = rv_clock_mono_ns();
    if (r->lag_last_ns == 0) { /* raft_start ran before the loop did. */
        r->lag_last_ns = now;
        r->fsm.busy_us = 0;
        r->fsm.busy_what = NULL;
        return;
    }
    uint64_t due = r->lag_last_ns + (uint64_t)REPLICA_LAG_PROBE_MS * 1000000u;
    uint64_t lag_us = now > due ? (now - due) / 1000u : 0;
    r->lag_last_ns = now;
    int is_new_max = lag_us > r->loop_lag.max_us;
    replica__hist_add(&r->loop_lag, lag_us);
    if (lag_us >= (uint64_t)REPLICA_LAG_LOG_MS * 1000u &&
        (r->n_stalls_logged < 64 || is_new_max)) {
        r->n_stalls_logged++;
        rv_logf(r->log, RV_LOG_WARN, "replica",
                "loop stalled %llu ms (longest work since the last probe: "
                "%s %llu ms)",
                (unsigned long long)(lag_us / 1000u),
                r->fsm.busy_what != NULL ? r->fsm.busy_what : "none",
                (unsigned long long)(r->fsm.busy_us / 1000u));
    }
    r->fsm.busy_us = 0;
    r->fsm.busy_what = NULL;
}
