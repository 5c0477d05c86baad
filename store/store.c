/* Store lifecycle: open and recovery, sync, digest, rebuild and verify,
 * catch-up records, read transactions, and the hashed writes every apply
 * goes through. store_int.h maps the other files. */
#include "base/fsdir.h"
#include "store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const store_db_names[STORE_DB_COUNT] = {
    "meta",   "runid", "run",     "param",   "tag",     "series", "chunk",
    "open",   "logs",  "art",     "artpart", "blob",    "client", "team",
    "token",  "ixcr",  "ixscope", "ixstat",  "ixparam", "ixtag",  "ixpv",
    "cnt",    "node",  "tokid",   "audit",   "ixmv",    "ixname", "ixend",
    "retain", "trash", "mlx"};

int
store__err_mdb(int rc, const char *what, char *errmsg)
{
    rv_errmsg_printf(errmsg, "%s: %s", what, mdb_strerror(rc));
    switch (rc) {
    case MDB_NOTFOUND:
        return RV_ENOTFOUND;
    case MDB_KEYEXIST:
        return RV_EEXIST;
    case MDB_MAP_FULL:
    case ENOSPC:
        return RV_ENOSPACE;
    case ENOMEM:
        return RV_ENOMEM;
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_PAGE_NOTFOUND:
        return RV_ECORRUPT;
    default:
        return RV_EIO;
    }
}

int
store__dbs_open(MDB_txn *txn, MDB_dbi *dbi, unsigned flags, char *errmsg)
{
    for (int i = 0; i < STORE_DB_COUNT; i++) {
        int rc = mdb_dbi_open(txn, store_db_names[i], flags, &dbi[i]);
        if (rc != 0)
            return store__err_mdb(rc, store_db_names[i], errmsg);
    }
    return RV_OK;
}

int
store__get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kn, MDB_val *v,
           char *errmsg)
{
    MDB_val key = {kn, (void *)k};
    int rc = mdb_get(txn, dbi, &key, v);
    if (rc == MDB_NOTFOUND)
        return RV_ENOTFOUND;
    if (rc != 0)
        return store__err_mdb(rc, "mdb_get", errmsg);
    return RV_OK;
}

static void
store__hash_op(struct store_wctx *w, uint8_t op, enum store_db db,
               const void *k, size_t kn, const void *v, size_t vn)
{
    /* One update of header, key and value when they fit (the common
     * small write): the same bytes, so the same digest, at a third of the
     * calls. */
    uint8_t buf[256];
    uint8_t *hdr = buf;
    hdr[0] = op;
    hdr[1] = (uint8_t)db;
    rv_put_be32(hdr + 2, (uint32_t)kn);
    rv_put_be32(hdr + 6, (uint32_t)vn);
    if (10 + kn + vn <= sizeof buf) {
        memcpy(buf + 10, k, kn);
        if (vn > 0)
            memcpy(buf + 10 + kn, v, vn);
        XXH3_128bits_update(w->hash, buf, 10 + kn + vn);
        return;
    }
    XXH3_128bits_update(w->hash, hdr, 10);
    XXH3_128bits_update(w->hash, k, kn);
    if (vn > 0)
        XXH3_128bits_update(w->hash, v, vn);
}

int
store__put(struct store_wctx *w, enum store_db db, const void *k, size_t kn,
           const void *v, size_t vn)
{
    MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
    int rc = mdb_put(w->txn, w->s->dbi[db], &key, &val, 0);
    if (rc != 0)
        return store__err_mdb(rc, store_db_names[db], w->errmsg);
    store__hash_op(w, 'P', db, k, kn, v, vn);
    return RV_OK;
}

int
store__del(struct store_wctx *w, enum store_db db, const void *k, size_t kn)
{
    MDB_val key = {kn, (void *)k};
    int rc = mdb_del(w->txn, w->s->dbi[db], &key, NULL);
    if (rc == MDB_NOTFOUND)
        return RV_OK;
    if (rc != 0)
        return store__err_mdb(rc, store_db_names[db], w->errmsg);
    store__hash_op(w, 'D', db, k, kn, NULL, 0);
    return RV_OK;
}

