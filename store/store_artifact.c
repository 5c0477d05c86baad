/* Artifacts: chunked uploads, completion with the SHA-256 check, the
 * content-addressed blobs and their reference counts, and the reads
 * (get, list, read). */
#include "store/store_int.h"

#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Writes ------------------------------------------------------------ */

/* Decoded artifact record, a private copy. */
struct store__artrec {
    int is_complete;
    uint64_t size;
    uint8_t sha256[32];
    char content_type[256];
    uint64_t owner_run;
    char owner_path[CONTRACT_MAX_ARTIFACT_PATH_BYTES + 1];
};

static int
store__artrec_decode(const MDB_val *v, struct store__artrec *a)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    if (v->mv_size < 1 + 8 + 32 + 2)
        return RV_ECORRUPT;
    a->is_complete = p[0];
    a->size = rv_get_be64(p + 1);
    memcpy(a->sha256, p + 9, 32);
    p += 41;
    uint16_t n = rv_get_be16(p);
    if (n >= sizeof a->content_type || end - p < 2 + n + 8 + 2)
        return RV_ECORRUPT;
    memcpy(a->content_type, p + 2, n);
    a->content_type[n] = '\0';
    p += 2 + n;
    a->owner_run = rv_get_be64(p);
    n = rv_get_be16(p + 8);
    if (n > CONTRACT_MAX_ARTIFACT_PATH_BYTES || end - p != 10 + n)
        return RV_ECORRUPT;
    memcpy(a->owner_path, p + 10, n);
    a->owner_path[n] = '\0';
    return RV_OK;
}

static int
store__artrec_put(struct store_wctx *w, const uint8_t *k, size_t kn,
                  const struct store__artrec *a)
{
    uint8_t
        buf[1 + 8 + 32 + 2 + 256 + 8 + 2 + CONTRACT_MAX_ARTIFACT_PATH_BYTES];
    struct rv_buf b = {buf, 0, sizeof buf, 0};
    rv_buf_append_u8(&b, (uint8_t)a->is_complete);
    rv_buf_append_be64(&b, a->size);
    rv_buf_append(&b, a->sha256, 32);
    rv_buf_append_str16(&b, a->content_type, strlen(a->content_type));
    rv_buf_append_be64(&b, a->owner_run);
    rv_buf_append_str16(&b, a->owner_path, strlen(a->owner_path));
    if (b.is_failed || b.data != buf)
        return RV_ECORRUPT;
    return store__put(w, STORE_DB_ART, k, kn, buf, b.len);
}

