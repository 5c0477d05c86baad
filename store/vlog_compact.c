/* The value log's compaction (contract in vlog.h, "Compaction"): the
 * manifest, the listing of a directory by the manifest (with the removal
 * of a compaction's left overs at open), the rewrite of sealed segments
 * into new files of the same layout, and the atomic switch. The store
 * decides what a record loses (store_compact.c); this file only moves
 * bytes and files. */
#define _DEFAULT_SOURCE /* pread, usleep, as in vlog.c */
#include "base/clock.h"
#include "base/crc32c.h"
#include "base/err.h"
#include "store/vlog.h"
#include "store/vlog_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VLOG_MANIFEST_MAGIC  "RVCMPMF1"
#define VLOG_MANIFEST_HEADER 60
#define VLOG_MANIFEST_MAX    (VLOG_MANIFEST_HEADER + 12u * (1u << 20) + 4)
#define VLOG_HOLE_BLOCK      4096u

int vlog_compact_crash_at;
static _Atomic int vlog_compact_n_steps;

int
vlog_compact_steps(void)
{
    return atomic_load(&vlog_compact_n_steps);
}

int
vlog_compact_step(char *errmsg)
{
    int k = atomic_fetch_add(&vlog_compact_n_steps, 1) + 1;
    if (vlog_compact_crash_at > 0 && k == vlog_compact_crash_at) {
        rv_errmsg_printf(errmsg, "compaction stopped at step %d (test hook)",
                         k);
        return RV_EIO;
    }
    return RV_OK;
}

/* ---- Manifest ---------------------------------------------------------- */

void
vlog__manifest_free(struct vlog_manifest *m)
{
    free(m->numbers);
    free(m->gens);
    memset(m, 0, sizeof *m);
}

uint64_t
vlog__manifest_gen(const struct vlog_manifest *m, uint32_t number)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->numbers[mid] == number)
            return m->gens[mid];
        if (m->numbers[mid] < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static void
vlog_manifest_path(const char *dir, const char *suffix, char *out, size_t size)
{
    snprintf(out, size, "%s/%s%s", dir, VLOG_MANIFEST_NAME, suffix);
}

void
vlog_image_path(const char *dir, uint64_t index, char *out, size_t size)
{
    snprintf(out, size, "%s/image.%llu", dir, (unsigned long long)index);
}

static int
vlog_manifest_decode(const uint8_t *p, size_t len, const char *path,
                     struct vlog_manifest *m, char *errmsg)
{
    if (len < VLOG_MANIFEST_HEADER + 4 ||
        memcmp(p, VLOG_MANIFEST_MAGIC, 8) != 0) {
        rv_errmsg_printf(errmsg, "%s: not a compaction manifest", path);
        return RV_ECORRUPT;
    }
    uint32_t n = rv_get_be32(p + 56);
    if ((uint64_t)VLOG_MANIFEST_HEADER + 12ull * n + 4 != len ||
        rv_crc32c(0, p, len - 4) != rv_get_be32(p + len - 4)) {
        rv_errmsg_printf(errmsg, "%s: damaged (length or CRC)", path);
        return RV_ECORRUPT;
    }
    m->ck.index = rv_get_be64(p + 8);
    memcpy(m->ck.digest, p + 16, 16);
    memcpy(m->ck.content, p + 32, 16);
    m->ck.image_bytes = rv_get_be64(p + 48);
    m->numbers = calloc(n ? n : 1, sizeof *m->numbers);
    m->gens = calloc(n ? n : 1, sizeof *m->gens);
    if (m->numbers == NULL || m->gens == NULL)
        return RV_ENOMEM;
    m->n = n;
    for (uint32_t i = 0; i < n; i++) {
        m->numbers[i] = rv_get_be32(p + VLOG_MANIFEST_HEADER + 12 * i);
        m->gens[i] = rv_get_be64(p + VLOG_MANIFEST_HEADER + 12 * i + 4);
        if ((i > 0 && m->numbers[i] <= m->numbers[i - 1]) || m->gens[i] == 0 ||
            m->gens[i] > m->ck.index) {
            rv_errmsg_printf(errmsg, "%s: entry %u out of order", path, i);
            return RV_ECORRUPT;
        }
    }
    return RV_OK;
}

int
vlog__manifest_read(const char *dir, struct vlog_manifest *m, char *errmsg)
{
    char path[4096];
    struct stat st;
    memset(m, 0, sizeof *m);
    vlog_manifest_path(dir, "", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RV_OK
                               : vlog__err_errno(errno, errmsg, "open", path);
    int rc = RV_OK;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) != 0)
        rc = vlog__err_errno(errno, errmsg, "stat", path);
    else if (st.st_size < VLOG_MANIFEST_HEADER + 4 ||
             (uint64_t)st.st_size > VLOG_MANIFEST_MAX) {
        rv_errmsg_printf(errmsg, "%s: %lld bytes is no manifest", path,
                         (long long)st.st_size);
        rc = RV_ECORRUPT;
    } else if ((buf = malloc((size_t)st.st_size)) == NULL) {
        rc = RV_ENOMEM;
    } else {
        int r = vlog_pread_full(fd, buf, (size_t)st.st_size, 0);
        if (r != 0)
            rc = r == -2 ? RV_ECORRUPT
                         : vlog__err_errno(errno, errmsg, "read", path);
        else
            rc = vlog_manifest_decode(buf, (size_t)st.st_size, path, m, errmsg);
    }
    free(buf);
    close(fd);
    if (rc != RV_OK)
        vlog__manifest_free(m);
    return rc;
}

