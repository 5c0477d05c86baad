/* Compaction (ARCHITECTURE.md, "Compaction"): the compact command's
 * apply, the job that follows it on a thread of its own (the image of
 * the index at the command's index, the choice of the commands nothing
 * refers to any more, the rewrite of sealed vlog segments through
 * vlog_compact.c), and the image's loading when the index is rebuilt. */
#include "base/clock.h"
#include "base/crc32c.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_IMAGE_MAGIC  "RVIMAGE1"
#define STORE_IMAGE_HEADER 56 /* magic, be64 index, digest, content, n */
#define STORE_IMAGE_FLUSH  (1u << 20)
#define STORE_IMAGE_TXN    50000 /* entries per load transaction */

/* ---- Apply --------------------------------------------------------------- */

int
store__compact_apply(struct store_wctx *w, struct vlog_ptr ptr)
{
    uint8_t v[8];
    rv_put_be64(v, w->index);
    int rc = store__put(w, STORE_DB_META, "compact.index", 13, v, 8);
    /* The bytes purged since the last compaction start again from 0. */
    uint8_t k = STORE_CNT_RECLAIM;
    if (rc == RV_OK && store__cnt_get(w->txn, w->s, &k, 1) > 0)
        rc = store__del(w, STORE_DB_CNT, &k, 1);
    if (rc == RV_OK) {
        w->s->compact_pending = w->index;
        w->s->compact_seg = ptr.segment;
    }
    return rc;
}

void
store__compact_after_commit(struct store *s)
{
    uint64_t index = s->compact_pending;
    s->compact_pending = 0;
    if (index == 0)
        return;
    struct store__compact *c = &s->cmp;
    pthread_mutex_lock(&c->lock);
    c->requested_index = index;
    int is_busy = c->job_txn != NULL || c->is_running;
    MDB_txn *txn;
    if (c->is_started && !is_busy &&
        mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
        c->job_txn = txn;
        c->job_index = index;
        c->job_seg = s->compact_seg;
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
    if (is_busy)
        rv_logf(s->log, RV_LOG_WARN, "store",
                "compaction at index %llu skipped on this node: the one "
                "before still runs (the next compaction covers it)",
                (unsigned long long)index);
}

/* ---- The image ----------------------------------------------------------- */

static int
store__write_all(int fd, const uint8_t *p, size_t n, const char *path,
                 char *errmsg)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rv_errmsg_printf(errmsg, "write %s: %s", path, strerror(errno));
            return errno == ENOSPC ? RV_ENOSPACE : RV_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return RV_OK;
}

/* Write every table of txn (but meta "diverged", as the content hash) to
 * path: header, entries (u8 table, be32 key length, be32 value length,
 * key, value) in table and key order, be32 CRC-32C of the entries. */
