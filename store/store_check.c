/* The divergence check (DESIGN §12): at every check entry each replica
 * hashes its whole index as of that entry, and compares its hashes with
 * the leader's, which later check entries carry.
 *
 * The running digest covers every write apply makes, so it tells whether
 * two replicas applied the same writes; it does not see a byte of the
 * index changed afterwards (a bad disk, a bad edit). The check hashes the
 * content itself: every key and value of every table (XXH3-128, tables in
 * enum order, keys in LMDB order), but the local meta key "diverged".
 * The hash runs on a thread of its own over an LMDB read transaction begun
 * right after the check entry committed (MDB_NOTLS lets another thread use
 * it), so apply never waits for it; while one hash runs, a later check
 * point on this node is skipped (and logged).
 *
 * Comparison: a check entry carries (hash_index, hash), the leader's hash
 * at an earlier check point; each replica compares it with its own hash
 * at that index as soon as both are known (at apply, or when its own hash
 * finishes). A difference marks the node diverged: it is logged with the
 * index, kept in meta "diverged" (not covered by the digest; written by
 * the next check entry's apply), and stays until the index is rebuilt or
 * the node is wiped and rejoins. */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
store__hex(const uint8_t *h, char *out)
{
    for (int i = 0; i < STORE_DIGEST_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* The ring slot of index (creating it, evicting the oldest). Lock held. */
static struct store__check_slot *
store__check_slot(struct store__check *c, uint64_t index, int is_create)
{
    struct store__check_slot *oldest = &c->ring[0];
    for (int i = 0; i < STORE_CHECK_RING; i++) {
        if (c->ring[i].index == index && index != 0)
            return &c->ring[i];
        if (c->ring[i].index < oldest->index)
            oldest = &c->ring[i];
    }
    if (!is_create)
        return NULL;
    memset(oldest, 0, sizeof *oldest);
    oldest->index = index;
    return oldest;
}

/* Compare a slot that has both hashes. Lock held. */
static void
store__check_compare(struct store *s, struct store__check_slot *sl)
{
    if (!sl->has_local || !sl->has_expected || sl->is_compared)
        return;
    sl->is_compared = 1;
    s->chk.n_compared++;
    if (memcmp(sl->local, sl->expected, STORE_DIGEST_BYTES) == 0)
        return;
    char a[2 * STORE_DIGEST_BYTES + 1], b[2 * STORE_DIGEST_BYTES + 1];
    store__hex(sl->local, a);
    store__hex(sl->expected, b);
    rv_logf(s->log, RV_LOG_ERROR, "store",
            "replica diverged: the index hash at index %llu is %s here and "
            "%s on the leader; reads are refused until the index is rebuilt "
            "(runvault rebuild-index) or the node is wiped and rejoins",
            (unsigned long long)sl->index, a, b);
    if (!s->chk.is_diverged) {
        s->chk.is_diverged = 1;
        s->chk.diverged_index = sl->index;
    }
}

int
store__content_hash(MDB_txn *txn, const struct store *s,
                    uint8_t out[STORE_DIGEST_BYTES], char *errmsg)
{
    XXH3_state_t *h = XXH3_createState();
    if (h == NULL)
        return RV_ENOMEM;
    XXH3_128bits_reset(h);
    int code = RV_OK;
    for (int db = 0; db < STORE_DB_COUNT && code == RV_OK; db++) {
        MDB_cursor *cur;
        MDB_val k, v;
        int rc = mdb_cursor_open(txn, s->dbi[db], &cur);
        if (rc != 0) {
            code = store__err_mdb(rc, "mdb_cursor_open", errmsg);
            break;
        }
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (db == STORE_DB_META && k.mv_size == 8 &&
                memcmp(k.mv_data, "diverged", 8) == 0)
                continue;
            uint8_t hdr[9];
            hdr[0] = (uint8_t)db;
            rv_put_be32(hdr + 1, (uint32_t)k.mv_size);
            rv_put_be32(hdr + 5, (uint32_t)v.mv_size);
            XXH3_128bits_update(h, hdr, sizeof hdr);
            XXH3_128bits_update(h, k.mv_data, k.mv_size);
            XXH3_128bits_update(h, v.mv_data, v.mv_size);
        }
        mdb_cursor_close(cur);
        if (rc != MDB_NOTFOUND)
            code = store__err_mdb(rc, "cursor", errmsg);
    }
    if (code == RV_OK) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h));
        memcpy(out, c.digest, STORE_DIGEST_BYTES);
    }
    XXH3_freeState(h);
    return code;
}