int
vlog_checkpoint_read(const char *dir, struct vlog_checkpoint *out, char *errmsg)
{
    struct vlog_manifest m;
    int rc = vlog__manifest_read(dir, &m, errmsg);
    memset(out, 0, sizeof *out);
    if (rc == RV_OK)
        *out = m.ck;
    vlog__manifest_free(&m);
    return rc;
}

void
vlog_checkpoint(struct vlog *v, struct vlog_checkpoint *out)
{
    pthread_mutex_lock(&v->lock);
    *out = v->man->ck;
    pthread_mutex_unlock(&v->lock);
}

/* ---- Listing ----------------------------------------------------------- */

static int
vlog_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Parse a segment file name: NNNNNNNN.seg or NNNNNNNN.c<gen>.seg. */
static int
vlog_name_parse(const char *name, uint32_t *number, uint64_t *gen)
{
    size_t len = strlen(name);
    if (len < 12 || strcmp(name + len - 4, ".seg") != 0)
        return 0;
    for (int i = 0; i < 8; i++)
        if (name[i] < '0' || name[i] > '9')
            return 0;
    char *end;
    unsigned long num = strtoul(name, &end, 10);
    if (end != name + 8 || num == 0 || num >= VLOG_MAX_SEGMENTS)
        return 0;
    *number = (uint32_t)num;
    *gen = 0;
    if (len == 12)
        return 1;
    if (name[8] != '.' || name[9] != 'c' || name[10] < '1' || name[10] > '9')
        return 0;
    unsigned long long g = strtoull(name + 10, &end, 10);
    if (end != name + len - 4 || g == 0 || g == ULLONG_MAX)
        return 0;
    *gen = g;
    return 1;
}

/* image.<index>: 1 and *index, else 0. */
static int
vlog_image_parse(const char *name, uint64_t *index)
{
    if (strncmp(name, "image.", 6) != 0 || name[6] < '1' || name[6] > '9')
        return 0;
    char *end;
    unsigned long long g = strtoull(name + 6, &end, 10);
    if (*end != '\0' || g == ULLONG_MAX)
        return 0;
    *index = g;
    return 1;
}

static int
vlog_remove_stale(const char *dir, const char *name, const char *why,
                  const struct rv_log *log, char *errmsg)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    rv_logf(log, RV_LOG_WARN, "vlog", "%s: %s: removing it", path, why);
    if (unlink(path) != 0 && errno != ENOENT)
        return vlog__err_errno(errno, errmsg, "unlink", path);
    return RV_OK;
}

