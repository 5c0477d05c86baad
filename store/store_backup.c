/* The source side of an online backup (store.h, "Backup"): the applied
 * index and digest of one read transaction, and the vlog files that hold
 * every record up to that index, opened at once.
 *
 * Why the vlog and not index.mdb: the vlog up to index N is the archive
 * itself (every applied command) and never changes below N: sealed
 * segments are immutable and the open one only grows. A copy of that
 * prefix plus (N, digest) is a consistent backup whatever the node does
 * next; a restore rebuilds the index by replaying it and must reach the
 * same digest, which is a complete check of the backup. LMDB's own copy
 * (mdb_env_copyfd2) takes its own read transaction, so its index could not
 * be tied to the vlog cut without a second pass; replaying is what
 * verify-backup has to do anyway.
 *
 * A compacted vlog: the set is the one readers use when the backup
 * begins (vlog_pin): the rewritten segments, the checkpoint's image and
 * the manifest naming them. A compaction that commits while the backup
 * runs renames and unlinks files, but the session holds the descriptors
 * of the set it pinned, so it never mixes the old set and the new. */
#include "base/clock.h"
#include "store/store_int.h"
#include "store/vlog.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE__BACKUP_HASH_BLOCK (1u << 20)

static int
store__file_cmp(const void *a, const void *b)
{
    const struct store_backup_file *x = a, *y = b;
    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The end of the last record with index <= upto in segment f (read through
 * its descriptor): the bytes of it that belong to the backup. */
static int
store__cut(struct store_backup_file *f, uint64_t upto, uint64_t file_bytes,
           char *errmsg)
{
    uint64_t off = VLOG_SEGMENT_HEADER, cut = VLOG_SEGMENT_HEADER;
    uint8_t h[VLOG_RECORD_HEADER];
    while (off + VLOG_RECORD_HEADER <= file_bytes) {
        if (vlog_pread_full(f->fd, h, sizeof h, off) != 0) {
            rv_errmsg_printf(errmsg, "reading vlog/%s at offset %llu: %s",
                             f->name, (unsigned long long)off, strerror(errno));
            return RV_EIO;
        }
        uint64_t len = rv_get_be32(h), index = rv_get_be64(h + 8);
        uint32_t type = rv_get_be32(h + 16);
        if (type != VLOG_TYPE_BATCH || index > upto ||
            off + VLOG_RECORD_HEADER + len > file_bytes)
            break;
        off += VLOG_RECORD_HEADER + len;
        cut = off;
        if (index == upto)
            break;
    }
    f->bytes = cut;
    return RV_OK;
}

void
store_backup_end(struct store_backup *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n_files; i++) {
        if (b->files[i].fd >= 0)
            close(b->files[i].fd);
        free(b->files[i].read_ctx);
    }
    free(b->files);
    b->files = NULL;
    b->n_files = 0;
}

/* Keep the pinned files b needs (the segments with records up to
 * b->index, the image and the manifest), taking their descriptors from
 * p (set to -1 there). */
static int
store__backup_files(struct store_backup *b, struct vlog_pin_file *p, size_t n,
                    char *errmsg)
{
    b->files = calloc(n ? n : 1, sizeof *b->files);
    if (b->files == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint8_t h[VLOG_SEGMENT_HEADER];
        if (p[i].number > 0) {
            if (p[i].bytes < VLOG_SEGMENT_HEADER ||
                vlog_pread_full(p[i].fd, h, sizeof h, 0) != 0 ||
                memcmp(h, "RVVLOG01", 8) != 0) {
                rv_errmsg_printf(errmsg,
                                 "vlog/%s is not a vlog segment (short or "
                                 "bad header)",
                                 p[i].name);
                return RV_ECORRUPT;
            }
            if (rv_get_be64(h + 24) > b->index)
                continue; /* Only records after the backup's index. */
        }
        struct store_backup_file *f = &b->files[b->n_files++];
        f->number = p[i].number;
        snprintf(f->name, sizeof f->name, "%s", p[i].name);
        f->fd = p[i].fd;
        p[i].fd = -1;
        f->bytes = p[i].bytes;
        f->is_immutable = strcmp(p[i].name, VLOG_MANIFEST_NAME) != 0;
    }
    if (b->n_files == 0)
        return RV_OK;
    qsort(b->files, b->n_files, sizeof *b->files, store__file_cmp);
    /* Only the newest kept segment can hold records past the index. */
    struct store_backup_file *lastf = &b->files[b->n_files - 1];
    if (lastf->number == 0)
        return RV_OK;
    return store__cut(lastf, b->index, lastf->bytes, errmsg);
}