/* Artifact paths: relative, '/'-separated, no empty, "." or ".." parts. */
static int
store__artifact_path_valid(const char *p, size_t n)
{
    if (n == 0 || n > CONTRACT_MAX_ARTIFACT_PATH_BYTES ||
        !contract_utf8_valid(p, n))
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && (unsigned char)p[i] < 0x20)
            return 0;
        if (i == n || p[i] == '/') {
            size_t len = i - start;
            if (len == 0 || (len == 1 && p[start] == '.') ||
                (len == 2 && p[start] == '.' && p[start + 1] == '.'))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

static size_t
store__artpart_prefix(uint8_t *k, uint64_t run_num, const char *path)
{
    rv_put_be64(k, run_num);
    return 8 + store__key_str16(k + 8, path, strlen(path));
}

/* Hash the stored parts of (run_num, path) plus a final chunk. */
static int
store__artifact_sha256(struct store_wctx *w, uint64_t run_num, const char *path,
                       const ProtobufCBinaryData *last, uint8_t out[32])
{
    struct sha256_ctx ctx;
    uint8_t pre[8 + 2 + CONTRACT_MAX_ARTIFACT_PATH_BYTES];
    size_t pn = store__artpart_prefix(pre, run_num, path);
    struct rv_buf vb;
    MDB_cursor *cur;

    sha256_init(&ctx);
    rv_buf_init(&vb);
    int rc = mdb_cursor_open(w->txn, w->s->dbi[STORE_DB_ARTPART], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", w->errmsg);
    MDB_val k = {pn, pre}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    int err = RV_OK;
    while (err == RV_OK && rc == 0 && k.mv_size == pn + 8 &&
           memcmp(k.mv_data, pre, pn) == 0) {
        if (v.mv_size != 18) {
            err = RV_ECORRUPT;
            break;
        }
        const uint8_t *pv = v.mv_data;
        struct vlog_ptr ptr = {rv_get_be32(pv), rv_get_be32(pv + 4),
                               rv_get_be32(pv + 8)};
        uint16_t cmd_no = rv_get_be16(pv + 12);
        err = vlog_read(w->s->vlog, ptr, &vb, NULL, w->errmsg);
        Rv__CommandBatch *batch = NULL;
        if (err == RV_OK)
            err = proto_batch_decode(vb.data, vb.len, &batch, w->errmsg);
        if (err == RV_OK) {
            if (cmd_no >= batch->n_commands ||
                batch->commands[cmd_no]->body_case !=
                    RV__COMMAND__BODY_ARTIFACT_CHUNK)
                err = RV_ECORRUPT;
            else {
                const ProtobufCBinaryData *d =
                    &batch->commands[cmd_no]->artifact_chunk->data;
                sha256_update(&ctx, d->len, d->data);
            }
        } else if (err == RV_EMALFORMED) {
            err = RV_ECORRUPT;
        }
        proto_batch_free(batch);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    rv_buf_free(&vb);
    if (err != RV_OK)
        return err;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store__err_mdb(rc, "cursor", w->errmsg);
    sha256_update(&ctx, last->len, last->data);
    sha256_digest(&ctx, 32, out);
    return RV_OK;
}

/* Content-addressed deduplication: the first complete artifact with a
 * given SHA-256 owns the parts; later ones drop theirs and point to it. */
static int
store__artifact_complete(struct store_wctx *w, uint64_t run_num,
                         const char *path, struct store__artrec *a)
{
    MDB_val v;
    int rc = store__get(w->txn, w->s->dbi[STORE_DB_BLOB], a->sha256, 32, &v,
                        w->errmsg);
    uint8_t blob[8 + 8 + 2 + CONTRACT_MAX_ARTIFACT_PATH_BYTES];
    if (rc == RV_OK) {
        if (v.mv_size < 18 || v.mv_size > sizeof blob)
            return RV_ECORRUPT;
        size_t bn = v.mv_size;
        memcpy(blob, v.mv_data, bn);
        uint16_t on = rv_get_be16(blob + 16);
        if (18u + on != bn)
            return RV_ECORRUPT;
        rv_put_be64(blob, rv_get_be64(blob) + 1);
        a->owner_run = rv_get_be64(blob + 8);
        memcpy(a->owner_path, blob + 18, on);
        a->owner_path[on] = '\0';
        uint8_t pre[8 + 2 + CONTRACT_MAX_ARTIFACT_PATH_BYTES];
        size_t pn = store__artpart_prefix(pre, run_num, path);
        rc = store__del_prefix(w, STORE_DB_ARTPART, pre, pn, NULL, NULL);
        if (rc == RV_OK)
            rc = store__put(w, STORE_DB_BLOB, a->sha256, 32, blob, bn);
        return rc;
    }
    if (rc != RV_ENOTFOUND)
        return rc;
    size_t pn = strlen(path);
    rv_put_be64(blob, 1);
    rv_put_be64(blob + 8, run_num);
    rv_put_be16(blob + 16, (uint16_t)pn);
    memcpy(blob + 18, path, pn);
    return store__put(w, STORE_DB_BLOB, a->sha256, 32, blob, 18 + pn);
}

/* The checks of an ArtifactChunk that need no read: path (pn bytes),
 * chunk size, content type. */
static int
store__artifact_chunk_check(const Rv__ArtifactChunk *c, size_t pn, char *errmsg)
{
    if (!store__artifact_path_valid(c->path, pn)) {
        rv_errmsg_printf(errmsg,
                         "invalid artifact path '%.64s': relative, "
                         "at most %d bytes, no '.' or '..' parts",
                         c->path, CONTRACT_MAX_ARTIFACT_PATH_BYTES);
        return RV_EINVAL;
    }
    if (c->data.len > CONTRACT_MAX_ARTIFACT_CHUNK_BYTES) {
        rv_errmsg_printf(errmsg, "artifact chunk of %zu bytes exceeds %u",
                         c->data.len, CONTRACT_MAX_ARTIFACT_CHUNK_BYTES);
        return RV_ETOOBIG;
    }
    if (c->content_type != NULL &&
        (strlen(c->content_type) > 255 ||
         !contract_utf8_valid(c->content_type, strlen(c->content_type))))
        return RV_EINVAL;
    return RV_OK;
}

/* The last chunk: check the SHA-256 of the whole upload and mark a
 * complete. */
static int
store__artifact_last(struct store_wctx *w, const Rv__ArtifactChunk *c,
                     uint64_t run_num, struct store__artrec *a)
{
    uint8_t sum[32];
    if (!c->has_sha256 || c->sha256.len != 32) {
        rv_errmsg_printf(w->errmsg, "the last chunk must carry the 32-byte "
                                    "SHA-256 of the artifact");
        return RV_EINVAL;
    }
    int rc = store__artifact_sha256(w, run_num, c->path, &c->data, sum);
    if (rc != RV_OK)
        return rc;
    if (memcmp(sum, c->sha256.data, 32) != 0) {
        rv_errmsg_printf(w->errmsg,
                         "artifact '%.64s': SHA-256 of the "
                         "uploaded bytes does not match",
                         c->path);
        return RV_EINVAL;
    }
    memcpy(a->sha256, sum, 32);
    a->is_complete = 1;
    return RV_OK;
}

int
store__artifact_chunk(struct store_wctx *w, const Rv__ArtifactChunk *c,
                      struct vlog_ptr ptr, uint16_t cmd_no)
{
    struct store__runrec rr;
    size_t pn = strlen(c->path);
    int rc = store__artifact_chunk_check(c, pn, w->errmsg);
    if (rc != RV_OK)
        return rc;
    rc = store__runrec_get_active(w, c->run_id, &rr);
    if (rc != RV_OK)
        return rc;
    uint8_t k[8 + CONTRACT_MAX_ARTIFACT_PATH_BYTES];
    size_t kn = store__kv_key(k, rr.run_num, c->path, pn);
    struct store__artrec a;
    MDB_val v;
    rc = store__get(w->txn, w->s->dbi[STORE_DB_ART], k, kn, &v, w->errmsg);
    if (rc == RV_OK) {
        if (store__artrec_decode(&v, &a) != RV_OK)
            return RV_ECORRUPT;
        if (a.is_complete) {
            rv_errmsg_printf(w->errmsg, "artifact '%.64s' already exists",
                             c->path);
            return RV_EEXIST;
        }
    } else if (rc == RV_ENOTFOUND) {
        memset(&a, 0, sizeof a);
        snprintf(a.content_type, sizeof a.content_type, "%s",
                 c->content_type ? c->content_type
                                 : "application/octet-stream");
        a.owner_run = rr.run_num;
        memcpy(a.owner_path, c->path, pn + 1);
    } else {
        return rc;
    }
    if (c->offset != a.size) {
        rv_errmsg_printf(w->errmsg,
                         "artifact '%.64s': chunk offset %llu, "
                         "expected %llu",
                         c->path, (unsigned long long)c->offset,
                         (unsigned long long)a.size);
        return RV_EINVAL;
    }
    if (a.size + c->data.len > CONTRACT_DEFAULT_MAX_ARTIFACT_BYTES) {
        rv_errmsg_printf(
            w->errmsg, "artifact '%.64s' exceeds %llu bytes", c->path,
            (unsigned long long)CONTRACT_DEFAULT_MAX_ARTIFACT_BYTES);
        return RV_ETOOBIG;
    }
    if (c->has_is_last && c->is_last) {
        rc = store__artifact_last(w, c, rr.run_num, &a);
        if (rc != RV_OK)
            return rc;
    }
    uint8_t pk[8 + 2 + CONTRACT_MAX_ARTIFACT_PATH_BYTES + 8], pv[18];
    size_t pkn = store__artpart_prefix(pk, rr.run_num, c->path);
    rv_put_be64(pk + pkn, a.size);
    rv_put_be32(pv, ptr.segment);
    rv_put_be32(pv + 4, ptr.offset);
    rv_put_be32(pv + 8, ptr.len);
    rv_put_be16(pv + 12, cmd_no);
    rv_put_be32(pv + 14, (uint32_t)c->data.len);
    rc = store__put(w, STORE_DB_ARTPART, pk, pkn + 8, pv, sizeof pv);
    a.size += c->data.len;
    if (rc == RV_OK && a.is_complete)
        rc = store__artifact_complete(w, rr.run_num, c->path, &a);
    if (rc == RV_OK)
        rc = store__artrec_put(w, k, kn, &a);
    return rc;
}

/* On purge: drop one reference to the artifact's blob; the owner's parts
 * go when the last reference does. Incomplete uploads drop their parts. */
int
store__artifact_release(struct store_wctx *w, const MDB_val *k,
                        const MDB_val *v, void *data)
{
    const struct store__purge *p = data;
    struct store__artrec a;
    char path[CONTRACT_MAX_ARTIFACT_PATH_BYTES + 1];
    if (store__artrec_decode(v, &a) != RV_OK || k->mv_size < 8 ||
        k->mv_size - 8 > CONTRACT_MAX_ARTIFACT_PATH_BYTES)
        return RV_ECORRUPT;
    memcpy(path, (const uint8_t *)k->mv_data + 8, k->mv_size - 8);
    path[k->mv_size - 8] = '\0';
    uint8_t pre[8 + 2 + CONTRACT_MAX_ARTIFACT_PATH_BYTES];
    if (!a.is_complete) {
        size_t pn = store__artpart_prefix(pre, p->run_num, path);
        return store__del_prefix(w, STORE_DB_ARTPART, pre, pn, NULL, NULL);
    }
    MDB_val bv;
    int rc = store__get(w->txn, w->s->dbi[STORE_DB_BLOB], a.sha256, 32, &bv,
                        w->errmsg);
    if (rc != RV_OK)
        return rc == RV_ENOTFOUND ? RV_ECORRUPT : rc;
    uint8_t blob[8 + 8 + 2 + CONTRACT_MAX_ARTIFACT_PATH_BYTES];
    if (bv.mv_size < 18 || bv.mv_size > sizeof blob)
        return RV_ECORRUPT;
    size_t bn = bv.mv_size;
    memcpy(blob, bv.mv_data, bn);
    uint64_t refs = rv_get_be64(blob);
    if (refs > 1) {
        rv_put_be64(blob, refs - 1);
        return store__put(w, STORE_DB_BLOB, a.sha256, 32, blob, bn);
    }
    rc = store__del(w, STORE_DB_BLOB, a.sha256, 32);
    size_t pn = store__artpart_prefix(pre, a.owner_run, a.owner_path);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_ARTPART, pre, pn, NULL, NULL);
    return rc;
}

/* ---- Reads ------------------------------------------------------------- */

void
store_artifact_free(struct store_artifact *art)
{
    free(art->path);
    free(art->content_type);
    memset(art, 0, sizeof *art);
}

/* Find the artifact record and its owner's part prefix. */
static int
store__artifact_find(struct store_read *r, const char *run_id, const char *path,
                     struct store_artifact *art, uint8_t *owner_prefix,
                     size_t *owner_len, char *errmsg)
{
    uint64_t run_num;
    size_t pn = strlen(path);
    if (pn == 0 || pn > CONTRACT_MAX_ARTIFACT_PATH_BYTES) {
        rv_errmsg_printf(errmsg, "artifact path must be 1..%d bytes",
                         CONTRACT_MAX_ARTIFACT_PATH_BYTES);
        return RV_EINVAL;
    }
    int rc = store__read_run_num(r, run_id, &run_num, errmsg);
    if (rc != RV_OK)
        return rc;
    uint8_t k[8 + CONTRACT_MAX_ARTIFACT_PATH_BYTES];
    rv_put_be64(k, run_num);
    memcpy(k + 8, path, pn);
    MDB_val v;
    rc = store__get(r->txn, r->s->dbi[STORE_DB_ART], k, 8 + pn, &v, errmsg);
    if (rc == RV_ENOTFOUND)
        rv_errmsg_printf(errmsg, "run '%.64s' has no artifact '%.64s'", run_id,
                         path);
    if (rc != RV_OK)
        return rc;
    const uint8_t *p = v.mv_data, *end = p + v.mv_size;
    if (v.mv_size < 43 || end - p < 43 + rv_get_be16(p + 41) + 10)
        return RV_ECORRUPT;
    uint16_t cn = rv_get_be16(p + 41);
    const uint8_t *o = p + 43 + cn;
    uint16_t on = rv_get_be16(o + 8);
    if (end - o != 10 + on)
        return RV_ECORRUPT;
    memset(art, 0, sizeof *art);
    art->is_complete = p[0];
    art->size = rv_get_be64(p + 1);
    memcpy(art->sha256, p + 9, 32);
    art->path = store__strndup(path, pn);
    art->content_type = store__strndup((const char *)p + 43, cn);
    if (art->path == NULL || art->content_type == NULL) {
        store_artifact_free(art);
        return RV_ENOMEM;
    }
    if (owner_prefix != NULL) {
        memcpy(owner_prefix, o, 8);
        rv_put_be16(owner_prefix + 8, on);
        memcpy(owner_prefix + 10, o + 10, on);
        *owner_len = 10u + on;
    }
    return RV_OK;
}

int
store_artifact_get(struct store_read *r, const char *run_id, const char *path,
                   struct store_artifact *art, char *errmsg)
{
    return store__artifact_find(r, run_id, path, art, NULL, NULL, errmsg);
}

void
store_artifacts_free(struct store_artifact *arts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_artifact_free(&arts[i]);
    free(arts);
}

int
store_artifacts_list(struct store_read *r, const char *run_id,
                     struct store_artifact **arts, size_t *n_arts, char *errmsg)
{
    uint64_t run_num;
    uint8_t pre[8];
    char path[CONTRACT_MAX_ARTIFACT_PATH_BYTES + 1];
    MDB_cursor *cur;
    size_t n = 0, cap = 0;
    struct store_artifact *as = NULL;
    *arts = NULL;
    *n_arts = 0;
    int rc = store__read_run_num(r, run_id, &run_num, errmsg);
    if (rc != RV_OK)
        return rc;
    rv_put_be64(pre, run_num);
    rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_ART], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    MDB_val k = {8, pre}, v;
    int err = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size > 8 && memcmp(k.mv_data, pre, 8) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (n == CONTRACT_MAX_ARTIFACTS_LISTED)
            break;
        if (k.mv_size - 8 > CONTRACT_MAX_ARTIFACT_PATH_BYTES) {
            err = RV_ECORRUPT;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            struct store_artifact *p = realloc(as, cap * sizeof *as);
            if (p == NULL) {
                err = RV_ENOMEM;
                break;
            }
            as = p;
        }
        memcpy(path, (const char *)k.mv_data + 8, k.mv_size - 8);
        path[k.mv_size - 8] = '\0';
        err = store__artifact_find(r, run_id, path, &as[n], NULL, NULL, errmsg);
        if (err != RV_OK)
            break;
        n++;
    }
    mdb_cursor_close(cur);
    if (err != RV_OK) {
        store_artifacts_free(as, n);
        return err;
    }
    *arts = as;
    *n_arts = n;
    return RV_OK;
}