static int
store__image_write(struct store *s, MDB_txn *txn, const char *path,
                   const struct vlog_checkpoint *ck, uint64_t *bytes,
                   char *errmsg)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rv_errmsg_printf(errmsg, "create %s: %s", path, strerror(errno));
        return RV_EIO;
    }
    struct rv_buf b;
    rv_buf_init(&b);
    uint8_t hdr[STORE_IMAGE_HEADER] = {0};
    int rc = store__write_all(fd, hdr, sizeof hdr, path, errmsg);
    uint64_t n = 0, total = sizeof hdr;
    uint32_t crc = 0;
    for (int db = 0; db < STORE_DB_COUNT && rc == RV_OK; db++) {
        MDB_cursor *cur;
        MDB_val k, v;
        int mrc = mdb_cursor_open(txn, s->dbi[db], &cur);
        if (mrc != 0) {
            rc = store__err_mdb(mrc, "mdb_cursor_open", errmsg);
            break;
        }
        for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
             mrc == 0 && rc == RV_OK;
             mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (db == STORE_DB_META && k.mv_size == 8 &&
                memcmp(k.mv_data, "diverged", 8) == 0)
                continue;
            rv_buf_append_u8(&b, (uint8_t)db);
            rv_buf_append_be32(&b, (uint32_t)k.mv_size);
            rv_buf_append_be32(&b, (uint32_t)v.mv_size);
            rv_buf_append(&b, k.mv_data, k.mv_size);
            rv_buf_append(&b, v.mv_data, v.mv_size);
            n++;
            if (b.is_failed)
                rc = RV_ENOMEM;
            else if (b.len >= STORE_IMAGE_FLUSH) {
                crc = rv_crc32c(crc, b.data, b.len);
                rc = store__write_all(fd, b.data, b.len, path, errmsg);
                total += b.len;
                rv_buf_reset(&b);
            }
        }
        mdb_cursor_close(cur);
        if (rc == RV_OK && mrc != MDB_NOTFOUND)
            rc = store__err_mdb(mrc, "cursor", errmsg);
    }
    if (rc == RV_OK) {
        crc = rv_crc32c(crc, b.data, b.len);
        rv_buf_append_be32(&b, crc);
        rc = b.is_failed ? RV_ENOMEM
                         : store__write_all(fd, b.data, b.len, path, errmsg);
        total += b.len;
    }
    rv_buf_free(&b);
    memcpy(hdr, STORE_IMAGE_MAGIC, 8);
    rv_put_be64(hdr + 8, ck->index);
    memcpy(hdr + 16, ck->digest, 16);
    memcpy(hdr + 32, ck->content, 16);
    rv_put_be64(hdr + 48, n);
    if (rc == RV_OK && (pwrite(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr ||
                        fsync(fd) != 0)) {
        rv_errmsg_printf(errmsg, "write %s: %s", path, strerror(errno));
        rc = RV_EIO;
    }
    close(fd);
    *bytes = total;
    return rc;
}

/* Read exactly n bytes of f into p; RV_ECORRUPT at a short read. */
static int
store__read_exact(FILE *f, void *p, size_t n, const char *path, char *errmsg)
{
    if (n > 0 && fread(p, 1, n, f) != n) {
        rv_errmsg_printf(errmsg, "%s: cut short", path);
        return RV_ECORRUPT;
    }
    return RV_OK;
}

