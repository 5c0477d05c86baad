/* Store syncs: buffered mode's periodic sync and the sync strict writes
 * wait for, on libuv's thread pool (loop thread otherwise). */
#include "base/clock.h"
#include "raft/replica_int.h"
#include "store/store.h"

#include <pthread.h>

/* ---- Syncs ---------------------------------------------------------------
 * The store sync behind buffered mode (every sync_ms) and strict writes
 * (before they are answered) fdatasyncs the vlog and LMDB: milliseconds on
 * an idle disk, hundreds of them on a busy one. On the loop thread it held
 * up everything raft does there (heartbeats, votes, replies), so it runs on
 * libuv's thread pool: store_sync_begin here, store_sync_run there,
 * store_sync_end back here (store.h), one job at a time. Strict writes
 * applied meanwhile wait for the next job, which starts as soon as this
 * one ended. A clean close syncs on the loop (replica__close_timer_cb);
 * after uv_run returned, replica__sync_drain waits for a job still running
 * (the loop is stopped without running its callbacks when raft stopped
 * itself). */

static void
replica__sync_work_cb(uv_work_t *w)
{
    struct replica *r = w->data;
    store_sync_run(&r->sync_job);
    pthread_mutex_lock(&r->lock);
    r->sync_work_done = 1;
    pthread_cond_broadcast(&r->sync_cond);
    pthread_mutex_unlock(&r->lock);
}

/* Answer the strict writes that a sync up to synced covers (the list is in
 * index order: entries complete in order). */
static void
replica__sync_finish_waiters(struct replica *r, uint64_t synced)
{
    while (r->sync_waiters.head != NULL &&
           r->sync_waiters.head->index <= synced)
        replica__finish(replica__pop(&r->sync_waiters), RV_OK, NULL);
}

static void
replica__sync_after_cb(uv_work_t *w, int status)
{
    struct replica *r = w->data;
    char errmsg[RV_ERRMSG_SIZE];
    (void)status; /* Only uv_cancel gives an error; it is never called. */
    pthread_mutex_lock(&r->lock);
    r->sync_work_done = 0;
    pthread_mutex_unlock(&r->lock);
    r->is_sync_running = 0;
    int rc = store_sync_end(&r->sync_job, errmsg);
    replica__hist_add(&r->sync_time,
                      (rv_clock_mono_ns() - r->sync_begin_ns) / 1000u);
    r->n_syncs++;
    if (rc != RV_OK) {
        replica__finish_all(&r->sync_waiters, RV_EUNKNOWN, errmsg);
        replica__fail(r, RV_EXIT_IO, errmsg);
        return;
    }
    if (r->sync_job.index > r->last_synced)
        r->last_synced = r->sync_job.index;
    replica__sync_finish_waiters(r, r->last_synced);
    if (r->sync_waiters.n > 0)
        replica__sync_start(r);
}

void
replica__sync_start(struct replica *r)
{
    char errmsg[RV_ERRMSG_SIZE];
    if (r->is_sync_running || r->is_closing || r->fsm.is_failed)
        return;
    if (store_applied_index(r->store) == r->last_synced) {
        replica__sync_finish_waiters(r, r->last_synced);
        return;
    }
    if (store_sync_begin(r->store, &r->sync_job, errmsg) != RV_OK) {
        replica__finish_all(&r->sync_waiters, RV_EUNKNOWN, errmsg);
        replica__fail(r, RV_EXIT_IO, errmsg);
        return;
    }
    r->is_sync_running = 1;
    r->sync_begin_ns = rv_clock_mono_ns();
    r->sync_work.data = r;
    if (uv_queue_work(&r->loop, &r->sync_work, replica__sync_work_cb,
                      replica__sync_after_cb) != 0) {
        /* Only for a missing callback; never: sync here then. */
        replica__sync_work_cb(&r->sync_work);
        replica__sync_after_cb(&r->sync_work, 0);
    }
}

void
replica__sync_cb(uv_timer_t *t)
{
    replica__sync_start(t->data);
}

void
replica__sync_drain(struct replica *r)
{
    char errmsg[RV_ERRMSG_SIZE];
    if (!r->is_sync_running)
        return;
    pthread_mutex_lock(&r->lock);
    while (!r->sync_work_done)
        pthread_cond_wait(&r->sync_cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
    r->is_sync_running = 0;
    (void)store_sync_end(&r->sync_job, errmsg);
}