int
store_artifact_read(struct store_read *r, const char *run_id, const char *path,
                    uint64_t offset, size_t n, struct rv_buf *out, char *errmsg)
{
    struct store_artifact art;
    uint8_t pre[10 + CONTRACT_MAX_ARTIFACT_PATH_BYTES + 8];
    size_t pn;
    int rc = store__artifact_find(r, run_id, path, &art, pre, &pn, errmsg);
    if (rc != RV_OK)
        return rc;
    uint64_t size = art.size;
    store_artifact_free(&art);
    rv_buf_reset(out);
    if (offset >= size)
        return RV_OK;
    uint64_t end_off = size - offset < n ? size : offset + n;
    MDB_cursor *cur;
    rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_ARTPART], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    MDB_val k = {pn, pre}, v;
    struct rv_buf rec;
    rv_buf_init(&rec);
    int err = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size == pn + 8 && memcmp(k.mv_data, pre, pn) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t part_off = rv_get_be64((const uint8_t *)k.mv_data + pn);
        const uint8_t *pv = v.mv_data;
        if (v.mv_size != 18) {
            err = RV_ECORRUPT;
            break;
        }
        uint64_t part_len = rv_get_be32(pv + 14);
        if (part_off >= end_off)
            break;
        if (part_off + part_len <= offset)
            continue;
        struct vlog_ptr ptr = {rv_get_be32(pv), rv_get_be32(pv + 4),
                               rv_get_be32(pv + 8)};
        uint16_t cmd_no = rv_get_be16(pv + 12);
        Rv__CommandBatch *b = NULL;
        err = vlog_read(r->s->vlog, ptr, &rec, NULL, errmsg);
        if (err == RV_OK)
            err = proto_batch_decode(rec.data, rec.len, &b, errmsg);
        if (err != RV_OK) {
            err = err == RV_EMALFORMED ? RV_ECORRUPT : err;
            break;
        }
        if (cmd_no >= b->n_commands ||
            b->commands[cmd_no]->body_case !=
                RV__COMMAND__BODY_ARTIFACT_CHUNK ||
            b->commands[cmd_no]->artifact_chunk->data.len != part_len) {
            proto_batch_free(b);
            err = RV_ECORRUPT;
            break;
        }
        const uint8_t *data = b->commands[cmd_no]->artifact_chunk->data.data;
        uint64_t from = offset > part_off ? offset - part_off : 0;
        uint64_t to =
            end_off - part_off < part_len ? end_off - part_off : part_len;
        rv_buf_append(out, data + from, (size_t)(to - from));
        proto_batch_free(b);
        if (out->is_failed) {
            err = RV_ENOMEM;
            break;
        }
    }
    mdb_cursor_close(cur);
    rv_buf_free(&rec);
    return err;
}