static void *
store__check_thread(void *arg)
{
    struct store *s = arg;
    struct store__check *c = &s->chk;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (c->job_txn == NULL && !c->is_stopping)
            pthread_cond_wait(&c->cond, &c->lock);
        if (c->is_stopping)
            break;
        MDB_txn *txn = c->job_txn;
        uint64_t index = c->job_index;
        pthread_mutex_unlock(&c->lock);
        uint8_t hash[STORE_DIGEST_BYTES];
        char errmsg[RV_ERRMSG_SIZE] = "";
        int rc = store__content_hash(txn, s, hash, errmsg);
        mdb_txn_abort(txn);
        pthread_mutex_lock(&c->lock);
        c->job_txn = NULL;
        if (rc != RV_OK) {
            rv_logf(s->log, RV_LOG_WARN, "store",
                    "check at index %llu: hashing the index failed: %s",
                    (unsigned long long)index, errmsg);
            continue;
        }
        struct store__check_slot *sl = store__check_slot(c, index, 1);
        memcpy(sl->local, hash, STORE_DIGEST_BYTES);
        sl->has_local = 1;
        c->n_hashed++;
        if (index > c->last_index) {
            c->last_index = index;
            memcpy(c->last_hash, hash, STORE_DIGEST_BYTES);
        }
        store__check_compare(s, sl);
    }
    if (c->job_txn != NULL)
        mdb_txn_abort(c->job_txn);
    c->job_txn = NULL;
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int
store_check_start(struct store *s, char *errmsg)
{
    if (s->chk.is_started)
        return RV_OK;
    if (pthread_create(&s->chk.thread, NULL, store__check_thread, s) != 0) {
        rv_errmsg_printf(errmsg, "cannot start the check thread");
        return RV_ENOMEM;
    }
    s->chk.is_started = 1;
    return RV_OK;
}

void
store__check_stop(struct store *s)
{
    if (!s->chk.is_started)
        return;
    pthread_mutex_lock(&s->chk.lock);
    s->chk.is_stopping = 1;
    pthread_cond_signal(&s->chk.cond);
    pthread_mutex_unlock(&s->chk.lock);
    pthread_join(s->chk.thread, NULL);
    s->chk.is_started = 0;
}

int
store__check_apply(struct store_wctx *w, const Rv__Check *ck)
{
    struct store *s = w->s;
    struct store__check *c = &s->chk;
    if (ck->has_hash_index &&
        (!ck->has_hash || ck->hash.len != STORE_DIGEST_BYTES ||
         ck->hash_index >= w->index)) {
        rv_errmsg_printf(w->errmsg,
                         "check: a hash of %d bytes at an earlier "
                         "index",
                         STORE_DIGEST_BYTES);
        return RV_EINVAL;
    }
    s->check_pending = w->index;
    pthread_mutex_lock(&c->lock);
    if (ck->has_hash_index && ck->hash_index > 0) {
        struct store__check_slot *sl = store__check_slot(c, ck->hash_index, 0);
        if (sl != NULL) {
            memcpy(sl->expected, ck->hash.data, STORE_DIGEST_BYTES);
            sl->has_expected = 1;
            store__check_compare(s, sl);
        }
    }
    uint64_t diverged = c->is_diverged ? c->diverged_index : 0;
    pthread_mutex_unlock(&c->lock);
    if (diverged != 0) {
        /* Local state, outside the digest (a plain put). */
        uint8_t v[8];
        MDB_val key = {8, "diverged"}, val = {8, v};
        rv_put_be64(v, diverged);
        int rc = mdb_put(w->txn, s->dbi[STORE_DB_META], &key, &val, 0);
        if (rc != 0)
            return store__err_mdb(rc, "meta", w->errmsg);
    }
    return RV_OK;
}

void
store__check_after_commit(struct store *s)
{
    uint64_t index = s->check_pending;
    s->check_pending = 0;
    if (index == 0 || !s->chk.is_started)
        return;
    MDB_txn *txn;
    pthread_mutex_lock(&s->chk.lock);
    int is_busy = s->chk.job_txn != NULL;
    uint64_t busy_index = s->chk.job_index;
    if (!is_busy && mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
        s->chk.job_txn = txn;
        s->chk.job_index = index;
        pthread_cond_signal(&s->chk.cond);
    }
    pthread_mutex_unlock(&s->chk.lock);
    if (is_busy)
        rv_logf(s->log, RV_LOG_INFO, "store",
                "check at index %llu skipped on this node: the hash of index "
                "%llu is still running",
                (unsigned long long)index, (unsigned long long)busy_index);
}

void
store__check_load(struct store *s, MDB_txn *txn)
{
    MDB_val v;
    if (store__get(txn, s->dbi[STORE_DB_META], "diverged", 8, &v, NULL) ==
            RV_OK &&
        v.mv_size == 8) {
        s->chk.is_diverged = 1;
        s->chk.diverged_index = rv_get_be64(v.mv_data);
        rv_logf(s->log, RV_LOG_ERROR, "store",
                "this replica diverged from the leader at index %llu (found "
                "by a check before this start): reads are refused until the "
                "index is rebuilt or the node is wiped and rejoins",
                (unsigned long long)s->chk.diverged_index);
    }
}

void
store_check_info(struct store *s, struct store_check_info *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->chk.lock);
    out->is_diverged = s->chk.is_diverged;
    out->diverged_index = s->chk.diverged_index;
    out->last_index = s->chk.last_index;
    memcpy(out->last_hash, s->chk.last_hash, STORE_DIGEST_BYTES);
    out->n_hashed = s->chk.n_hashed;
    out->n_compared = s->chk.n_compared;
    pthread_mutex_unlock(&s->chk.lock);
}