int
store__image_load(struct store *s, const char *vlog_dir,
                  const struct vlog_checkpoint *ck, char *errmsg)
{
    char path[4096];
    vlog_image_path(vlog_dir, ck->index, path, sizeof path);
    FILE *f = fopen(path, "rbe");
    if (f == NULL) {
        rv_errmsg_printf(errmsg, "open %s: %s", path, strerror(errno));
        return errno == ENOENT ? RV_ECORRUPT : RV_EIO;
    }
    uint8_t hdr[STORE_IMAGE_HEADER];
    int rc = store__read_exact(f, hdr, sizeof hdr, path, errmsg);
    if (rc == RV_OK && (memcmp(hdr, STORE_IMAGE_MAGIC, 8) != 0 ||
                        rv_get_be64(hdr + 8) != ck->index ||
                        memcmp(hdr + 16, ck->digest, 16) != 0 ||
                        memcmp(hdr + 32, ck->content, 16) != 0)) {
        rv_errmsg_printf(errmsg,
                         "%s: header does not match the manifest's "
                         "checkpoint at %llu",
                         path, (unsigned long long)ck->index);
        rc = RV_ECORRUPT;
    }
    uint64_t n = rc == RV_OK ? rv_get_be64(hdr + 48) : 0;
    uint8_t *kv = NULL;
    size_t kv_cap = 0;
    uint32_t crc = 0;
    MDB_txn *txn = NULL;
    for (uint64_t i = 0; rc == RV_OK && i < n; i++) {
        if (txn == NULL) {
            int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
            if (mrc != 0) {
                rc = store__err_mdb(mrc, "mdb_txn_begin", errmsg);
                break;
            }
        }
        uint8_t eh[9];
        rc = store__read_exact(f, eh, sizeof eh, path, errmsg);
        if (rc != RV_OK)
            break;
        uint32_t kn = rv_get_be32(eh + 1), vn = rv_get_be32(eh + 5);
        if (eh[0] >= STORE_DB_COUNT || kn == 0 || kn > 511 ||
            vn > (64u << 20)) {
            rv_errmsg_printf(errmsg, "%s: entry %llu is malformed", path,
                             (unsigned long long)i);
            rc = RV_ECORRUPT;
            break;
        }
        if ((size_t)kn + vn > kv_cap) {
            size_t cap = (size_t)kn + vn;
            void *p = realloc(kv, cap);
            if (p == NULL) {
                rc = RV_ENOMEM;
                break;
            }
            kv = p;
            kv_cap = cap;
        }
        rc = store__read_exact(f, kv, (size_t)kn + vn, path, errmsg);
        if (rc != RV_OK)
            break;
        crc = rv_crc32c(crc, eh, sizeof eh);
        crc = rv_crc32c(crc, kv, (size_t)kn + vn);
        MDB_val k = {kn, kv}, v = {vn, kv + kn};
        int mrc = mdb_put(txn, s->dbi[eh[0]], &k, &v, MDB_APPEND);
        if (mrc == MDB_KEYEXIST) {
            rv_errmsg_printf(errmsg, "%s: entry %llu is out of order", path,
                             (unsigned long long)i);
            rc = RV_ECORRUPT;
        } else if (mrc != 0) {
            rc = store__err_mdb(mrc, "mdb_put (image)", errmsg);
        }
        if (rc == RV_OK && (i + 1) % STORE_IMAGE_TXN == 0) {
            mrc = mdb_txn_commit(txn);
            txn = NULL;
            if (mrc != 0)
                rc = store__err_mdb(mrc, "mdb_txn_commit", errmsg);
        }
    }
    free(kv);
    uint8_t tail[5];
    if (rc == RV_OK) {
        /* The CRC, then the end of the file. */
        size_t got = fread(tail, 1, sizeof tail, f);
        if (got != 4 || rv_get_be32(tail) != crc) {
            rv_errmsg_printf(errmsg, "%s: CRC or length does not match", path);
            rc = RV_ECORRUPT;
        }
    }
    fclose(f);
    if (rc == RV_OK && txn != NULL) {
        int mrc = mdb_txn_commit(txn);
        if (mrc != 0)
            rc = store__err_mdb(mrc, "mdb_txn_commit", errmsg);
    } else if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (rc != RV_OK)
        return rc;
    /* What the image holds must hash to what the peers had at C. */
    uint8_t content[STORE_DIGEST_BYTES];
    MDB_txn *rtxn;
    int mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &rtxn);
    if (mrc != 0)
        return store__err_mdb(mrc, "mdb_txn_begin", errmsg);
    rc = store__content_hash(rtxn, s, content, errmsg);
    mdb_txn_abort(rtxn);
    if (rc == RV_OK && memcmp(content, ck->content, sizeof content) != 0) {
        rv_errmsg_printf(errmsg,
                         "%s: the loaded index does not hash to the "
                         "checkpoint's content hash at %llu",
                         path, (unsigned long long)ck->index);
        rc = RV_ECORRUPT;
    }
    if (rc == RV_OK)
        rc = store__meta_load(s, errmsg);
    if (rc == RV_OK && (s->applied_index != ck->index ||
                        memcmp(s->digest, ck->digest, 16) != 0)) {
        rv_errmsg_printf(errmsg,
                         "%s: applied index %llu and digest differ from the "
                         "checkpoint at %llu",
                         path, (unsigned long long)s->applied_index,
                         (unsigned long long)ck->index);
        rc = RV_ECORRUPT;
    }
    return rc;
}

/* ---- Which commands go --------------------------------------------------- */

/* A pointer into the vlog some table holds: segment, offset, command. */
struct store__vref {
    uint32_t segment, offset;
    uint16_t cmd;
};

struct store__compact_ctx {
    struct store *s;
    MDB_txn *txn;
    struct store__vref *refs;
    size_t n_refs, cap_refs;
    uint64_t n_removed, bytes_removed;
};

static int
store__ref_cmp(const void *a, const void *b)
{
    const struct store__vref *x = a, *y = b;
    if (x->segment != y->segment)
        return x->segment < y->segment ? -1 : 1;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->cmd < y->cmd ? -1 : x->cmd > y->cmd;
}

