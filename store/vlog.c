/* The value log: append-only, checksummed segments (contract in vlog.h).
 * This file: open, append, rotation and seal, sync, reads and iterators;
 * recovery and the offline checks are in vlog_recover.c. */
#define _DEFAULT_SOURCE /* pwritev, fdatasync, EDQUOT */
#include "store/vlog.h"

#include "base/crc32c.h"
#include "base/err.h"
#include "base/fsdir.h"
#include "store/vlog_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static const char vlog_magic[8] = {'R', 'V', 'V', 'L', 'O', 'G', '0', '1'};

struct vlog_iter {
    struct vlog *v;
    size_t seg;      /* Index into v->segs. */
    uint64_t offset; /* Next record offset in that segment. */
    uint64_t from_index;
    struct rv_buf buf;
};

/* ---- Helpers ----------------------------------------------------------- */

int
vlog__err_errno(int err, char *errmsg, const char *what, const char *path)
{
    rv_errmsg_printf(errmsg, "%s %s: %s", what, path, strerror(err));
    return err == ENOSPC || err == EDQUOT ? RV_ENOSPACE : RV_EIO;
}

void
vlog__seg_path(const char *dir, uint32_t number, uint64_t gen, char *out,
               size_t size)
{
    if (gen == 0)
        snprintf(out, size, "%s/%08u.seg", dir, number);
    else
        snprintf(out, size, "%s/%08u.c%llu.seg", dir, number,
                 (unsigned long long)gen);
}

uint32_t
vlog__record_crc(const uint8_t *hdr, const uint8_t *payload, size_t n)
{
    uint32_t crc = rv_crc32c(0, hdr, 4);
    crc = rv_crc32c(crc, hdr + 8, VLOG_RECORD_HEADER - 8);
    return rv_crc32c(crc, payload, n);
}

int
vlog_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got == 0 ? -2 : -1;
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