int
store_backup_begin(struct store *s, struct store_backup *b, char *errmsg)
{
    memset(b, 0, sizeof *b);
    /* The index first, then the file set: every record up to the index
     * is in the vlog by then. A compaction whose checkpoint is past the
     * index committed in between (its image stands for records the
     * backup must end before), or one switching files right now: take
     * both again. */
    int rc = RV_OK;
    for (int attempt = 0; attempt < 50; attempt++) {
        struct store_read *r;
        rc = store_read_begin(s, STORE_EVERY_TEAM, &r, errmsg);
        if (rc != RV_OK)
            return rc;
        b->index = store_read_applied_index(r);
        store_read_digest(r, b->digest);
        store_read_end(r);
        struct vlog_checkpoint ck;
        struct vlog_pin_file *p = NULL;
        size_t n = 0;
        rc = vlog_pin(s->vlog, &ck, &p, &n, errmsg);
        if (rc == RV_OK && ck.index > b->index) {
            rv_errmsg_printf(errmsg,
                             "a compaction at %llu committed after index "
                             "%llu was pinned",
                             (unsigned long long)ck.index,
                             (unsigned long long)b->index);
            rc = RV_EUNAVAILABLE;
        }
        if (rc == RV_OK) {
            b->checkpoint = ck.index;
            rc = store__backup_files(b, p, n, errmsg);
        }
        vlog_pin_free(p, n);
        if (rc == RV_OK)
            return RV_OK;
        store_backup_end(b);
        if (rc != RV_EUNAVAILABLE)
            return rc;
        rv_clock_sleep_ms(20);
    }
    return rc;
}

int
store_backup_sha256(const struct store_backup_file *f, uint8_t out[32],
                    char *errmsg)
{
    struct sha256_ctx ctx;
    uint8_t *buf = malloc(STORE__BACKUP_HASH_BLOCK);
    if (buf == NULL)
        return RV_ENOMEM;
    sha256_init(&ctx);
    uint64_t off = 0;
    while (off < f->bytes) {
        size_t n = f->bytes - off < STORE__BACKUP_HASH_BLOCK
                       ? (size_t)(f->bytes - off)
                       : STORE__BACKUP_HASH_BLOCK;
        if (vlog_pread_full(f->fd, buf, n, off) != 0) {
            rv_errmsg_printf(errmsg, "reading vlog/%s at offset %llu: %s",
                             f->name, (unsigned long long)off,
                             errno ? strerror(errno) : "short file");
            free(buf);
            return RV_EIO;
        }
        sha256_update(&ctx, n, buf);
        off += n;
    }
    sha256_digest(&ctx, 32, out);
    free(buf);
    return RV_OK;
}

/* Hash the n bytes at offset if they continue the in-order prefix read so
 * far; finish the hash at the file's last byte. */
static void
store__backup_read_hash(struct store_backup_file *f, uint64_t offset,
                        const void *buf, size_t n)
{
    if (f->has_read_sha256 || offset != f->read_hashed || n == 0)
        return;
    if (f->read_ctx == NULL) {
        if ((f->read_ctx = malloc(sizeof(struct sha256_ctx))) == NULL)
            return; /* Hashed again on request instead. */
        sha256_init(f->read_ctx);
    }
    sha256_update(f->read_ctx, n, buf);
    f->read_hashed += n;
    if (f->read_hashed == f->bytes) {
        sha256_digest(f->read_ctx, 32, f->read_sha256);
        f->has_read_sha256 = 1;
        free(f->read_ctx);
        f->read_ctx = NULL;
    }
}

int
store_backup_read(struct store_backup_file *f, uint64_t offset, void *buf,
                  size_t n, char *errmsg)
{
    if (offset > f->bytes || n > f->bytes - offset) {
        rv_errmsg_printf(errmsg,
                         "vlog/%s: bytes [%llu, %llu) are past the %llu of "
                         "the backup",
                         f->name, (unsigned long long)offset,
                         (unsigned long long)(offset + n),
                         (unsigned long long)f->bytes);
        return RV_EINVAL;
    }
    if (vlog_pread_full(f->fd, buf, n, offset) != 0) {
        rv_errmsg_printf(errmsg, "reading vlog/%s at offset %llu: %s", f->name,
                         (unsigned long long)offset,
                         errno ? strerror(errno) : "short file");
        return RV_EIO;
    }
    store__backup_read_hash(f, offset, buf, n);
    return RV_OK;
}