int
vlog__list(const char *dir, int is_repair, const struct rv_log *log,
           uint32_t **nums_out, uint64_t **gens_out, size_t *n_out,
           struct vlog_manifest *m_out, char *errmsg)
{
    struct vlog_manifest m;
    int rc = vlog__manifest_read(dir, &m, errmsg);
    if (rc != RV_OK)
        return rc;
    DIR *d = opendir(dir);
    if (d == NULL) {
        vlog__manifest_free(&m);
        return vlog__err_errno(errno, errmsg, "opendir", dir);
    }
    uint32_t *nums = NULL;
    size_t n = 0, cap = 0, n_removed = 0;
    struct dirent *e;
    while (rc == RV_OK && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        uint32_t num;
        uint64_t gen;
        if (strcmp(name, VLOG_MANIFEST_NAME ".tmp") == 0) {
            if (is_repair) {
                rc = vlog_remove_stale(dir, name,
                                       "manifest of a compaction that did "
                                       "not commit",
                                       log, errmsg);
                n_removed++;
            }
            continue;
        }
        if (vlog_image_parse(name, &gen)) {
            if (gen != m.ck.index && is_repair) {
                rc = vlog_remove_stale(dir, name,
                                       gen > m.ck.index
                                           ? "image of a compaction that did "
                                             "not commit"
                                           : "image replaced by a later "
                                             "compaction",
                                       log, errmsg);
                n_removed++;
            }
            continue;
        }
        if (!vlog_name_parse(name, &num, &gen))
            continue;
        uint64_t want = vlog__manifest_gen(&m, num);
        if (gen != want) {
            if (is_repair) {
                rc = vlog_remove_stale(
                    dir, name,
                    gen > want ? "segment of a compaction that did not commit"
                               : "segment replaced by a committed compaction",
                    log, errmsg);
                n_removed++;
            }
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            void *p = realloc(nums, cap * sizeof *nums);
            if (p == NULL) {
                rc = RV_ENOMEM;
                break;
            }
            nums = p;
        }
        nums[n++] = num;
    }
    closedir(d);
    if (rc == RV_OK && n_removed > 0)
        rc = vlog__fsync_dir(dir, errmsg);
    if (rc == RV_OK && n > 1)
        qsort(nums, n, sizeof *nums, vlog_cmp_u32);
    for (size_t i = 1; rc == RV_OK && i < n; i++) {
        if (nums[i] != nums[i - 1] + 1) {
            rv_errmsg_printf(errmsg,
                             "%s: segment %08u is missing (found %08u "
                             "after %08u)",
                             dir, nums[i - 1] + 1, nums[i], nums[i - 1]);
            rc = RV_ECORRUPT;
        }
    }
    /* Every segment the manifest names must be there. */
    for (size_t i = 0; rc == RV_OK && i < m.n; i++) {
        if (n == 0 || m.numbers[i] < nums[0] || m.numbers[i] > nums[n - 1]) {
            rv_errmsg_printf(errmsg,
                             "%s: segment %08u.c%llu.seg named by the "
                             "manifest is missing",
                             dir, m.numbers[i], (unsigned long long)m.gens[i]);
            rc = RV_ECORRUPT;
        }
    }
    uint64_t *gens = NULL;
    if (rc == RV_OK && (gens = calloc(n ? n : 1, sizeof *gens)) == NULL)
        rc = RV_ENOMEM;
    for (size_t i = 0; rc == RV_OK && i < n; i++)
        gens[i] = vlog__manifest_gen(&m, nums[i]);
    if (rc != RV_OK) {
        free(nums);
        free(gens);
        vlog__manifest_free(&m);
        return rc;
    }
    *nums_out = nums;
    *gens_out = gens;
    *n_out = n;
    if (m_out != NULL)
        *m_out = m;
    else
        vlog__manifest_free(&m);
    return RV_OK;
}

uint64_t
vlog_disk_bytes(struct vlog *v)
{
    uint64_t total = 0;
    pthread_rwlock_rdlock(&v->swap);
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->n_segs; i++) {
        struct stat st;
        if (fstat(v->segs[i]->fd, &st) == 0)
            total += (uint64_t)st.st_blocks * 512u;
    }
    pthread_mutex_unlock(&v->lock);
    pthread_rwlock_unlock(&v->swap);
    return total;
}

/* ---- Pinning (a backup's file set) ------------------------------------- */