int
vlog__write_full(int fd, const struct iovec *iov, int n_iov, uint64_t off)
{
    struct iovec v[3];
    memcpy(v, iov, (size_t)n_iov * sizeof *v);
    int i = 0;
    while (i < n_iov) {
        ssize_t w = pwritev(fd, v + i, n_iov - i, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        off += (uint64_t)w;
        size_t left = (size_t)w;
        while (i < n_iov && left >= v[i].iov_len)
            left -= v[i++].iov_len;
        if (i < n_iov) {
            v[i].iov_base = (uint8_t *)v[i].iov_base + left;
            v[i].iov_len -= left;
        }
    }
    return 0;
}

int
vlog__fsync_dir(const char *dir, char *errmsg)
{
    int err = rv_fsync_dir(dir);
    return err == 0 ? RV_OK : vlog__err_errno(err, errmsg, "fsync", dir);
}

int
vlog__header_parse(const uint8_t *hdr, uint64_t off, uint64_t size,
                   uint32_t *len, uint64_t *index, uint32_t *type)
{
    if (size - off < VLOG_RECORD_HEADER)
        return 0;
    *len = rv_get_be32(hdr);
    *index = rv_get_be64(hdr + 8);
    *type = rv_get_be32(hdr + 16);
    if (*len > VLOG_MAX_PAYLOAD_BYTES || size - off - VLOG_RECORD_HEADER < *len)
        return 0;
    return *type == VLOG_TYPE_BATCH || *type == VLOG_TYPE_SEAL;
}

int
vlog__record_read(int fd, const char *path, uint64_t off, uint64_t size,
                  struct rv_buf *buf, uint32_t *len, uint64_t *index,
                  uint32_t *type, char *errmsg)
{
    uint8_t hdr[VLOG_RECORD_HEADER];
    if (size < off || size - off < VLOG_RECORD_HEADER ||
        vlog_pread_full(fd, hdr, sizeof hdr, off) != 0) {
        rv_errmsg_printf(errmsg, "%s offset %llu: short record header", path,
                         (unsigned long long)off);
        return RV_ECORRUPT;
    }
    if (!vlog__header_parse(hdr, off, size, len, index, type)) {
        rv_errmsg_printf(errmsg, "%s offset %llu: bad record header", path,
                         (unsigned long long)off);
        return RV_ECORRUPT;
    }
    rv_buf_reset(buf);
    if (rv_buf_reserve(buf, *len ? *len : 1) != RV_OK)
        return RV_ENOMEM;
    if (*len > 0 &&
        vlog_pread_full(fd, buf->data, *len, off + VLOG_RECORD_HEADER) != 0) {
        rv_errmsg_printf(errmsg, "%s offset %llu: short record", path,
                         (unsigned long long)off);
        return RV_ECORRUPT;
    }
    buf->len = *len;
    if (vlog__record_crc(hdr, buf->data, *len) != rv_get_be32(hdr + 4)) {
        rv_errmsg_printf(errmsg, "%s offset %llu: record CRC mismatch", path,
                         (unsigned long long)off);
        return RV_ECORRUPT;
    }
    return RV_OK;
}

void
vlog__header_encode(uint8_t *h, uint32_t number, uint64_t first_index)
{
    memcpy(h, vlog_magic, 8);
    rv_put_be32(h + 8, VLOG_FORMAT_VERSION);
    rv_put_be32(h + 12, 0);
    rv_put_be64(h + 16, number);
    rv_put_be64(h + 24, first_index);
}

int
vlog__header_check(const uint8_t *h, uint32_t number, uint64_t *first_index)
{
    if (memcmp(h, vlog_magic, 8) != 0 ||
        rv_get_be32(h + 8) != VLOG_FORMAT_VERSION ||
        rv_get_be64(h + 16) != number)
        return 0;
    *first_index = rv_get_be64(h + 24);
    return 1;
}

int
vlog__header_newer(const uint8_t *h, const char *path, char *errmsg)
{
    if (memcmp(h, vlog_magic, 8) != 0 ||
        rv_get_be32(h + 8) <= VLOG_FORMAT_VERSION)
        return RV_OK;
    rv_errmsg_printf(errmsg,
                     "%s: segment format version %u; this runvault reads "
                     "version %d (a newer runvault wrote it: run that "
                     "version)",
                     path, rv_get_be32(h + 8), VLOG_FORMAT_VERSION);
    return RV_EVERSION;
}

/* ---- Segment list ------------------------------------------------------ */

int
vlog__seg_add(struct vlog *v, struct vlog_seg *seg)
{
    pthread_mutex_lock(&v->lock);
    if (v->n_segs == v->cap_segs) {
        size_t cap = v->cap_segs ? 2 * v->cap_segs : 16;
        void *p = realloc(v->segs, cap * sizeof *v->segs);
        if (p == NULL) {
            pthread_mutex_unlock(&v->lock);
            return RV_ENOMEM;
        }
        v->segs = p;
        v->cap_segs = cap;
    }
    v->segs[v->n_segs++] = seg;
    pthread_mutex_unlock(&v->lock);
    return RV_OK;
}

void
vlog__seg_free(struct vlog_seg *seg)
{
    if (seg != NULL) {
        close(seg->fd);
        free(seg);
    }
}

/* ---- Open / close ------------------------------------------------------ */

static int
vlog_seg_create(struct vlog *v, uint32_t number, uint64_t first_index,
                char *errmsg)
{
    char path[4096];
    uint8_t h[VLOG_SEGMENT_HEADER];
    vlog__seg_path(v->dir, number, 0, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return vlog__err_errno(errno, errmsg, "create", path);
    vlog__header_encode(h, number, first_index);
    struct iovec iov = {h, sizeof h};
    int rc = RV_OK;
    if (vlog__write_full(fd, &iov, 1, 0) != 0 || fsync(fd) != 0)
        rc = vlog__err_errno(errno, errmsg, "write", path);
    if (rc == RV_OK)
        rc = vlog__fsync_dir(v->dir, errmsg);
    struct vlog_seg *seg = rc == RV_OK ? calloc(1, sizeof *seg) : NULL;
    if (rc == RV_OK && seg == NULL)
        rc = RV_ENOMEM;
    if (rc != RV_OK) {
        close(fd);
        return rc;
    }
    seg->number = number;
    seg->first_index = first_index;
    seg->fd = fd;
    atomic_store(&seg->size, VLOG_SEGMENT_HEADER);
    rc = vlog__seg_add(v, seg);
    if (rc != RV_OK)
        vlog__seg_free(seg);
    v->n_in_segment = 0;
    return rc;
}

int
vlog_open(struct vlog **out, const struct vlog_config *cfg, char *errmsg)
{
    uint64_t seg_bytes =
        cfg->segment_bytes ? cfg->segment_bytes : VLOG_DEFAULT_SEGMENT_BYTES;
    if (seg_bytes < VLOG_MIN_SEGMENT_BYTES ||
        seg_bytes > VLOG_MAX_SEGMENT_BYTES) {
        rv_errmsg_printf(errmsg, "segment size %llu outside [%u, %u]",
                         (unsigned long long)seg_bytes, VLOG_MIN_SEGMENT_BYTES,
                         VLOG_MAX_SEGMENT_BYTES);
        return RV_EINVAL;
    }
    int err = rv_mkdir_durable(cfg->dir);
    if (err != 0)
        return vlog__err_errno(err, errmsg, "mkdir", cfg->dir);
    struct vlog *v = calloc(1, sizeof *v);
    if (v == NULL || (v->dir = strdup(cfg->dir)) == NULL) {
        free(v);
        return RV_ENOMEM;
    }
    pthread_mutex_init(&v->lock, NULL);
    pthread_rwlock_init(&v->swap, NULL);
    v->segment_bytes = seg_bytes;
    v->log = cfg->log;
    uint32_t *nums = NULL;
    uint64_t *gens = NULL;
    size_t n = 0;
    int rc = RV_OK;
    v->man = calloc(1, sizeof *v->man);
    if (v->man == NULL)
        rc = RV_ENOMEM;
    if (rc == RV_OK)
        rc = vlog__list(v->dir, 1, v->log, &nums, &gens, &n, v->man, errmsg);
    for (size_t i = 0; rc == RV_OK && i < n; i++)
        rc = vlog__open_one(v, nums[i], gens[i], i + 1 == n, errmsg);
    if (rc == RV_OK && n == 0)
        rc = vlog_seg_create(v, 1, 1, errmsg);
    free(nums);
    free(gens);
    if (rc != RV_OK) {
        vlog_close(v);
        return rc;
    }
    *out = v;
    return RV_OK;
}

void
vlog_close(struct vlog *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n_segs; i++)
        vlog__seg_free(v->segs[i]);
    free(v->segs);
    if (v->man != NULL)
        vlog__manifest_free(v->man);
    free(v->man);
    pthread_mutex_destroy(&v->lock);
    pthread_rwlock_destroy(&v->swap);
    free(v->dir);
    free(v);
}

/* ---- Writing ----------------------------------------------------------- */

static int
vlog_write_record(struct vlog *v, struct vlog_seg *seg, uint64_t index,
                  uint32_t type, const void *payload, size_t len, char *errmsg)
{
    uint8_t hdr[VLOG_RECORD_HEADER];
    uint64_t off = atomic_load(&seg->size);
    rv_put_be32(hdr, (uint32_t)len);
    rv_put_be64(hdr + 8, index);
    rv_put_be32(hdr + 16, type);
    rv_put_be32(hdr + 4, vlog__record_crc(hdr, payload, len));
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)payload, len}};
    if (vlog__write_full(seg->fd, iov, len ? 2 : 1, off) != 0) {
        char path[4096];
        vlog__seg_path(v->dir, seg->number, seg->gen, path, sizeof path);
        v->is_failed = 1;
        return vlog__err_errno(errno, errmsg, "write", path);
    }
    atomic_store(&seg->size, off + VLOG_RECORD_HEADER + len);
    return RV_OK;
}