int
store__cur_put(struct store_wctx *w, MDB_cursor *cur, enum store_db db,
               const void *k, size_t kn, const void *v, size_t vn)
{
    MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
    int rc = mdb_cursor_put(cur, &key, &val, 0);
    if (rc != 0)
        return store__err_mdb(rc, store_db_names[db], w->errmsg);
    store__hash_op(w, 'P', db, k, kn, v, vn);
    return RV_OK;
}

int
store__cur_del(struct store_wctx *w, MDB_cursor *cur, enum store_db db,
               const void *k, size_t kn)
{
    MDB_val key = {kn, (void *)k}, val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_SET);
    if (rc == MDB_NOTFOUND)
        return RV_OK;
    if (rc == 0)
        rc = mdb_cursor_del(cur, 0);
    if (rc != 0)
        return store__err_mdb(rc, store_db_names[db], w->errmsg);
    store__hash_op(w, 'D', db, k, kn, NULL, 0);
    return RV_OK;
}

/* Delete every key of db that starts with prefix[0, n), calling each_cb
 * (may be NULL) on each value first. */
int
store__del_prefix(struct store_wctx *w, enum store_db db, const uint8_t *prefix,
                  size_t n,
                  int (*each_cb)(struct store_wctx *w, const MDB_val *k,
                                 const MDB_val *v, void *data),
                  void *data)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(w->txn, w->s->dbi[db], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_cursor_open", w->errmsg);
    for (;;) {
        MDB_val k = {n, (void *)prefix}, v;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || k.mv_size < n ||
            memcmp(k.mv_data, prefix, n) != 0) {
            rc = RV_OK;
            break;
        }
        if (rc != 0) {
            rc = store__err_mdb(rc, "cursor", w->errmsg);
            break;
        }
        uint8_t key[512];
        if (k.mv_size > sizeof key) {
            rc = RV_ECORRUPT;
            break;
        }
        size_t kn = k.mv_size;
        memcpy(key, k.mv_data, kn);
        if (each_cb != NULL && (rc = each_cb(w, &k, &v, data)) != RV_OK)
            break;
        if ((rc = store__del(w, db, key, kn)) != RV_OK)
            break;
    }
    mdb_cursor_close(cur);
    return rc;
}

int
store__walk(MDB_txn *txn, const struct store *s, enum store_db db,
            int (*each_cb)(const MDB_val *k, const MDB_val *v, void *data),
            void *data, char *errmsg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, s->dbi[db], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_cursor_open", errmsg);
    int code = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && code == RV_OK;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        code = each_cb(&k, &v, data);
    mdb_cursor_close(cur);
    if (code == STORE_WALK_STOP)
        return RV_OK;
    if (code == RV_OK && rc != 0 && rc != MDB_NOTFOUND)
        code = store__err_mdb(rc, "cursor", errmsg);
    return code;
}

int
store__str_check(const char *s, size_t max, int is_required, const char *what,
                 char *errmsg)
{
    size_t n = s ? strlen(s) : 0;
    if (is_required && n == 0) {
        rv_errmsg_printf(errmsg, "%s is required", what);
        return RV_EINVAL;
    }
    if (n > max || !contract_utf8_valid(s ? s : "", n)) {
        rv_errmsg_printf(errmsg, "%s must be UTF-8 of at most %zu bytes", what,
                         max);
        return RV_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20) {
            rv_errmsg_printf(errmsg, "%s contains a control character", what);
            return RV_EINVAL;
        }
    }
    return RV_OK;
}

char *
store__strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ---- Key encoders ------------------------------------------------------ */

size_t
store__pv_key(uint8_t *out, const char *key, size_t kn, const char *val,
              size_t vn, uint64_t run_num)
{
    size_t n = vn < STORE_SORT_STRING_BYTES ? vn : STORE_SORT_STRING_BYTES;
    rv_put_be16(out, (uint16_t)kn);
    memcpy(out + 2, key, kn);
    memcpy(out + 2 + kn, val, n);
    memset(out + 2 + kn + n, 0, STORE_SORT_STRING_BYTES - n);
    rv_put_be64(out + 2 + kn + STORE_SORT_STRING_BYTES, run_num);
    return 2 + kn + STORE_SORT_STRING_BYTES + 8;
}

/* ---- Meta -------------------------------------------------------------- */