void
vlog_pin_free(struct vlog_pin_file *files, size_t n_files)
{
    for (size_t i = 0; files != NULL && i < n_files; i++)
        if (files[i].fd >= 0)
            close(files[i].fd);
    free(files);
}

/* Open dir/name read-only into f (size from fstat). */
static int
vlog_pin_open(const char *dir, const char *name, struct vlog_pin_file *f,
              char *errmsg)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return vlog__err_errno(errno, errmsg, "open", path);
    if (fstat(f->fd, &st) != 0)
        return vlog__err_errno(errno, errmsg, "stat", path);
    f->bytes = (uint64_t)st.st_size;
    return RV_OK;
}

/* The manifest f is the one readers use (ck and n rewritten segments),
 * else RV_EUNAVAILABLE: a newer one was renamed in, not yet swapped. */
static int
vlog_pin_manifest_check(const struct vlog_pin_file *f,
                        const struct vlog_checkpoint *ck, size_t n,
                        char *errmsg)
{
    uint8_t h[VLOG_MANIFEST_HEADER];
    if (f->bytes != VLOG_MANIFEST_HEADER + 12u * n + 4 ||
        vlog_pread_full(f->fd, h, sizeof h, 0) != 0 ||
        memcmp(h, VLOG_MANIFEST_MAGIC, 8) != 0 ||
        rv_get_be64(h + 8) != ck->index) {
        rv_errmsg_printf(errmsg,
                         "the compaction manifest on disk is not the "
                         "checkpoint at %llu readers use (a compaction is "
                         "switching files)",
                         (unsigned long long)ck->index);
        return RV_EUNAVAILABLE;
    }
    return RV_OK;
}

int
vlog_pin(struct vlog *v, struct vlog_checkpoint *ck,
         struct vlog_pin_file **files_out, size_t *n_out, char *errmsg)
{
    *files_out = NULL;
    *n_out = 0;
    pthread_rwlock_rdlock(&v->swap);
    pthread_mutex_lock(&v->lock);
    *ck = v->man->ck;
    size_t n_rewritten = v->man->n, n_segs = v->n_segs;
    size_t n = n_segs + (ck->index > 0 ? 2 : 0), k = 0;
    struct vlog_pin_file *f = calloc(n ? n : 1, sizeof *f);
    int rc = f == NULL ? RV_ENOMEM : RV_OK;
    for (size_t i = 0; rc == RV_OK && i < n_segs; i++) {
        const struct vlog_seg *s = v->segs[i];
        struct vlog_pin_file *x = &f[k];
        x->fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
        if (x->fd < 0) {
            rc = vlog__err_errno(errno, errmsg, "dup", "a segment");
            break;
        }
        k++;
        if (s->gen == 0)
            snprintf(x->name, sizeof x->name, "%08u.seg", s->number);
        else
            snprintf(x->name, sizeof x->name, "%08u.c%llu.seg", s->number,
                     (unsigned long long)s->gen);
        x->number = s->number;
        x->first_index = s->first_index;
    }
    pthread_mutex_unlock(&v->lock);
    for (size_t i = 0; rc == RV_OK && i < k; i++) {
        struct stat st;
        if (fstat(f[i].fd, &st) != 0)
            rc = vlog__err_errno(errno, errmsg, "stat", f[i].name);
        else
            f[i].bytes = (uint64_t)st.st_size;
    }
    if (rc == RV_OK && ck->index > 0) {
        char name[48];
        snprintf(name, sizeof name, "image.%llu",
                 (unsigned long long)ck->index);
        f[k].fd = -1;
        rc = vlog_pin_open(v->dir, name, &f[k], errmsg);
        k++;
        if (rc == RV_OK && f[k - 1].bytes != ck->image_bytes) {
            rv_errmsg_printf(errmsg,
                             "%s/%s has %llu bytes, the manifest says %llu",
                             v->dir, name, (unsigned long long)f[k - 1].bytes,
                             (unsigned long long)ck->image_bytes);
            rc = RV_ECORRUPT;
        }
        if (rc == RV_OK) {
            f[k].fd = -1;
            rc = vlog_pin_open(v->dir, VLOG_MANIFEST_NAME, &f[k], errmsg);
            k++;
        }
        if (rc == RV_OK)
            rc = vlog_pin_manifest_check(&f[k - 1], ck, n_rewritten, errmsg);
    }
    pthread_rwlock_unlock(&v->swap);
    if (rc != RV_OK) {
        vlog_pin_free(f, k);
        return rc;
    }
    *files_out = f;
    *n_out = k;
    return RV_OK;
}

