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
 * verify-backup has to do anyway. */
#include "store/store_int.h"
#include "store/vlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE__BACKUP_HASH_BLOCK (1u << 20)

/* A segment's name NNNNNNNN.seg -> its number, or 0. */
static uint32_t
store__seg_number(const char *name)
{
    if (strlen(name) != 12 || strcmp(name + 8, ".seg") != 0)
        return 0;
    uint32_t n = 0;
    for (int i = 0; i < 8; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        n = n * 10 + (uint32_t)(name[i] - '0');
    }
    return n;
}

static int
store__file_cmp(const void *a, const void *b)
{
    const struct store_backup_file *x = a, *y = b;
    return x->number < y->number ? -1 : x->number > y->number;
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

/* Open segment name of vlog dir vdir into f if it holds records at or
 * below upto (its first index <= upto). 1 if kept, 0 if not, or -RV_*. */
static int
store__open_seg(const char *vdir, const char *name, uint64_t upto,
                struct store_backup_file *f, uint64_t *file_bytes, char *errmsg)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", vdir, name) >=
        sizeof path) {
        rv_errmsg_printf(errmsg, "the path %s/%s is too long", vdir, name);
        return -RV_EINVAL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rv_errmsg_printf(errmsg, "open %s: %s", path, strerror(errno));
        return errno == ENOENT ? -RV_ENOTFOUND : -RV_EIO;
    }
    struct stat st;
    uint8_t h[VLOG_SEGMENT_HEADER];
    if (fstat(fd, &st) != 0 || st.st_size < VLOG_SEGMENT_HEADER ||
        vlog_pread_full(fd, h, sizeof h, 0) != 0 ||
        memcmp(h, "RVVLOG01", 8) != 0) {
        rv_errmsg_printf(
            errmsg, "%s is not a vlog segment (short or bad header)", path);
        close(fd);
        return -RV_ECORRUPT;
    }
    if (rv_get_be64(h + 24) > upto) {
        close(fd);
        return 0;
    }
    f->fd = fd;
    memcpy(f->name, name, 13); /* Checked: 12 bytes and the NUL. */
    *file_bytes = (uint64_t)st.st_size;
    f->bytes = (uint64_t)st.st_size;
    return 1;
}

void
store_backup_end(struct store_backup *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n_files; i++)
        if (b->files[i].fd >= 0)
            close(b->files[i].fd);
    free(b->files);
    b->files = NULL;
    b->n_files = 0;
}

static int
store__backup_files(struct store *s, struct store_backup *b, char *errmsg)
{
    char vdir[2048];
    if ((size_t)snprintf(vdir, sizeof vdir, "%s/vlog", s->dir) >= sizeof vdir) {
        rv_errmsg_printf(errmsg, "the data dir's path is too long");
        return RV_EINVAL;
    }
    DIR *d = opendir(vdir);
    if (d == NULL) {
        rv_errmsg_printf(errmsg, "opendir %s: %s", vdir, strerror(errno));
        return RV_EIO;
    }
    size_t cap = 0;
    uint64_t last_bytes = 0;
    int rc = RV_OK;
    struct dirent *e;
    while (rc == RV_OK && (e = readdir(d)) != NULL) {
        uint32_t number = store__seg_number(e->d_name);
        if (number == 0)
            continue;
        if (b->n_files == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            void *p = realloc(b->files, ncap * sizeof *b->files);
            if (p == NULL) {
                rc = RV_ENOMEM;
                break;
            }
            b->files = p;
            cap = ncap;
        }
        struct store_backup_file *f = &b->files[b->n_files];
        memset(f, 0, sizeof *f);
        f->fd = -1;
        f->number = number;
        uint64_t fb = 0;
        int k = store__open_seg(vdir, e->d_name, b->index, f, &fb, errmsg);
        if (k < 0)
            rc = -k;
        else if (k == 1)
            b->n_files++;
    }
    closedir(d);
    if (rc != RV_OK)
        return rc;
    if (b->n_files == 0)
        return RV_OK;
    qsort(b->files, b->n_files, sizeof *b->files, store__file_cmp);
    /* Only the newest kept segment can hold records past the index. */
    struct store_backup_file *lastf = &b->files[b->n_files - 1];
    last_bytes = lastf->bytes;
    return store__cut(lastf, b->index, last_bytes, errmsg);
}

int
store_backup_begin(struct store *s, struct store_backup *b, char *errmsg)
{
    memset(b, 0, sizeof *b);
    /* A compacted vlog starts from its checkpoint image (ARCHITECTURE.md,
     * "Compaction"); a backup holds segments only, whose replay cannot
     * pass a compacted record. Refused until backups carry the image. */
    struct vlog_checkpoint ck;
    vlog_checkpoint(s->vlog, &ck);
    if (ck.index > 0) {
        rv_errmsg_printf(errmsg,
                         "this node's vlog was compacted at index %llu: a "
                         "backup of a compacted vlog needs its checkpoint "
                         "image, which backups do not carry yet",
                         (unsigned long long)ck.index);
        return RV_ESTATE;
    }
    /* A segment may vanish between the listing and the open (a compaction
     * replaces sealed segments under new names): list again. */
    for (int attempt = 0; attempt < 8; attempt++) {
        struct store_read *r;
        int rc = store_read_begin(s, STORE_EVERY_TEAM, &r, errmsg);
        if (rc != RV_OK)
            return rc;
        b->index = store_read_applied_index(r);
        store_read_digest(r, b->digest);
        store_read_end(r);
        rc = store__backup_files(s, b, errmsg);
        if (rc == RV_OK)
            return RV_OK;
        store_backup_end(b);
        if (rc != RV_ENOTFOUND)
            return rc;
    }
    return RV_EUNAVAILABLE;
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

int
store_backup_read(const struct store_backup_file *f, uint64_t offset, void *buf,
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
    return RV_OK;
}