static int
store__meta_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out,
                char *errmsg)
{
    MDB_val v;
    int rc = store__get(txn, dbi, name, strlen(name), &v, errmsg);
    if (rc == RV_ENOTFOUND) {
        *out = 0;
        return RV_OK;
    }
    if (rc != RV_OK)
        return rc;
    if (v.mv_size != 8) {
        rv_errmsg_printf(errmsg, "meta %s has %zu bytes", name, v.mv_size);
        return RV_ECORRUPT;
    }
    *out = rv_get_be64(v.mv_data);
    return RV_OK;
}

int
store__meta_load(struct store *s, char *errmsg)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_txn_begin", errmsg);
    MDB_dbi meta = s->dbi[STORE_DB_META];
    rc = store__meta_u64(txn, meta, "applied", &s->applied_index, errmsg);
    if (rc == RV_OK)
        rc = store__meta_u64(txn, meta, "seq.run", &s->next_run_num, errmsg);
    if (rc == RV_OK)
        rc = store__meta_u64(txn, meta, "seq.series", &s->next_series_id,
                             errmsg);
    uint64_t hw = 0;
    if (rc == RV_OK)
        rc = store__meta_u64(txn, meta, "time.hw", &hw, errmsg);
    s->time_hw_ms = (int64_t)hw;
    if (rc == RV_OK) {
        MDB_val v;
        int grc = store__get(txn, meta, "digest", 6, &v, errmsg);
        if (grc == RV_OK && v.mv_size == STORE_DIGEST_BYTES)
            memcpy(s->digest, v.mv_data, STORE_DIGEST_BYTES);
        else if (grc == RV_ENOTFOUND)
            memset(s->digest, 0, STORE_DIGEST_BYTES);
        else
            rc = grc == RV_OK ? RV_ECORRUPT : grc;
    }
    if (rc == RV_OK)
        store__check_load(s, txn);
    mdb_txn_abort(txn);
    return rc;
}

/* ---- Open / close ------------------------------------------------------ */

static int
store__mkdir(const char *path, char *errmsg)
{
    int err = rv_mkdir_durable(path);
    if (err != 0) {
        rv_errmsg_printf(errmsg, "mkdir %s: %s", path, strerror(err));
        return RV_EIO;
    }
    return RV_OK;
}

/* The index's format version lives in a table of its own, "format" (key
 * "index", 4 bytes big-endian), outside the tables the digest, the
 * divergence check and verify cover, so a node that wrote it hashes the same
 * as one that did not (a runvault older than the key). An index without it
 * was written by format 1, the only one before the key: it gets the key. A
 * greater version is refused (RV_EVERSION): a newer runvault wrote it. */
static int
store__format_check(MDB_txn *txn, const char *path, char *errmsg)
{
    MDB_dbi dbi;
    uint8_t want[4];
    int rc = mdb_dbi_open(txn, "format", MDB_CREATE, &dbi);
    if (rc != 0)
        return store__err_mdb(rc, "format", errmsg);
    rv_put_be32(want, STORE_FORMAT);
    MDB_val key = {5, (void *)"index"}, v;
    rc = mdb_get(txn, dbi, &key, &v);
    if (rc == MDB_NOTFOUND) {
        v = (MDB_val){sizeof want, want};
        rc = mdb_put(txn, dbi, &key, &v, 0);
        return rc == 0 ? RV_OK : store__err_mdb(rc, "format", errmsg);
    }
    if (rc != 0)
        return store__err_mdb(rc, "format", errmsg);
    if (v.mv_size != 4) {
        rv_errmsg_printf(errmsg, "%s: format record of %zu bytes", path,
                         v.mv_size);
        return RV_ECORRUPT;
    }
    uint32_t got = rv_get_be32(v.mv_data);
    if (got > STORE_FORMAT) {
        rv_errmsg_printf(errmsg,
                         "%s: index format version %u; this runvault reads "
                         "version %d (a newer runvault wrote it: run that "
                         "version)",
                         path, got, STORE_FORMAT);
        return RV_EVERSION;
    }
    if (got != STORE_FORMAT) {
        rv_errmsg_printf(errmsg, "%s: unknown index format version %u", path,
                         got);
        return RV_ECORRUPT;
    }
    return RV_OK;
}

