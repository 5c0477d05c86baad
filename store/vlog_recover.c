/* The value log's recovery and checks (contract in vlog.h): listing the
 * segments of a directory, scanning a segment record by record, torn-tail
 * truncation of the newest segment at open, and the checks that refuse a
 * damaged sealed segment (at open, in vlog_verify and in vlog_scrub). */
#define _DEFAULT_SOURCE /* pread, EDQUOT, as in vlog.c */
#include "base/err.h"
#include "store/vlog.h"
#include "store/vlog_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static int
vlog_seg_open(const char *dir, uint32_t number, uint64_t gen, int is_rw,
              struct vlog_seg **out, uint64_t *file_size, char *errmsg)
{
    char path[4096];
    struct stat st;
    vlog__seg_path(dir, number, gen, path, sizeof path);
    int fd = open(path, (is_rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return vlog__err_errno(errno, errmsg, "open", path);
    if (fstat(fd, &st) != 0) {
        int rc = vlog__err_errno(errno, errmsg, "stat", path);
        close(fd);
        return rc;
    }
    struct vlog_seg *seg = calloc(1, sizeof *seg);
    if (seg == NULL) {
        close(fd);
        return RV_ENOMEM;
    }
    seg->number = number;
    seg->gen = gen;
    seg->fd = fd;
    *file_size = (uint64_t)st.st_size;
    *out = seg;
    return RV_OK;
}

/* ---- Scanning ---------------------------------------------------------- */

/* Whether any valid record starts at an offset in (from, size): the rest
 * of the file is mapped once and every offset is tried, cheapest checks
 * first. */
static int
vlog_valid_after(int fd, uint64_t from, uint64_t size, uint64_t last_index,
                 uint64_t *found_at)
{
    if (size <= from + 1 || size - from - 1 < VLOG_RECORD_HEADER)
        return 0;
    uint8_t *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return 1; /* Cannot prove the tail is torn: refuse, do not drop. */
    int found = 0;
    for (uint64_t off = from + 1; off + VLOG_RECORD_HEADER <= size; off++) {
        uint32_t len, type;
        uint64_t index;
        const uint8_t *h = map + off;
        if (!vlog__header_parse(h, off, size, &len, &index, &type) ||
            (type == VLOG_TYPE_BATCH && index <= last_index))
            continue;
        if (vlog__record_crc(h, h + VLOG_RECORD_HEADER, len) ==
            rv_get_be32(h + 4)) {
            *found_at = off;
            found = 1;
            break;
        }
    }
    munmap(map, (size_t)size);
    return found;
}

struct vlog_scan {
    uint64_t end;        /* Offset after the last whole valid record. */
    uint64_t n_records;  /* Records of type BATCH. */
    uint64_t last_index; /* Of the last valid record (any type). */
    int has_seal;        /* The last valid record is a seal. */
    uint64_t bad_at;     /* Offset of the first invalid record, if any. */
    int is_torn;         /* An invalid tail with nothing valid after it. */
};

/* Walk the records of a segment. A problem anywhere: RV_ECORRUPT if a valid
 * record follows it (or is_sealed), else a torn tail reported in sc. */
static int
vlog_scan_segment(int fd, const char *path, uint64_t size, uint64_t prev_index,
                  int is_sealed, struct vlog_scan *sc, char *errmsg)
{
    struct rv_buf buf;
    uint64_t off = VLOG_SEGMENT_HEADER, last = prev_index;
    int rc = RV_OK;
    memset(sc, 0, sizeof *sc);
    rv_buf_init(&buf);
    while (off < size) {
        uint32_t len, type;
        uint64_t index;
        char why[RV_ERRMSG_SIZE];
        rc = vlog__record_read(fd, path, off, size, &buf, &len, &index, &type,
                               why);
        if (rc == RV_ENOMEM)
            break;
        if (rc == RV_OK && sc->has_seal) {
            rc = RV_ECORRUPT;
            snprintf(why, sizeof why, "%s offset %llu: record after the seal",
                     path, (unsigned long long)off);
        } else if (rc == RV_OK && type == VLOG_TYPE_BATCH && index <= last) {
            rc = RV_ECORRUPT;
            snprintf(why, sizeof why,
                     "%s offset %llu: raft index %llu does "
                     "not increase",
                     path, (unsigned long long)off, (unsigned long long)index);
        } else if (rc == RV_OK && type == VLOG_TYPE_SEAL &&
                   (len != VLOG_SEAL_PAYLOAD ||
                    rv_get_be64(buf.data) != sc->n_records ||
                    rv_get_be64(buf.data + 8) != last)) {
            rc = RV_ECORRUPT;
            snprintf(why, sizeof why,
                     "%s offset %llu: seal record does not "
                     "match the segment",
                     path, (unsigned long long)off);
        }
        if (rc != RV_OK) {
            uint64_t found;
            sc->bad_at = off;
            if (is_sealed || vlog_valid_after(fd, off, size, last, &found)) {
                rv_errmsg_printf(errmsg, "%s", why);
                rc = RV_ECORRUPT;
            } else {
                sc->is_torn = 1;
                rc = RV_OK;
            }
            break;
        }
        if (type == VLOG_TYPE_BATCH) {
            last = index;
            sc->n_records++;
        } else {
            sc->has_seal = 1;
        }
        off += VLOG_RECORD_HEADER + len;
        sc->end = off;
    }
    if (sc->end == 0)
        sc->end = VLOG_SEGMENT_HEADER;
    sc->last_index = last;
    rv_buf_free(&buf);
    return rc;
}

/* A sealed segment at open: only its final seal record is read (every
 * record's CRC is checked by vlog_verify and by each read). */
static int
vlog_seal_check(int fd, const char *path, uint64_t size, uint64_t prev_index,
                struct vlog_scan *sc, char *errmsg)
{
    uint8_t rec[VLOG_RECORD_HEADER + VLOG_SEAL_PAYLOAD];
    uint64_t off = size - sizeof rec;
    memset(sc, 0, sizeof *sc);
    if (size < VLOG_SEGMENT_HEADER + sizeof rec ||
        vlog_pread_full(fd, rec, sizeof rec, off) != 0 ||
        rv_get_be32(rec) != VLOG_SEAL_PAYLOAD ||
        rv_get_be32(rec + 16) != VLOG_TYPE_SEAL ||
        vlog__record_crc(rec, rec + VLOG_RECORD_HEADER, VLOG_SEAL_PAYLOAD) !=
            rv_get_be32(rec + 4)) {
        rv_errmsg_printf(errmsg,
                         "%s offset %llu: sealed segment does not end "
                         "with a valid seal record",
                         path,
                         (unsigned long long)(size > sizeof rec ? off : 0));
        return RV_ECORRUPT;
    }
    sc->n_records = rv_get_be64(rec + VLOG_RECORD_HEADER);
    sc->last_index = rv_get_be64(rec + VLOG_RECORD_HEADER + 8);
    if (sc->last_index < prev_index) {
        rv_errmsg_printf(errmsg, "%s: seal says last index %llu, before %llu",
                         path, (unsigned long long)sc->last_index,
                         (unsigned long long)prev_index);
        return RV_ECORRUPT;
    }
    sc->end = size;
    sc->has_seal = 1;
    return RV_OK;
}

/* ---- Recovery at open ------------------------------------------------- */

int
vlog__open_one(struct vlog *v, uint32_t number, uint64_t gen, int is_newest,
               char *errmsg)
{
    char path[4096];
    uint64_t size;
    struct vlog_seg *seg;
    uint8_t h[VLOG_SEGMENT_HEADER] = {0};
    vlog__seg_path(v->dir, number, gen, path, sizeof path);
    int rc = vlog_seg_open(v->dir, number, gen, is_newest, &seg, &size, errmsg);
    if (rc != RV_OK)
        return rc;
    if (size < VLOG_SEGMENT_HEADER ||
        vlog_pread_full(seg->fd, h, sizeof h, 0) != 0 ||
        !vlog__header_check(h, number, &seg->first_index)) {
        if (vlog__header_newer(h, path, errmsg) != RV_OK) {
            vlog__seg_free(seg);
            return RV_EVERSION;
        }
        if (!is_newest) {
            vlog__seg_free(seg);
            rv_errmsg_printf(errmsg, "%s offset 0: bad segment header", path);
            return RV_ECORRUPT;
        }
        /* A newest segment whose header never made it to disk holds no
         * records: rewrite its header (first index: next expected). */
        rv_logf(v->log, RV_LOG_WARN, "vlog",
                "%s: incomplete segment header; rewriting it", path);
        vlog__header_encode(h, number, v->last_index + 1);
        struct iovec iov = {h, sizeof h};
        if (ftruncate(seg->fd, 0) != 0 ||
            vlog__write_full(seg->fd, &iov, 1, 0) != 0 || fsync(seg->fd) != 0) {
            rc = vlog__err_errno(errno, errmsg, "repair", path);
            vlog__seg_free(seg);
            return rc;
        }
        seg->first_index = v->last_index + 1;
        size = VLOG_SEGMENT_HEADER;
    }
    struct vlog_scan sc;
    if (!is_newest)
        rc = vlog_seal_check(seg->fd, path, size, v->last_index, &sc, errmsg);
    else
        rc = vlog_scan_segment(seg->fd, path, size, v->last_index, 0, &sc,
                               errmsg);
    if (rc == RV_OK && sc.is_torn) {
        rv_logf(v->log, RV_LOG_WARN, "vlog",
                "%s: torn tail at offset %llu, dropping %llu bytes", path,
                (unsigned long long)sc.bad_at,
                (unsigned long long)(size - sc.end));
        if (ftruncate(seg->fd, (off_t)sc.end) != 0 || fsync(seg->fd) != 0)
            rc = vlog__err_errno(errno, errmsg, "truncate", path);
    }
    if (rc != RV_OK) {
        vlog__seg_free(seg);
        return rc;
    }
    atomic_store(&seg->size, sc.end);
    v->last_index = sc.last_index;
    v->n_in_segment = sc.n_records;
    rc = vlog__seg_add(v, seg);
    if (rc != RV_OK)
        vlog__seg_free(seg);
    return rc;
}

/* ---- Offline verification ---------------------------------------------- */

int
vlog_verify(const char *dir, uint64_t *n_records, uint64_t *n_segments,
            uint64_t *last_index, uint64_t *torn_bytes, char *errmsg)
{
    uint32_t *nums = NULL;
    uint64_t *gens = NULL;
    size_t n = 0;
    uint64_t records = 0, last = 0, torn = 0;
    int rc = vlog__list(dir, 0, NULL, &nums, &gens, &n, NULL, errmsg);
    for (size_t i = 0; rc == RV_OK && i < n; i++) {
        char path[4096];
        struct vlog_seg *seg;
        uint64_t size, first;
        uint8_t h[VLOG_SEGMENT_HEADER] = {0};
        int is_newest = i + 1 == n;
        vlog__seg_path(dir, nums[i], gens[i], path, sizeof path);
        rc = vlog_seg_open(dir, nums[i], gens[i], 0, &seg, &size, errmsg);
        if (rc != RV_OK)
            break;
        if (size < VLOG_SEGMENT_HEADER ||
            vlog_pread_full(seg->fd, h, sizeof h, 0) != 0 ||
            !vlog__header_check(h, nums[i], &first)) {
            if (vlog__header_newer(h, path, errmsg) != RV_OK) {
                rc = RV_EVERSION;
            } else if (is_newest && size < VLOG_SEGMENT_HEADER) {
                torn += size;
            } else {
                rv_errmsg_printf(errmsg, "%s offset 0: bad segment header",
                                 path);
                rc = RV_ECORRUPT;
            }
            vlog__seg_free(seg);
            continue;
        }
        struct vlog_scan sc;
        rc = vlog_scan_segment(seg->fd, path, size, last, !is_newest, &sc,
                               errmsg);
        if (rc == RV_OK && !is_newest && !sc.has_seal) {
            rv_errmsg_printf(errmsg,
                             "%s offset %llu: sealed segment has no "
                             "seal record",
                             path, (unsigned long long)sc.end);
            rc = RV_ECORRUPT;
        }
        if (rc == RV_OK) {
            records += sc.n_records;
            last = sc.last_index;
            if (sc.is_torn)
                torn += size - sc.end;
        }
        vlog__seg_free(seg);
    }
    free(nums);
    free(gens);
    if (n_records)
        *n_records = records;
    if (n_segments)
        *n_segments = n;
    if (last_index)
        *last_index = last;
    if (torn_bytes)
        *torn_bytes = torn;
    return rc;
}

/* ---- Scrub ------------------------------------------------------------- */

int
vlog_scrub(const char *dir, uint32_t *cursor, uint64_t *n_bytes, char *errmsg)
{
    uint32_t *nums = NULL;
    uint64_t *gens = NULL;
    size_t n = 0;
    *n_bytes = 0;
    int rc = vlog__list(dir, 0, NULL, &nums, &gens, &n, NULL, errmsg);
    if (rc != RV_OK)
        return rc;
    if (n < 2) {
        free(nums);
        free(gens);
        return RV_ENOTFOUND;
    }
    size_t pick = 0; /* The newest, nums[n - 1], is never scrubbed. */
    for (size_t i = 0; i + 1 < n; i++) {
        if (nums[i] > *cursor) {
            pick = i;
            break;
        }
    }
    uint32_t number = nums[pick];
    uint64_t gen = gens[pick];
    free(nums);
    free(gens);
    *cursor = number;
    char path[4096];
    struct vlog_seg *seg;
    uint64_t size, first;
    uint8_t h[VLOG_SEGMENT_HEADER] = {0};
    vlog__seg_path(dir, number, gen, path, sizeof path);
    rc = vlog_seg_open(dir, number, gen, 0, &seg, &size, errmsg);
    if (rc != RV_OK)
        return access(path, F_OK) != 0 && errno == ENOENT ? RV_OK : rc;
    if (size < VLOG_SEGMENT_HEADER ||
        vlog_pread_full(seg->fd, h, sizeof h, 0) != 0 ||
        !vlog__header_check(h, number, &first)) {
        int hrc = vlog__header_newer(h, path, errmsg);
        if (hrc == RV_OK)
            rv_errmsg_printf(errmsg, "%s offset 0: bad segment header", path);
        vlog__seg_free(seg);
        return hrc == RV_OK ? RV_ECORRUPT : hrc;
    }
    struct vlog_scan sc;
    rc = vlog_scan_segment(seg->fd, path, size, first > 0 ? first - 1 : 0, 1,
                           &sc, errmsg);
    if (rc == RV_OK && !sc.has_seal) {
        rv_errmsg_printf(errmsg,
                         "%s offset %llu: sealed segment has no seal "
                         "record",
                         path, (unsigned long long)sc.end);
        rc = RV_ECORRUPT;
    }
    vlog__seg_free(seg);
    *n_bytes = size;
    return rc;
}