/* ---- Rewrite ----------------------------------------------------------- */

struct vlog_rewrite {
    struct vlog *v;
    struct vlog_checkpoint ck;
    uint64_t rate, t0_ms, n_read, n_written;
    size_t n, cap;
    uint32_t *numbers; /* Rewritten segments (new files written). */
};

int
vlog_rewrite_begin(struct vlog *v, const struct vlog_checkpoint *ck,
                   uint64_t rate_bytes_s, struct vlog_rewrite **out,
                   char *errmsg)
{
    struct vlog_checkpoint cur;
    vlog_checkpoint(v, &cur);
    if (ck->index == 0 || ck->index <= cur.index) {
        rv_errmsg_printf(
            errmsg, "compaction at %llu: the vlog is compacted at %llu",
            (unsigned long long)ck->index, (unsigned long long)cur.index);
        return RV_EINVAL;
    }
    struct vlog_rewrite *rw = calloc(1, sizeof *rw);
    if (rw == NULL)
        return RV_ENOMEM;
    rw->v = v;
    rw->ck = *ck;
    rw->rate = rate_bytes_s;
    rw->t0_ms = rv_clock_mono_ms();
    atomic_store(&vlog_compact_n_steps, 0);
    *out = rw;
    return RV_OK;
}

void
vlog_rewrite_bytes(const struct vlog_rewrite *rw, uint64_t *read,
                   uint64_t *written)
{
    *read = rw->n_read;
    *written = rw->n_written;
}

/* Sleep until n_read + n_written bytes fit the rate since t0. */
static void
vlog_rewrite_pace(struct vlog_rewrite *rw)
{
    if (rw->rate == 0)
        return;
    uint64_t due_ms = (rw->n_read + rw->n_written) * 1000u / rw->rate;
    uint64_t now = rv_clock_mono_ms() - rw->t0_ms;
    if (due_ms > now)
        rv_clock_sleep_ms(
            (unsigned)(due_ms - now > 1000 ? 1000 : due_ms - now));
}

static int
vlog_is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/* Write p[0, n) at off of fd, skipping the whole 4 KiB blocks that are
 * zero (the new file is sparse there). */
static int
vlog_write_sparse(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    size_t at = 0;
    while (at < n) {
        uint64_t pos = off + at;
        size_t step = VLOG_HOLE_BLOCK - (size_t)(pos % VLOG_HOLE_BLOCK);
        if (step > n - at)
            step = n - at;
        int is_block = step == VLOG_HOLE_BLOCK;
        if (!is_block || !vlog_is_zero(p + at, step)) {
            struct iovec iov = {(void *)(p + at), step};
            if (vlog__write_full(fd, &iov, 1, pos) != 0)
                return -1;
        }
        at += step;
    }
    return 0;
}

/* The current segment number: fd, generation and size; 0 when it is not
 * a sealed segment of v. */
static int
vlog_sealed_find(struct vlog *v, uint32_t number, int *fd, uint64_t *gen,
                 uint64_t *size)
{
    int ok = 0;
    pthread_mutex_lock(&v->lock);
    if (v->n_segs > 1) {
        uint32_t first = v->segs[0]->number;
        if (number >= first && number - first < v->n_segs - 1) {
            struct vlog_seg *seg = v->segs[number - first];
            *fd = seg->fd;
            *gen = seg->gen;
            *size = atomic_load(&seg->size);
            ok = 1;
        }
    }
    pthread_mutex_unlock(&v->lock);
    return ok;
}

/* One pass over the segment: fn on each batch record; with out_fd >= 0
 * the (changed) records are written there. *n_changed counts records. */