static int
store__env_open(struct store *s, const char *path, size_t map_bytes,
                char *errmsg)
{
    int rc = mdb_env_create(&s->env);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_env_create", errmsg);
    rc = mdb_env_set_maxdbs(s->env, STORE_DB_COUNT + 3);
    if (rc == 0)
        rc = mdb_env_set_mapsize(s->env, map_bytes);
    if (rc == 0)
        rc = mdb_env_set_maxreaders(s->env, 512);
    /* NOSYNC: durability comes from the raft log and store_sync(); a
     * process crash loses nothing (page cache), and after an OS crash an
     * index ahead of or inconsistent with the vlog is rebuilt. */
    if (rc == 0)
        rc = mdb_env_open(s->env, path,
                          MDB_NOSUBDIR | MDB_NOSYNC | MDB_NOTLS | MDB_NORDAHEAD,
                          0644);
    if (rc != 0) {
        int err = store__err_mdb(rc, path, errmsg);
        mdb_env_close(s->env);
        s->env = NULL;
        return err;
    }
    MDB_txn *txn;
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_txn_begin", errmsg);
    int err = store__dbs_open(txn, s->dbi, MDB_CREATE, errmsg);
    if (err == RV_OK)
        err = store__format_check(txn, path, errmsg);
    if (err != RV_OK) {
        mdb_txn_abort(txn);
        return err;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_txn_commit", errmsg);
    return store__meta_load(s, errmsg);
}

/* Materialise vlog records after applied_index into LMDB. */
/* Materialise the vlog records after s->applied_index up to stop_index,
 * in index order (the vlog's indexes strictly increase); *n_out counts
 * them. The one replay loop: catch-up at open and verify's scratch index. */
static int
store__replay(struct store *s, uint64_t stop_index, uint64_t *n_out,
              char *errmsg)
{
    struct vlog_iter *it;
    *n_out = 0;
    int rc = vlog_iter_open(s->vlog, s->applied_index + 1, &it, errmsg);
    if (rc != RV_OK)
        return rc;
    for (;;) {
        struct vlog_record rec;
        rc = vlog_iter_next(it, &rec, errmsg);
        if (rc != RV_OK || rec.index > stop_index)
            break;
        if (rec.index <= s->applied_index)
            continue;
        Rv__CommandBatch *batch;
        char why[RV_ERRMSG_SIZE] = "";
        rc = store__decode_record(rec.index, rec.payload, rec.len, &batch, why,
                                  errmsg);
        if (rc != RV_OK)
            break;
        struct store_result *results;
        size_t n_results;
        rc = store__materialise(s, rec.index, batch, rec.ptr, why, &results,
                                &n_results, errmsg);
        free(results);
        if (rc != RV_OK)
            break;
        (*n_out)++;
    }
    if (rc == RV_ENOTFOUND)
        rc = RV_OK;
    vlog_iter_close(it);
    return rc;
}

static int
store__catch_up(struct store *s, char *errmsg)
{
    uint64_t n;
    int rc = store__replay(s, UINT64_MAX, &n, errmsg);
    if (n > 0)
        rv_logf(s->log, RV_LOG_INFO, "store",
                "materialised %llu vlog records up to index %llu",
                (unsigned long long)n, (unsigned long long)s->applied_index);
    return rc;
}

int
store__index_path(const char *dir, char *out, size_t size, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    return n > 0 && (size_t)n < size ? RV_OK : RV_EINVAL;
}

/* Remove index.mdb and its lock file. */
static int
store__index_remove(const char *dir, char *errmsg)
{
    char path[4096];
    const char *names[] = {"index.mdb", "index.mdb-lock"};
    for (size_t i = 0; i < 2; i++) {
        if (store__index_path(dir, path, sizeof path, names[i]) != RV_OK)
            return RV_EINVAL;
        if (unlink(path) != 0 && errno != ENOENT) {
            rv_errmsg_printf(errmsg, "unlink %s: %s", path, strerror(errno));
            return RV_EIO;
        }
    }
    return RV_OK;
}

static int
store__open_parts(struct store *s, const struct store_config *cfg,
                  const char *index_name, char *errmsg)
{
    char path[4096];
    size_t map_bytes =
        cfg->map_bytes ? cfg->map_bytes : STORE_DEFAULT_MAP_BYTES;

    if (store__mkdir(cfg->dir, errmsg) != RV_OK)
        return RV_EIO;
    if (store__index_path(cfg->dir, path, sizeof path, "vlog") != RV_OK) {
        rv_errmsg_printf(errmsg, "data dir path too long");
        return RV_EINVAL;
    }
    struct vlog_config vc = {path, cfg->segment_bytes, cfg->log};
    int rc = vlog_open(&s->vlog, &vc, errmsg);
    if (rc != RV_OK) {
        rv_errmsg_wrap(errmsg, "vlog");
        return rc;
    }
    if (store__index_path(cfg->dir, path, sizeof path, index_name) != RV_OK)
        return RV_EINVAL;
    rc = store__env_open(s, path, map_bytes, errmsg);
    if (rc != RV_OK)
        rv_errmsg_wrap(errmsg, "index");
    return rc;
}

static void
store__close_parts(struct store *s)
{
    if (s->env != NULL)
        mdb_env_close(s->env);
    s->env = NULL;
    vlog_close(s->vlog);
    s->vlog = NULL;
}

int
store_rebuilt_on_open(const struct store *s)
{
    return s->is_rebuilt;
}

int
store_open(struct store **out, const struct store_config *cfg, char *errmsg)
{
    struct store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return RV_ENOMEM;
    s->log = cfg->log;
    s->marker_fd = -1;
    pthread_mutex_init(&s->chk.lock, NULL);
    pthread_cond_init(&s->chk.cond, NULL);
    pthread_mutex_init(&s->cmp.lock, NULL);
    pthread_cond_init(&s->cmp.cond, NULL);
    store__boot_id(cfg, s->boot_id);
    s->dir = strdup(cfg->dir);
    if (s->dir == NULL) {
        free(s);
        return RV_ENOMEM;
    }
    int rc = store__open_parts(s, cfg, "index.mdb", errmsg);
    if (rc == RV_OK)
        rc = store__marker_open(s, errmsg);
    char why[320] = "";
    struct vlog_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    if (rc == RV_OK)
        vlog_checkpoint(s->vlog, &ck);
    int is_ahead = rc == RV_OK && s->applied_index > vlog_last_index(s->vlog);
    int is_unsynced = rc == RV_OK && !is_ahead &&
                      store__marker_says_rebuild(s, why, sizeof why);
    int is_behind = rc == RV_OK && !is_ahead && !is_unsynced &&
                    s->applied_index > 0 && s->applied_index < ck.index;
    if (is_behind)
        snprintf(why, sizeof why,
                 "is behind the vlog's compaction checkpoint at %llu (the "
                 "records before it are compacted and cannot be replayed)",
                 (unsigned long long)ck.index);
    if (is_ahead || is_unsynced || is_behind) {
        /* The index got ahead of the archive (an OS crash lost the vlog's
         * unsynced tail but not LMDB's), or it was written after the last
         * sync of an earlier boot, or it is not the one the last sync
         * recorded: rebuild it from the vlog. */
        rv_logf(s->log, RV_LOG_WARN, "store",
                "index at %llu %s: rebuilding it from the vlog (records up to "
                "%llu)",
                (unsigned long long)s->applied_index,
                is_ahead ? "is ahead of the vlog (an OS crash lost the vlog's "
                           "unsynced tail)"
                         : why,
                (unsigned long long)vlog_last_index(s->vlog));
        store__close_parts(s);
        rc = store__index_remove(cfg->dir, errmsg);
        if (rc == RV_OK)
            rc = store__open_parts(s, cfg, "index.mdb", errmsg);
        s->is_rebuilt = 1;
    }
    if (rc == RV_OK && ck.index > 0 && s->applied_index < ck.index) {
        /* An empty index over a compacted vlog starts from the image. */
        char vdir[4096];
        snprintf(vdir, sizeof vdir, "%s/vlog", cfg->dir);
        rv_logf(s->log, RV_LOG_INFO, "store",
                "loading the index image of the compaction checkpoint at "
                "%llu, then replaying the records after it",
                (unsigned long long)ck.index);
        rc = store__image_load(s, vdir, &ck, errmsg);
        s->is_rebuilt = 1;
    }
    if (rc == RV_OK)
        rc = store__catch_up(s, errmsg);
    if (rc == RV_OK && s->is_rebuilt)
        rc = store_sync(s, errmsg);
    /* The entries made at open (index, its lock, the marker, the vlog
     * dir; a rebuilt index) survive a power loss only once the dir is
     * fsynced. */
    int err = rc == RV_OK ? rv_fsync_dir(cfg->dir) : 0;
    if (err != 0) {
        rv_errmsg_printf(errmsg, "fsync %s: %s", cfg->dir, strerror(err));
        rc = RV_EIO;
    }
    if (rc != RV_OK) {
        store_close(s);
        rv_errmsg_wrap(errmsg, "store");
        return rc;
    }
    *out = s;
    return RV_OK;
}

void
store_close(struct store *s)
{
    if (s == NULL)
        return;
    store__check_stop(s);
    store__compact_stop(s);
    store__close_parts(s);
    pthread_mutex_destroy(&s->chk.lock);
    pthread_cond_destroy(&s->chk.cond);
    pthread_mutex_destroy(&s->cmp.lock);
    pthread_cond_destroy(&s->cmp.cond);
    if (s->marker_fd >= 0)
        close(s->marker_fd);
    free(s->scratch_order);
    free(s->dir);
    free(s);
}

int
store_sync(struct store *s, char *errmsg)
{
    /* The vlog first: LMDB must never point past what is durable there. */
    int rc = vlog_sync(s->vlog, errmsg);
    if (rc != RV_OK)
        return rc;
    int mrc = mdb_env_sync(s->env, 1);
    if (mrc != 0)
        return store__err_mdb(mrc, "mdb_env_sync", errmsg);
    return store__marker_put(s, 0, errmsg);
}

int
store_sync_begin(struct store *s, struct store_sync_job *job, char *errmsg)
{
    *job = (struct store_sync_job){.s = s, .index = s->applied_index};
    job->vlog_fd = vlog_sync_fd(s->vlog, errmsg);
    return job->vlog_fd < 0 ? RV_EIO : RV_OK;
}

void
store_sync_run(struct store_sync_job *job)
{
    /* The vlog first: LMDB must never point past what is durable there. */
    if (fdatasync(job->vlog_fd) != 0) {
        job->rc = RV_EIO;
        rv_errmsg_printf(job->errmsg, "fdatasync %s/vlog: %s", job->s->dir,
                         strerror(errno));
        return;
    }
    int mrc = mdb_env_sync(job->s->env, 1);
    if (mrc != 0)
        job->rc = store__err_mdb(mrc, "mdb_env_sync", job->errmsg);
}

int
store_sync_end(struct store_sync_job *job, char *errmsg)
{
    struct store *s = job->s;
    close(job->vlog_fd);
    job->vlog_fd = -1;
    if (job->rc != RV_OK) {
        /* After a failed sync the page cache may have dropped the data
         * (fsyncgate): never retry, stop. */
        vlog_set_failed(s->vlog);
        rv_errmsg_printf(errmsg, "%s", job->errmsg);
        return job->rc;
    }
    if (s->is_dirty && s->applied_index == job->index)
        return store__marker_put(s, 0, errmsg);
    return RV_OK;
}

uint64_t
store_applied_index(const struct store *s)
{
    return s->applied_index;
}

void
store_digest(const struct store *s, uint8_t out[STORE_DIGEST_BYTES])
{
    memcpy(out, s->digest, STORE_DIGEST_BYTES);
}

void
store_digest_hex(const uint8_t d[STORE_DIGEST_BYTES], char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < STORE_DIGEST_BYTES; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * STORE_DIGEST_BYTES] = '\0';
}