static int
vlog_rotate(struct vlog *v, uint64_t next_index, char *errmsg)
{
    struct vlog_seg *cur = v->segs[v->n_segs - 1];
    uint8_t seal[VLOG_SEAL_PAYLOAD];
    rv_put_be64(seal, v->n_in_segment);
    rv_put_be64(seal + 8, v->last_index);
    int rc = vlog_write_record(v, cur, v->last_index, VLOG_TYPE_SEAL, seal,
                               sizeof seal, errmsg);
    if (rc == RV_OK && fdatasync(cur->fd) != 0) {
        v->is_failed = 1;
        rc = vlog__err_errno(errno, errmsg, "fdatasync", v->dir);
    }
    if (rc == RV_OK)
        rc = vlog_seg_create(v, cur->number + 1, next_index, errmsg);
    if (rc != RV_OK)
        v->is_failed = 1;
    return rc;
}

int
vlog_append(struct vlog *v, uint64_t index, uint32_t type, const void *payload,
            size_t len, struct vlog_ptr *ptr, char *errmsg)
{
    if (v->is_failed) {
        rv_errmsg_printf(errmsg, "vlog stopped after an earlier I/O error");
        return RV_EIO;
    }
    if (type != VLOG_TYPE_BATCH || index <= v->last_index ||
        len > VLOG_MAX_PAYLOAD_BYTES) {
        rv_errmsg_printf(errmsg,
                         "bad append: index %llu after %llu, type %u, "
                         "%zu bytes",
                         (unsigned long long)index,
                         (unsigned long long)v->last_index, type, len);
        return RV_EINVAL;
    }
    struct vlog_seg *cur = v->segs[v->n_segs - 1];
    uint64_t size = atomic_load(&cur->size);
    if (v->n_in_segment > 0 &&
        size + VLOG_RECORD_HEADER + len > v->segment_bytes) {
        int rc = vlog_rotate(v, index, errmsg);
        if (rc != RV_OK)
            return rc;
        cur = v->segs[v->n_segs - 1];
        size = atomic_load(&cur->size);
    }
    int rc = vlog_write_record(v, cur, index, type, payload, len, errmsg);
    if (rc != RV_OK)
        return rc;
    v->last_index = index;
    v->n_in_segment++;
    if (ptr != NULL) {
        ptr->segment = cur->number;
        ptr->offset = (uint32_t)size;
        ptr->len = (uint32_t)len;
    }
    return RV_OK;
}