static int
vlog_rewrite_pass(struct vlog_rewrite *rw, int fd, const char *path,
                  uint64_t size, int out_fd, vlog_rewrite_fn fn, void *arg,
                  uint32_t number, uint64_t *n_changed, char *errmsg)
{
    struct rv_buf buf;
    rv_buf_init(&buf);
    uint8_t hdr[VLOG_SEGMENT_HEADER];
    int rc = RV_OK;
    if (vlog_pread_full(fd, hdr, sizeof hdr, 0) != 0) {
        rv_errmsg_printf(errmsg, "%s: segment header unreadable", path);
        return RV_EIO;
    }
    if (out_fd >= 0) {
        struct iovec iov = {hdr, sizeof hdr};
        if (vlog__write_full(out_fd, &iov, 1, 0) != 0)
            return vlog__err_errno(errno, errmsg, "write", path);
    }
    for (uint64_t off = VLOG_SEGMENT_HEADER; off < size && rc == RV_OK;) {
        uint32_t len, type;
        uint64_t index;
        rc = vlog__record_read(fd, path, off, size, &buf, &len, &index, &type,
                               errmsg);
        if (rc != RV_OK)
            break;
        int is_changed = 0;
        if (type == VLOG_TYPE_BATCH) {
            struct vlog_ptr ptr = {number, (uint32_t)off, len};
            rc = fn(arg, index, ptr, buf.data, len, &is_changed, errmsg);
        }
        if (rc != RV_OK)
            break;
        if (is_changed)
            (*n_changed)++;
        if (out_fd >= 0) {
            uint8_t h[VLOG_RECORD_HEADER];
            rv_put_be32(h, len);
            rv_put_be64(h + 8, index);
            rv_put_be32(h + 16, type);
            rv_put_be32(h + 4, vlog__record_crc(h, buf.data, len));
            struct iovec iov = {h, sizeof h};
            if (vlog__write_full(out_fd, &iov, 1, off) != 0 ||
                vlog_write_sparse(out_fd, buf.data, len,
                                  off + VLOG_RECORD_HEADER) != 0)
                rc = vlog__err_errno(errno, errmsg, "write", path);
            rw->n_written += VLOG_RECORD_HEADER + len;
        } else {
            rw->n_read += VLOG_RECORD_HEADER + len;
        }
        off += VLOG_RECORD_HEADER + len;
        vlog_rewrite_pace(rw);
    }
    rv_buf_free(&buf);
    return rc;
}