/* ---- Read transactions ------------------------------------------------- */

int
store_read_begin(struct store *s, const char *team, struct store_read **out,
                 char *errmsg)
{
    if (team != STORE_EVERY_TEAM && strlen(team) > CONTRACT_MAX_TEAM_BYTES) {
        rv_errmsg_printf(errmsg, "team longer than %d bytes",
                         CONTRACT_MAX_TEAM_BYTES);
        return RV_EINVAL;
    }
    struct store_read *r = calloc(1, sizeof *r);
    if (r == NULL)
        return RV_ENOMEM;
    if (team != STORE_EVERY_TEAM) {
        r->is_scoped = 1;
        snprintf(r->team, sizeof r->team, "%s", team);
    }
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
    if (rc != 0) {
        free(r);
        return store__err_mdb(rc, "mdb_txn_begin", errmsg);
    }
    r->s = s;
    MDB_val v;
    if (store__get(r->txn, s->dbi[STORE_DB_META], "applied", 7, &v, NULL) ==
            RV_OK &&
        v.mv_size == 8)
        r->applied_index = rv_get_be64(v.mv_data);
    rv_buf_init(&r->vbuf);
    *out = r;
    return RV_OK;
}

void
store_read_digest(const struct store_read *r, uint8_t out[STORE_DIGEST_BYTES])
{
    MDB_val v;
    if (store__get(r->txn, r->s->dbi[STORE_DB_META], "digest", 6, &v, NULL) ==
            RV_OK &&
        v.mv_size == STORE_DIGEST_BYTES)
        memcpy(out, v.mv_data, STORE_DIGEST_BYTES);
    else
        memset(out, 0, STORE_DIGEST_BYTES);
}