/* Collect the vlog pointers of db (values: be32 segment, be32 offset,
 * be32 length, be16 command) below segment limit. */
static int
store__refs_collect(struct store__compact_ctx *cx, enum store_db db,
                    uint32_t limit, char *errmsg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_cursor_open(cx->txn, cx->s->dbi[db], &cur);
    if (mrc != 0)
        return store__err_mdb(mrc, "mdb_cursor_open", errmsg);
    int rc = RV_OK;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc == RV_OK;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size < 14)
            continue;
        const uint8_t *p = v.mv_data;
        struct store__vref r = {rv_get_be32(p), rv_get_be32(p + 4),
                                rv_get_be16(p + 12)};
        if (r.segment >= limit)
            continue;
        if (cx->n_refs == cx->cap_refs) {
            size_t cap = cx->cap_refs ? 2 * cx->cap_refs : 1024;
            void *q = realloc(cx->refs, cap * sizeof *cx->refs);
            if (q == NULL) {
                rc = RV_ENOMEM;
                break;
            }
            cx->refs = q;
            cx->cap_refs = cap;
        }
        cx->refs[cx->n_refs++] = r;
    }
    mdb_cursor_close(cur);
    if (rc == RV_OK && mrc != MDB_NOTFOUND && mrc != 0)
        rc = store__err_mdb(mrc, "cursor", errmsg);
    return rc;
}

static int
store__is_referenced(const struct store__compact_ctx *cx, struct vlog_ptr ptr,
                     uint16_t cmd)
{
    struct store__vref key = {ptr.segment, ptr.offset, cmd};
    return cx->n_refs > 0 && bsearch(&key, cx->refs, cx->n_refs, sizeof key,
                                     store__ref_cmp) != NULL;
}

/* Whether command cmd (command number no of the record at ptr) goes: a
 * command of a run that no longer exists at C, or an artifact chunk no
 * part points at (a superseded duplicate, an upload that failed); never
 * one a table still points at. */
static int
store__is_removable(const struct store__compact_ctx *cx, const Rv__Command *c,
                    struct vlog_ptr ptr, uint16_t no)
{
    if (store__is_referenced(cx, ptr, no))
        return 0;
    const char *run_id = proto_command_run_id(c);
    if (run_id != NULL) {
        uint64_t num;
        if (store__run_num_get(cx->txn, cx->s, run_id, &num, NULL) ==
            RV_ENOTFOUND)
            return 1;
    }
    return c->body_case == RV__COMMAND__BODY_ARTIFACT_CHUNK;
}