int
vlog_rewrite_segment(struct vlog_rewrite *rw, uint32_t number,
                     vlog_rewrite_fn fn, void *arg, uint64_t *bytes_freed,
                     char *errmsg)
{
    struct vlog *v = rw->v;
    int fd;
    uint64_t gen, size, n_changed = 0;
    char path[4096], npath[4096];
    *bytes_freed = 0;
    /* The fd stays open: only vlog_rewrite_commit swaps sealed segments,
     * and it runs on this thread. */
    if (!vlog_sealed_find(v, number, &fd, &gen, &size)) {
        rv_errmsg_printf(errmsg, "segment %08u is not sealed", number);
        return RV_EINVAL;
    }
    vlog__seg_path(v->dir, number, gen, path, sizeof path);
    int rc = vlog_rewrite_pass(rw, fd, path, size, -1, fn, arg, number,
                               &n_changed, errmsg);
    if (rc != RV_OK || n_changed == 0)
        return rc;
    vlog__seg_path(v->dir, number, rw->ck.index, npath, sizeof npath);
    int out = open(npath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        return vlog__err_errno(errno, errmsg, "create", npath);
    if (rw->n == rw->cap) {
        size_t cap = rw->cap ? 2 * rw->cap : 16;
        void *p = realloc(rw->numbers, cap * sizeof *rw->numbers);
        if (p == NULL) {
            close(out);
            unlink(npath);
            return RV_ENOMEM;
        }
        rw->numbers = p;
        rw->cap = cap;
    }
    rw->numbers[rw->n++] = number; /* abort removes it from here on */
    n_changed = 0;
    rc = vlog_rewrite_pass(rw, fd, path, size, out, fn, arg, number, &n_changed,
                           errmsg);
    if (rc == RV_OK && ftruncate(out, (off_t)size) != 0)
        rc = vlog__err_errno(errno, errmsg, "truncate", npath);
    if (rc == RV_OK && fsync(out) != 0)
        rc = vlog__err_errno(errno, errmsg, "fsync", npath);
    struct stat so, sn;
    if (rc == RV_OK && fstat(fd, &so) == 0 && fstat(out, &sn) == 0 &&
        so.st_blocks > sn.st_blocks)
        *bytes_freed = (uint64_t)(so.st_blocks - sn.st_blocks) * 512u;
    close(out);
    if (rc == RV_OK)
        rc = vlog_compact_step(errmsg);
    return rc;
}

void
vlog_rewrite_drop(struct vlog_rewrite *rw)
{
    if (rw != NULL)
        free(rw->numbers);
    free(rw);
}

void
vlog_rewrite_abort(struct vlog_rewrite *rw)
{
    if (rw == NULL)
        return;
    for (size_t i = 0; i < rw->n; i++) {
        char path[4096];
        vlog__seg_path(rw->v->dir, rw->numbers[i], rw->ck.index, path,
                       sizeof path);
        unlink(path);
    }
    char path[4096];
    vlog_image_path(rw->v->dir, rw->ck.index, path, sizeof path);
    unlink(path);
    free(rw->numbers);
    free(rw);
}

/* The manifest after rw: old entries, rw's segments at the new gen. */
static int
vlog_manifest_encode(const struct vlog_rewrite *rw,
                     const struct vlog_manifest *old, struct rv_buf *b,
                     struct vlog_manifest *m)
{
    size_t cap = old->n + rw->n;
    m->ck = rw->ck;
    m->numbers = calloc(cap ? cap : 1, sizeof *m->numbers);
    m->gens = calloc(cap ? cap : 1, sizeof *m->gens);
    if (m->numbers == NULL || m->gens == NULL)
        return RV_ENOMEM;
    size_t i = 0, j = 0; /* Merge: both sorted by number. */
    while (i < old->n || j < rw->n) {
        if (j >= rw->n || (i < old->n && old->numbers[i] < rw->numbers[j])) {
            m->numbers[m->n] = old->numbers[i];
            m->gens[m->n++] = old->gens[i++];
        } else {
            if (i < old->n && old->numbers[i] == rw->numbers[j])
                i++;
            m->numbers[m->n] = rw->numbers[j++];
            m->gens[m->n++] = rw->ck.index;
        }
    }
    rv_buf_append(b, VLOG_MANIFEST_MAGIC, 8);
    rv_buf_append_be64(b, m->ck.index);
    rv_buf_append(b, m->ck.digest, 16);
    rv_buf_append(b, m->ck.content, 16);
    rv_buf_append_be64(b, m->ck.image_bytes);
    rv_buf_append_be32(b, (uint32_t)m->n);
    for (size_t k = 0; k < m->n; k++) {
        rv_buf_append_be32(b, m->numbers[k]);
        rv_buf_append_be64(b, m->gens[k]);
    }
    if (!b->is_failed)
        rv_buf_append_be32(b, rv_crc32c(0, b->data, b->len));
    return b->is_failed ? RV_ENOMEM : RV_OK;
}

static int
vlog_manifest_write(const char *dir, const struct rv_buf *b, char *errmsg)
{
    char tmp[4096], path[4096];
    vlog_manifest_path(dir, ".tmp", tmp, sizeof tmp);
    vlog_manifest_path(dir, "", path, sizeof path);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return vlog__err_errno(errno, errmsg, "create", tmp);
    struct iovec iov = {b->data, b->len};
    int rc = RV_OK;
    if (vlog__write_full(fd, &iov, 1, 0) != 0 || fsync(fd) != 0)
        rc = vlog__err_errno(errno, errmsg, "write", tmp);
    close(fd);
    if (rc == RV_OK)
        rc = vlog_compact_step(errmsg); /* written, not renamed */
    if (rc == RV_OK && rename(tmp, path) != 0)
        rc = vlog__err_errno(errno, errmsg, "rename", tmp);
    if (rc == RV_OK)
        rc = vlog_compact_step(errmsg); /* renamed, dir not synced */
    if (rc == RV_OK)
        rc = vlog__fsync_dir(dir, errmsg);
    return rc;
}

/* Open the new files and swap them in for readers; old segs into *old. */
static int
vlog_swap_in(struct vlog *v, const struct vlog_rewrite *rw,
             struct vlog_manifest *m, struct vlog_seg **old, char *errmsg)
{
    struct vlog_seg **fresh = calloc(rw->n ? rw->n : 1, sizeof *fresh);
    int rc = fresh == NULL ? RV_ENOMEM : RV_OK;
    for (size_t i = 0; rc == RV_OK && i < rw->n; i++) {
        char path[4096];
        vlog__seg_path(v->dir, rw->numbers[i], rw->ck.index, path, sizeof path);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = vlog__err_errno(errno, errmsg, "open", path);
            break;
        }
        fresh[i] = calloc(1, sizeof *fresh[i]);
        if (fresh[i] == NULL) {
            close(fd);
            rc = RV_ENOMEM;
            break;
        }
        fresh[i]->fd = fd;
        fresh[i]->number = rw->numbers[i];
        fresh[i]->gen = rw->ck.index;
    }
    if (rc != RV_OK) {
        for (size_t i = 0; fresh != NULL && i < rw->n; i++)
            vlog__seg_free(fresh[i]);
        free(fresh);
        return rc;
    }
    pthread_rwlock_wrlock(&v->swap);
    pthread_mutex_lock(&v->lock);
    uint32_t first = v->segs[0]->number;
    for (size_t i = 0; i < rw->n; i++) {
        struct vlog_seg *cur = v->segs[rw->numbers[i] - first];
        fresh[i]->first_index = cur->first_index;
        atomic_store(&fresh[i]->size, atomic_load(&cur->size));
        v->segs[rw->numbers[i] - first] = fresh[i];
        old[i] = cur;
    }
    vlog__manifest_free(v->man);
    *v->man = *m;
    memset(m, 0, sizeof *m);
    pthread_mutex_unlock(&v->lock);
    pthread_rwlock_unlock(&v->swap);
    free(fresh);
    return RV_OK;
}