void
store_read_end(struct store_read *r)
{
    if (r == NULL)
        return;
    mdb_txn_abort(r->txn);
    rv_buf_free(&r->vbuf);
    free(r);
}

uint64_t
store_read_applied_index(const struct store_read *r)
{
    return r->applied_index;
}

/* ---- Rebuild and verify ------------------------------------------------ */

/* Read the applied index and digest stored in dir/name, if it exists. */
static int
store__stored_state(const char *dir, const char *name, uint64_t *applied,
                    uint8_t digest[STORE_DIGEST_BYTES], char *errmsg)
{
    char path[4096];
    struct stat st;
    struct store tmp;

    *applied = 0;
    memset(digest, 0, STORE_DIGEST_BYTES);
    if (store__index_path(dir, path, sizeof path, name) != RV_OK)
        return RV_EINVAL;
    if (stat(path, &st) != 0)
        return RV_OK;
    memset(&tmp, 0, sizeof tmp);
    int rc = store__env_open(&tmp, path, STORE_DEFAULT_MAP_BYTES, errmsg);
    if (rc == RV_OK) {
        *applied = tmp.applied_index;
        memcpy(digest, tmp.digest, STORE_DIGEST_BYTES);
    }
    if (tmp.env != NULL)
        mdb_env_close(tmp.env);
    return rc;
}