int
vlog_sync(struct vlog *v, char *errmsg)
{
    if (v->is_failed) {
        rv_errmsg_printf(errmsg, "vlog stopped after an earlier I/O error");
        return RV_EIO;
    }
    struct vlog_seg *cur = v->segs[v->n_segs - 1];
    if (fdatasync(cur->fd) != 0) {
        /* After a failed sync the page cache may have dropped the data
         * (fsyncgate): never retry, stop. */
        v->is_failed = 1;
        return vlog__err_errno(errno, errmsg, "fdatasync", v->dir);
    }
    return RV_OK;
}

int
vlog_sync_fd(struct vlog *v, char *errmsg)
{
    if (v->is_failed) {
        rv_errmsg_printf(errmsg, "vlog stopped after an earlier I/O error");
        return -1;
    }
    int fd = fcntl(v->segs[v->n_segs - 1]->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        vlog__err_errno(errno, errmsg, "dup", v->dir);
    return fd;
}

void
vlog_set_failed(struct vlog *v)
{
    v->is_failed = 1;
}

uint64_t
vlog_last_index(const struct vlog *v)
{
    return v->last_index;
}

uint64_t
vlog_size_bytes(const struct vlog *v)
{
    uint64_t total = 0;
    pthread_mutex_lock((pthread_mutex_t *)&v->lock);
    for (size_t i = 0; i < v->n_segs; i++)
        total += atomic_load(&v->segs[i]->size);
    pthread_mutex_unlock((pthread_mutex_t *)&v->lock);
    return total;
}

size_t
vlog_segments(const struct vlog *v, struct vlog_segment_info *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock((pthread_mutex_t *)&v->lock);
    for (size_t i = 0; i + 1 < v->n_segs; i++, n++) {
        if (n < max)
            out[n] = (struct vlog_segment_info){v->segs[i]->number,
                                                v->segs[i]->first_index,
                                                v->segs[i + 1]->first_index - 1,
                                                atomic_load(&v->segs[i]->size)};
    }
    pthread_mutex_unlock((pthread_mutex_t *)&v->lock);
    return n;
}

/* ---- Reading ----------------------------------------------------------- */

/* The segment with the given number, or NULL. */
static struct vlog_seg *
vlog_seg_find(struct vlog *v, uint32_t number)
{
    struct vlog_seg *seg = NULL;
    pthread_mutex_lock(&v->lock);
    if (v->n_segs > 0) {
        uint32_t first = v->segs[0]->number;
        if (number >= first && number - first < v->n_segs)
            seg = v->segs[number - first];
    }
    pthread_mutex_unlock(&v->lock);
    return seg;
}

static int
vlog_read_locked(struct vlog *v, struct vlog_ptr ptr, struct rv_buf *out,
                 uint64_t *index, char *errmsg)
{
    char path[4096];
    struct vlog_seg *seg = vlog_seg_find(v, ptr.segment);
    if (seg == NULL) {
        rv_errmsg_printf(errmsg, "no vlog segment %08u", ptr.segment);
        return RV_ENOTFOUND;
    }
    uint64_t size = atomic_load(&seg->size);
    if ((uint64_t)ptr.offset + VLOG_RECORD_HEADER + ptr.len > size) {
        rv_errmsg_printf(errmsg, "vlog segment %08u offset %u beyond its end",
                         ptr.segment, ptr.offset);
        return RV_ENOTFOUND;
    }
    vlog__seg_path(v->dir, seg->number, seg->gen, path, sizeof path);
    uint32_t len, type;
    uint64_t idx;
    int rc = vlog__record_read(seg->fd, path, ptr.offset, size, out, &len, &idx,
                               &type, errmsg);
    if (rc == RV_OK && (len != ptr.len || type != VLOG_TYPE_BATCH)) {
        rv_errmsg_printf(errmsg,
                         "%s offset %u: record does not match its "
                         "pointer",
                         path, ptr.offset);
        rc = RV_ECORRUPT;
    }
    if (rc == RV_OK && index != NULL)
        *index = idx;
    return rc;
}

int
vlog_read(struct vlog *v, struct vlog_ptr ptr, struct rv_buf *out,
          uint64_t *index, char *errmsg)
{
    pthread_rwlock_rdlock(&v->swap);
    int rc = vlog_read_locked(v, ptr, out, index, errmsg);
    pthread_rwlock_unlock(&v->swap);
    return rc;
}

int
vlog_iter_open(struct vlog *v, uint64_t from_index, struct vlog_iter **out,
               char *errmsg)
{
    (void)errmsg;
    struct vlog_iter *it = calloc(1, sizeof *it);
    if (it == NULL)
        return RV_ENOMEM;
    it->v = v;
    it->from_index = from_index;
    rv_buf_init(&it->buf);
    /* Skip whole segments that end before from_index: the next segment's
     * first index bounds this one's records. */
    pthread_mutex_lock(&v->lock);
    while (it->seg + 1 < v->n_segs &&
           v->segs[it->seg + 1]->first_index <= from_index)
        it->seg++;
    pthread_mutex_unlock(&v->lock);
    it->offset = VLOG_SEGMENT_HEADER;
    *out = it;
    return RV_OK;
}

static int
vlog_iter_next_locked(struct vlog_iter *it, struct vlog_record *rec,
                      char *errmsg)
{
    struct vlog *v = it->v;
    for (;;) {
        pthread_mutex_lock(&v->lock);
        struct vlog_seg *seg = it->seg < v->n_segs ? v->segs[it->seg] : NULL;
        int is_last = it->seg + 1 >= v->n_segs;
        pthread_mutex_unlock(&v->lock);
        if (seg == NULL)
            return RV_ENOTFOUND;
        uint64_t size = atomic_load(&seg->size);
        if (it->offset >= size) {
            if (is_last)
                return RV_ENOTFOUND;
            it->seg++;
            it->offset = VLOG_SEGMENT_HEADER;
            continue;
        }
        char path[4096];
        uint32_t len, type;
        uint64_t index;
        vlog__seg_path(v->dir, seg->number, seg->gen, path, sizeof path);
        int rc = vlog__record_read(seg->fd, path, it->offset, size, &it->buf,
                                   &len, &index, &type, errmsg);
        if (rc != RV_OK)
            return rc;
        uint64_t at = it->offset;
        it->offset += VLOG_RECORD_HEADER + len;
        if (type != VLOG_TYPE_BATCH || index < it->from_index)
            continue;
        rec->index = index;
        rec->type = type;
        rec->payload = it->buf.data;
        rec->len = len;
        rec->ptr.segment = seg->number;
        rec->ptr.offset = (uint32_t)at;
        rec->ptr.len = len;
        return RV_OK;
    }
}

int
vlog_iter_next(struct vlog_iter *it, struct vlog_record *rec, char *errmsg)
{
    pthread_rwlock_rdlock(&it->v->swap);
    int rc = vlog_iter_next_locked(it, rec, errmsg);
    pthread_rwlock_unlock(&it->v->swap);
    return rc;
}

void
vlog_iter_close(struct vlog_iter *it)
{
    if (it == NULL)
        return;
    rv_buf_free(&it->buf);
    free(it);
}