int
vlog_rewrite_commit(struct vlog_rewrite *rw, char *errmsg)
{
    struct vlog *v = rw->v;
    struct rv_buf b;
    struct vlog_manifest m, oldm;
    struct vlog_checkpoint prev;
    memset(&m, 0, sizeof m);
    rv_buf_init(&b);
    pthread_mutex_lock(&v->lock);
    prev = v->man->ck;
    oldm.n = v->man->n;
    oldm.numbers = v->man->numbers;
    oldm.gens = v->man->gens;
    oldm.ck = prev;
    int rc = vlog_manifest_encode(rw, &oldm, &b, &m);
    pthread_mutex_unlock(&v->lock);
    struct vlog_seg **old = calloc(rw->n ? rw->n : 1, sizeof *old);
    if (rc == RV_OK && old == NULL)
        rc = RV_ENOMEM;
    if (rc == RV_OK)
        rc = vlog_manifest_write(v->dir, &b, errmsg);
    rv_buf_free(&b);
    if (rc != RV_OK) {
        /* Before the rename the old set stands; a crash after it is the
         * business of the next open. Leave the files for open to sort. */
        vlog__manifest_free(&m);
        free(old);
        free(rw->numbers);
        free(rw);
        return rc;
    }
    /* Committed. Readers move to the new files, then the old go. */
    rc = vlog_swap_in(v, rw, &m, old, errmsg);
    vlog__manifest_free(&m);
    for (size_t i = 0; old[0] != NULL && i < rw->n; i++) {
        char path[4096];
        vlog__seg_path(v->dir, old[i]->number, old[i]->gen, path, sizeof path);
        vlog__seg_free(old[i]);
        if (rc == RV_OK && unlink(path) != 0 && errno != ENOENT)
            rc = vlog__err_errno(errno, errmsg, "unlink", path);
        if (rc == RV_OK)
            rc = vlog_compact_step(errmsg);
    }
    if (rc == RV_OK && prev.index != 0) {
        char path[4096];
        vlog_image_path(v->dir, prev.index, path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT)
            rc = vlog__err_errno(errno, errmsg, "unlink", path);
    }
    if (rc == RV_OK)
        rc = vlog__fsync_dir(v->dir, errmsg);
    free(old);
    free(rw->numbers);
    free(rw);
    return rc;
}