/* Start a check: zero chk, verify every vlog record of dir read-only. */
static int
store__check_vlog(const char *dir, struct store_check *chk, char *errmsg)
{
    char path[4096];
    memset(chk, 0, sizeof *chk);
    if (store__index_path(dir, path, sizeof path, "vlog") != RV_OK)
        return RV_EINVAL;
    return vlog_verify(path, &chk->n_records, &chk->n_segments,
                       &chk->vlog_last_index, &chk->torn_bytes, errmsg);
}

int
store_rebuild_index(const char *dir, const struct rv_log *log,
                    struct store_check *chk, char *errmsg)
{
    /* Refuse before touching anything if the archive itself is damaged (a
     * torn tail is fine: opening the store repairs it). */
    int rc = store__check_vlog(dir, chk, errmsg);
    if (rc != RV_OK)
        return rc;
    rc = store__stored_state(dir, "index.mdb", &chk->applied_index,
                             chk->stored_digest, errmsg);
    if (rc != RV_OK)
        rv_logf(log, RV_LOG_WARN, "store",
                "old index unreadable (%s); rebuilding anyway", errmsg);
    /* The sync marker describes the index removed here: it goes too, so
     * the open below builds the new index without taking it for a damaged
     * one. */
    rc = store__index_remove(dir, errmsg);
    if (rc == RV_OK)
        rc = store__marker_remove(dir, errmsg);
    if (rc != RV_OK)
        return rc;
    struct store_config cfg = {dir, 0, 0, log, NULL};
    struct store *s;
    rc = store_open(&s, &cfg, errmsg);
    if (rc != RV_OK)
        return rc;
    chk->vlog_last_index = vlog_last_index(s->vlog);
    memcpy(chk->computed_digest, s->digest, STORE_DIGEST_BYTES);
    chk->is_digest_equal = s->applied_index == chk->applied_index &&
                           memcmp(chk->computed_digest, chk->stored_digest,
                                  STORE_DIGEST_BYTES) == 0;
    rc = store_sync(s, errmsg);
    store_close(s);
    return rc;
}