static int
store__varint(const uint8_t *p, size_t n, size_t *at, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *at < n; shift += 7) {
        uint8_t b = p[(*at)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

static size_t
store__varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t
store__varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Fill g bytes (g == 0 or g >= 2) at p with CommandBatch pad fields of
 * zero bytes. */
static void
store__pad_fill(uint8_t *p, size_t g)
{
    while (g > 0) {
        size_t len = g - 2; /* tag + 1-byte length */
        while (len > 0 && 1 + store__varint_size(len) + len > g)
            len--;
        size_t f = 1 + store__varint_size(len) + len;
        if (g - f == 1) { /* one byte cannot be a field: shorten */
            len--;
            f = 1 + store__varint_size(len) + len;
        }
        p[0] = 0x12; /* field 2, length-delimited */
        size_t h = 1 + store__varint_put(p + 1, len);
        memset(p + h, 0, len);
        p += f;
        g -= f;
    }
}

int
store__compact_record(void *arg, uint64_t index, struct vlog_ptr ptr,
                      uint8_t *payload, size_t len, int *is_changed,
                      char *errmsg)
{
    struct store__compact_ctx *cx = arg;
    (void)index;
    (void)errmsg;
    size_t at = 0;
    uint16_t no = 0;
    while (at < len) {
        size_t start = at;
        uint64_t tag, flen;
        if (!store__varint(payload, len, &at, &tag) || (tag & 7) != 2 ||
            !store__varint(payload, len, &at, &flen) || flen > len - at)
            return RV_OK; /* Not a batch compaction understands: kept. */
        size_t end = at + (size_t)flen;
        if (tag >> 3 == 1) {
            size_t whole = end - start;
            Rv__Command *c =
                flen > 0 ? rv__command__unpack(NULL, (size_t)flen, payload + at)
                         : NULL;
            if (c != NULL && store__is_removable(cx, c, ptr, no) &&
                whole >= 4) {
                payload[start] = 0x0a; /* field 1: an empty Command */
                payload[start + 1] = 0x00;
                store__pad_fill(payload + start + 2, whole - 2);
                *is_changed = 1;
                cx->n_removed++;
                cx->bytes_removed += whole;
            }
            if (c != NULL)
                rv__command__free_unpacked(c, NULL);
            no++;
        }
        at = end;
    }
    return RV_OK;
}

/* ---- The job ------------------------------------------------------------- */

/* Compact as of the read transaction txn at index C: image, choice,
 * rewrite of the sealed segments below seg_limit, switch. */
static int
store__compact_run(struct store *s, MDB_txn *txn, uint64_t index,
                   uint32_t seg_limit, char *errmsg)
{
    char vdir[4096], path[4096];
    struct vlog_checkpoint ck, cur;
    memset(&ck, 0, sizeof ck);
    vlog_checkpoint(s->vlog, &cur);
    if (cur.index >= index) {
        rv_logf(s->log, RV_LOG_INFO, "store",
                "compaction at %llu: already compacted at %llu, nothing to do",
                (unsigned long long)index, (unsigned long long)cur.index);
        return RV_OK;
    }
    snprintf(vdir, sizeof vdir, "%s/vlog", s->dir);
    ck.index = index;
    MDB_val v;
    int rc = store__get(txn, s->dbi[STORE_DB_META], "digest", 6, &v, errmsg);
    if (rc == RV_OK && v.mv_size == STORE_DIGEST_BYTES)
        memcpy(ck.digest, v.mv_data, STORE_DIGEST_BYTES);
    else if (rc == RV_OK)
        rc = RV_ECORRUPT;
    uint64_t applied = 0;
    if (rc == RV_OK &&
        store__get(txn, s->dbi[STORE_DB_META], "applied", 7, &v, errmsg) ==
            RV_OK &&
        v.mv_size == 8)
        applied = rv_get_be64(v.mv_data);
    if (rc == RV_OK && applied != index) {
        rv_errmsg_printf(errmsg, "compaction at %llu: the index is at %llu",
                         (unsigned long long)index,
                         (unsigned long long)applied);
        rc = RV_EINVAL;
    }
    if (rc == RV_OK)
        rc = store__content_hash(txn, s, ck.content, errmsg);
    vlog_image_path(vdir, index, path, sizeof path);
    if (rc == RV_OK)
        rc = store__image_write(s, txn, path, &ck, &ck.image_bytes, errmsg);
    if (rc == RV_OK)
        rc = vlog_compact_step(errmsg);
    struct store__compact_ctx cx = {s, txn, NULL, 0, 0, 0, 0};
    if (rc == RV_OK)
        rc = store__refs_collect(&cx, STORE_DB_ARTPART, seg_limit, errmsg);
    if (rc == RV_OK)
        rc = store__refs_collect(&cx, STORE_DB_LOGS, seg_limit, errmsg);
    if (rc == RV_OK && cx.n_refs > 1)
        qsort(cx.refs, cx.n_refs, sizeof *cx.refs, store__ref_cmp);
    struct vlog_rewrite *rw = NULL;
    if (rc == RV_OK)
        rc = vlog_rewrite_begin(s->vlog, &ck, s->cmp.rate, &rw, errmsg);
    struct vlog_segment_info segs[64];
    uint64_t freed = 0;
    size_t n_segs = 0;
    for (uint32_t next = 0; rc == RV_OK;) {
        /* Sealed segments, oldest first, 64 at a time. */
        size_t total = vlog_segments(s->vlog, NULL, 0);
        struct vlog_segment_info *all = calloc(total ? total : 1, sizeof *all);
        if (all == NULL) {
            rc = RV_ENOMEM;
            break;
        }
        total = vlog_segments(s->vlog, all, total);
        size_t k = 0;
        for (size_t i = 0; i < total && k < 64; i++)
            if (all[i].number >= next && all[i].number < seg_limit)
                segs[k++] = all[i];
        free(all);
        if (k == 0)
            break;
        for (size_t i = 0; i < k && rc == RV_OK; i++) {
            uint64_t f = 0;
            rc = vlog_rewrite_segment(rw, segs[i].number, store__compact_record,
                                      &cx, &f, errmsg);
            freed += f;
            n_segs++;
            next = segs[i].number + 1;
        }
    }
    free(cx.refs);
    mdb_txn_abort(txn); /* The choice is made: the snapshot may go. */
    uint64_t n_read = 0, n_written = 0;
    if (rw != NULL)
        vlog_rewrite_bytes(rw, &n_read, &n_written);
    if (rc == RV_OK) {
        rc = vlog_rewrite_commit(rw, errmsg);
    } else if (rw != NULL && vlog_compact_crash_at == 0) {
        vlog_rewrite_abort(rw);
    } else if (rw != NULL) {
        vlog_rewrite_drop(rw); /* A test's crash: files stay as they are. */
    } else if (vlog_compact_crash_at == 0) {
        unlink(path);
    }
    pthread_mutex_lock(&s->cmp.lock);
    s->cmp.bytes_rewritten += n_written;
    if (rc == RV_OK) {
        s->cmp.n_done++;
        s->cmp.bytes_freed = freed;
        s->cmp.done_index = index;
    }
    pthread_mutex_unlock(&s->cmp.lock);
    if (rc == RV_OK)
        rv_logf(s->log, RV_LOG_INFO, "store",
                "compaction at %llu: %llu commands removed (%llu bytes) from "
                "%zu sealed segments, %llu bytes of disk given back, image "
                "%llu bytes",
                (unsigned long long)index, (unsigned long long)cx.n_removed,
                (unsigned long long)cx.bytes_removed, n_segs,
                (unsigned long long)freed, (unsigned long long)ck.image_bytes);
    return rc;
}

static void *
store__compact_thread(void *arg)
{
    struct store *s = arg;
    struct store__compact *c = &s->cmp;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->is_stopping && c->job_txn == NULL)
            pthread_cond_wait(&c->cond, &c->lock);
        if (c->is_stopping)
            break;
        MDB_txn *txn = c->job_txn;
        uint64_t index = c->job_index;
        uint32_t seg = c->job_seg;
        c->job_txn = NULL;
        c->is_running = 1;
        pthread_mutex_unlock(&c->lock);
        char errmsg[RV_ERRMSG_SIZE] = "";
        int rc = store__compact_run(s, txn, index, seg, errmsg);
        if (rc != RV_OK)
            rv_logf(s->log, RV_LOG_ERROR, "store",
                    "compaction at %llu failed: %s: %s (the old segments "
                    "stay; the next compaction retries)",
                    (unsigned long long)index, rv_strerror(rc), errmsg);
        pthread_mutex_lock(&c->lock);
        c->is_running = 0;
        c->last_code = rc;
        c->last_index = index;
        snprintf(c->last_error, sizeof c->last_error, "%s", errmsg);
        pthread_cond_broadcast(&c->cond);
    }
    if (c->job_txn != NULL)
        mdb_txn_abort(c->job_txn);
    c->job_txn = NULL;
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int
store_compact_start(struct store *s, uint64_t rate_bytes_s, char *errmsg)
{
    struct store__compact *c = &s->cmp;
    c->rate = rate_bytes_s;
    int err = pthread_create(&c->thread, NULL, store__compact_thread, s);
    if (err != 0) {
        rv_errmsg_printf(errmsg, "compaction thread: %s", strerror(err));
        return RV_ENOMEM;
    }
    pthread_mutex_lock(&c->lock);
    c->is_started = 1;
    pthread_mutex_unlock(&c->lock);
    return RV_OK;
}

void
store__compact_stop(struct store *s)
{
    struct store__compact *c = &s->cmp;
    pthread_mutex_lock(&c->lock);
    int is_started = c->is_started;
    c->is_stopping = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    if (is_started)
        pthread_join(c->thread, NULL);
    c->is_started = 0;
}

int
store_compact_wait(struct store *s, uint64_t index, unsigned timeout_ms)
{
    struct store__compact *c = &s->cmp;
    uint64_t deadline = rv_clock_mono_ms() + timeout_ms;
    pthread_mutex_lock(&c->lock);
    while ((c->last_index < index || c->is_running || c->job_txn != NULL) &&
           rv_clock_mono_ms() < deadline) {
        pthread_mutex_unlock(&c->lock);
        rv_clock_sleep_ms(10);
        pthread_mutex_lock(&c->lock);
    }
    int rc = c->last_index >= index ? c->last_code : RV_ETIMEDOUT;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void
store_compact_info(struct store *s, struct store_compact_info *out)
{
    struct store__compact *c = &s->cmp;
    struct vlog_checkpoint ck;
    memset(out, 0, sizeof *out);
    vlog_checkpoint(s->vlog, &ck);
    out->checkpoint_index = ck.index;
    out->image_bytes = ck.image_bytes;
    out->vlog_disk_bytes = vlog_disk_bytes(s->vlog);
    pthread_mutex_lock(&c->lock);
    out->requested_index = c->requested_index;
    out->n_done = c->n_done;
    out->bytes_rewritten = c->bytes_rewritten;
    out->bytes_freed = c->bytes_freed;
    out->last_code = c->last_code;
    out->is_running = c->is_running || c->job_txn != NULL;
    snprintf(out->last_error, sizeof out->last_error, "%s", c->last_error);
    pthread_mutex_unlock(&c->lock);
}

int
store_reclaimable_bytes(struct store_read *r, uint64_t *out)
{
    uint8_t k = STORE_CNT_RECLAIM;
    *out = store__cnt_get(r->txn, r->s, &k, 1);
    return RV_OK;
}

/* ---- Catch-up across a compaction ---------------------------------------- */

uint64_t
store_checkpoint_index(struct store *s)
{
    struct vlog_checkpoint ck;
    vlog_checkpoint(s->vlog, &ck);
    return ck.index;
}

void
store_image_part_path(struct store *s, char *out, size_t size)
{
    snprintf(out, size, "%s/image.part", s->dir);
}

int
store_image_read(struct store *s, uint64_t index, uint64_t offset, size_t max,
                 struct rv_buf *out, uint64_t *total, char *errmsg)
{
    char vdir[4096], path[4096];
    struct vlog_checkpoint ck;
    struct stat st;
    vlog_checkpoint(s->vlog, &ck);
    if (ck.index == 0 || ck.index != index) {
        rv_errmsg_printf(errmsg, "no image at %llu (checkpoint: %llu)",
                         (unsigned long long)index,
                         (unsigned long long)ck.index);
        return RV_ENOTFOUND;
    }
    snprintf(vdir, sizeof vdir, "%s/vlog", s->dir);
    vlog_image_path(vdir, index, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rv_errmsg_printf(errmsg, "open %s: %s", path, strerror(errno));
        return errno == ENOENT ? RV_ENOTFOUND : RV_EIO;
    }
    int rc = RV_OK;
    if (fstat(fd, &st) != 0) {
        rv_errmsg_printf(errmsg, "stat %s: %s", path, strerror(errno));
        rc = RV_EIO;
    }
    *total = rc == RV_OK ? (uint64_t)st.st_size : 0;
    size_t n = offset < *total ? (size_t)(*total - offset) : 0;
    if (n > max)
        n = max;
    size_t at = out->len;
    if (rc == RV_OK && n > 0) {
        rv_buf_reserve(out, n);
        if (out->is_failed)
            rc = RV_ENOMEM;
        else if (pread(fd, out->data + at, n, (off_t)offset) != (ssize_t)n) {
            rv_errmsg_printf(errmsg, "read %s: %s", path, strerror(errno));
            rc = RV_EIO;
        } else {
            out->len = at + n;
        }
    }
    close(fd);
    return rc;
}

int
store_append_raw(struct store *s, uint64_t index, const void *payload, size_t n,
                 char *errmsg)
{
    struct vlog_ptr ptr;
    if (index <= vlog_last_index(s->vlog)) {
        rv_errmsg_printf(errmsg, "record %llu does not follow the vlog's %llu",
                         (unsigned long long)index,
                         (unsigned long long)vlog_last_index(s->vlog));
        return RV_EINVAL;
    }
    return vlog_append(s->vlog, index, VLOG_TYPE_BATCH, payload, n, &ptr,
                       errmsg);
}

int
store_install_image(struct store *s, const char *path, char *errmsg)
{
    char vdir[4096], dest[4096];
    uint8_t hdr[STORE_IMAGE_HEADER];
    struct vlog_checkpoint ck;
    struct stat st;
    FILE *f = fopen(path, "rbe");
    if (f == NULL) {
        rv_errmsg_printf(errmsg, "open %s: %s", path, strerror(errno));
        return RV_EIO;
    }
    int rc = store__read_exact(f, hdr, sizeof hdr, path, errmsg);
    fclose(f);
    if (rc != RV_OK)
        return rc;
    if (memcmp(hdr, STORE_IMAGE_MAGIC, 8) != 0 || stat(path, &st) != 0) {
        rv_errmsg_printf(errmsg, "%s: not an image", path);
        return RV_ECORRUPT;
    }
    memset(&ck, 0, sizeof ck);
    ck.index = rv_get_be64(hdr + 8);
    memcpy(ck.digest, hdr + 16, 16);
    memcpy(ck.content, hdr + 32, 16);
    ck.image_bytes = (uint64_t)st.st_size;
    if (ck.index == 0 || ck.index > vlog_last_index(s->vlog) ||
        ck.index <= s->applied_index) {
        rv_errmsg_printf(errmsg,
                         "image at %llu: the vlog ends at %llu, the index is "
                         "at %llu",
                         (unsigned long long)ck.index,
                         (unsigned long long)vlog_last_index(s->vlog),
                         (unsigned long long)s->applied_index);
        return RV_EINVAL;
    }
    snprintf(vdir, sizeof vdir, "%s/vlog", s->dir);
    vlog_image_path(vdir, ck.index, dest, sizeof dest);
    if (rename(path, dest) != 0) {
        rv_errmsg_printf(errmsg, "rename %s: %s", path, strerror(errno));
        return RV_EIO;
    }
    /* The checkpoint first: a crash from here on rebuilds from it. */
    struct vlog_rewrite *rw;
    rc = vlog_rewrite_begin(s->vlog, &ck, 0, &rw, errmsg);
    if (rc == RV_OK)
        rc = vlog_rewrite_commit(rw, errmsg);
    if (rc == RV_OK)
        rc = store__marker_dirty(s, errmsg);
    MDB_txn *txn = NULL;
    int mrc = rc == RV_OK ? mdb_txn_begin(s->env, NULL, 0, &txn) : 0;
    if (mrc != 0)
        rc = store__err_mdb(mrc, "mdb_txn_begin", errmsg);
    for (int db = 0; rc == RV_OK && db < STORE_DB_COUNT; db++) {
        mrc = mdb_drop(txn, s->dbi[db], 0);
        if (mrc != 0)
            rc = store__err_mdb(mrc, "mdb_drop", errmsg);
    }
    if (txn != NULL) {
        mrc = rc == RV_OK ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), 0);
        if (mrc != 0)
            rc = store__err_mdb(mrc, "mdb_txn_commit", errmsg);
    }
    if (rc == RV_OK)
        rc = store__image_load(s, vdir, &ck, errmsg);
    if (rc == RV_OK)
        rc = store_sync(s, errmsg);
    if (rc == RV_OK)
        rv_logf(s->log, RV_LOG_INFO, "store",
                "installed the compaction image at %llu (%llu bytes) from a "
                "peer",
                (unsigned long long)ck.index,
                (unsigned long long)ck.image_bytes);
    return rc;
}