/* Replay vlog records up to stop_index into a scratch LMDB at dir/name. */
static int
store__replay_scratch(const char *dir, const char *name, uint64_t stop_index,
                      const struct rv_log *log,
                      uint8_t digest[STORE_DIGEST_BYTES], char *errmsg)
{
    struct store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return RV_ENOMEM;
    s->log = log;
    s->marker_fd = -1;
    pthread_mutex_init(&s->chk.lock, NULL);
    pthread_cond_init(&s->chk.cond, NULL);
    pthread_mutex_init(&s->cmp.lock, NULL);
    pthread_cond_init(&s->cmp.cond, NULL);
    struct store_config cfg = {dir, 0, 0, log, NULL};
    int rc = store__open_parts(s, &cfg, name, errmsg);
    uint64_t n;
    struct vlog_checkpoint ck;
    if (rc == RV_OK)
        vlog_checkpoint(s->vlog, &ck);
    if (rc == RV_OK && ck.index > 0) {
        /* The compacted prefix is the image: its content hash is checked
         * as it loads; the chained digest is checked after it. */
        char vdir[4096];
        snprintf(vdir, sizeof vdir, "%s/vlog", dir);
        rc = store__image_load(s, vdir, &ck, errmsg);
    }
    if (rc == RV_OK)
        rc = store__replay(s, stop_index, &n, errmsg);
    memcpy(digest, s->digest, STORE_DIGEST_BYTES);
    store_close(s);
    return rc;
}

int
store_verify(const char *dir, const struct rv_log *log, struct store_check *chk,
             char *errmsg)
{
    char path[4096];
    int rc = store__check_vlog(dir, chk, errmsg);
    if (rc != RV_OK)
        return rc;
    rc = store__stored_state(dir, "index.mdb", &chk->applied_index,
                             chk->stored_digest, errmsg);
    if (rc != RV_OK)
        return rc;
    if (chk->torn_bytes > 0) {
        rv_errmsg_printf(errmsg,
                         "vlog has a torn tail of %llu bytes (open "
                         "the store to repair it)",
                         (unsigned long long)chk->torn_bytes);
        return RV_ECORRUPT;
    }
    const char *scratch = "verify-scratch.mdb";
    if (store__index_path(dir, path, sizeof path, scratch) != RV_OK)
        return RV_EINVAL;
    unlink(path);
    rc = store__replay_scratch(dir, scratch, chk->applied_index, log,
                               chk->computed_digest, errmsg);
    unlink(path);
    if (store__index_path(dir, path, sizeof path, "verify-scratch.mdb-lock") ==
        RV_OK)
        unlink(path);
    if (rc != RV_OK)
        return rc;
    chk->is_digest_equal = memcmp(chk->computed_digest, chk->stored_digest,
                                  STORE_DIGEST_BYTES) == 0;
    if (!chk->is_digest_equal) {
        rv_errmsg_printf(errmsg, "digest mismatch at applied index %llu",
                         (unsigned long long)chk->applied_index);
        return RV_ECORRUPT;
    }
    return RV_OK;
}

int
store_fetch_records(struct store *s, uint64_t from, uint64_t to,
                    size_t max_bytes, struct rv_buf *out, uint64_t *last,
                    char *errmsg)
{
    struct vlog_iter *it;
    size_t start = out->len;
    *last = 0;
    int rc = vlog_iter_open(s->vlog, from, &it, errmsg);
    while (rc == RV_OK && out->len - start < max_bytes) {
        struct vlog_record rec;
        rc = vlog_iter_next(it, &rec, errmsg);
        if (rc != RV_OK)
            break;
        if (rec.index < from)
            continue;
        if (to != 0 && rec.index > to)
            break;
        rv_buf_append_be64(out, rec.index);
        rv_buf_append_be32(out, (uint32_t)rec.len);
        rv_buf_append(out, rec.payload, rec.len);
        if (out->is_failed)
            rc = RV_ENOMEM;
        else
            *last = rec.index;
    }
    vlog_iter_close(it);
    return rc == RV_ENOTFOUND ? RV_OK : rc;
}

size_t
store_sealed_segments(struct store *s, struct vlog_segment_info *out,
                      size_t max)
{
    return vlog_segments(s->vlog, out, max);
}

uint64_t
store_vlog_bytes(struct store *s)
{
    return vlog_size_bytes(s->vlog);
}
