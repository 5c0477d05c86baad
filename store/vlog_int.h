/* Internals shared by the files of the vlog (module-private: never included
 * from outside store/). Which file answers which question:
 *
 *   vlog.c          open and close, append, rotation (the seal record),
 *                   sync, sizes and segment lists, reads and iterators;
 *                   the record and segment header codecs and file I/O
 *   vlog_recover.c  the segment list of a directory, recovery of each
 *                   segment at open (torn-tail truncation of the newest,
 *                   the seal check of the others), vlog_verify, vlog_scrub
 *
 * The byte layouts are drawn in vlog.h. Threads as in vlog.h: the writer
 * (loop thread) changes struct vlog; readers take lock to see segs. Unless
 * a comment says otherwise the functions below return RV_OK or an RV_*
 * code with details in errmsg. */
#ifndef RV_STORE_VLOG_INT_H
#define RV_STORE_VLOG_INT_H

#include "store/vlog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VLOG_SEAL_PAYLOAD 16
#define VLOG_MAX_SEGMENTS (1u << 24)

/* One segment file. Readers use fd with pread; the writer appends to the
 * last one. */
struct vlog_seg {
    uint32_t number;
    uint64_t gen; /* 0: NNNNNNNN.seg; else NNNNNNNN.c<gen>.seg (compacted). */
    uint64_t first_index;
    int fd;
    _Atomic uint64_t size; /* Bytes of whole records (published). */
};

struct vlog {
    char *dir;
    uint64_t segment_bytes;
    const struct rv_log *log;
    pthread_mutex_t lock; /* Guards segs/n_segs against the reader threads. */
    /* Held shared by a reader while it uses a segment's fd, exclusively by
     * a compaction swapping segments (vlog_compact.c). */
    pthread_rwlock_t swap;
    struct vlog_manifest *man; /* The compaction manifest (never NULL). */
    struct vlog_seg **segs;
    size_t n_segs, cap_segs;
    uint64_t last_index;   /* Writer's view. */
    uint64_t n_in_segment; /* Records in the current segment. */
    int is_failed;         /* An I/O error happened: refuse appends. */
};

/* ---- Files and records (vlog.c) ---------------------------------------- */

/* Write "<what> <path>: <strerror(err)>" to errmsg; returns RV_ENOSPACE for
 * ENOSPC/EDQUOT, else RV_EIO. */
int vlog__err_errno(int err, char *errmsg, const char *what, const char *path);

/* The path of segment number of generation gen in dir, into out (size
 * bytes): NNNNNNNN.seg for gen 0, NNNNNNNN.c<gen>.seg after a compaction. */
void vlog__seg_path(const char *dir, uint32_t number, uint64_t gen, char *out,
                    size_t size);

/* CRC-32C of a record: header bytes [0,4) and [8,20), then the payload. */
uint32_t vlog__record_crc(const uint8_t *hdr, const uint8_t *payload, size_t n);

/* pwritev all of iov (at most 3 entries) at off. Returns 0 or -1 (errno
 * set). */
int vlog__write_full(int fd, const struct iovec *iov, int n_iov, uint64_t off);

/* Parse a record header at off of a file of size bytes. Returns 1 when a
 * whole, plausible header is there (length within bounds), else 0. */
int vlog__header_parse(const uint8_t *hdr, uint64_t off, uint64_t size,
                       uint32_t *len, uint64_t *index, uint32_t *type);

/* Read and check the record at off. On RV_OK buf holds the payload.
 * Errors: RV_ECORRUPT (path and offset in errmsg), RV_ENOMEM. */
int vlog__record_read(int fd, const char *path, uint64_t off, uint64_t size,
                      struct rv_buf *buf, uint32_t *len, uint64_t *index,
                      uint32_t *type, char *errmsg);

/* Encode a segment header (VLOG_SEGMENT_HEADER bytes) into h. */
void vlog__header_encode(uint8_t *h, uint32_t number, uint64_t first_index);

/* Check a segment header: magic, version and number. Returns 1 and sets
 * *first_index when it is valid, else 0. */
int vlog__header_check(const uint8_t *h, uint32_t number,
                       uint64_t *first_index);

/* RV_EVERSION, with the reason in errmsg, when h holds the vlog magic and a
 * format version greater than VLOG_FORMAT_VERSION (a newer runvault wrote
 * the segment at path: never repair or truncate it); else RV_OK. */
int vlog__header_newer(const uint8_t *h, const char *path, char *errmsg);

/* ---- Segment list (vlog.c) --------------------------------------------- */

/* Append seg to v->segs under v->lock; v takes ownership on RV_OK.
 * Errors: RV_ENOMEM. Writer thread. */
int vlog__seg_add(struct vlog *v, struct vlog_seg *seg);

/* Close the file and free. NULL is allowed. */
void vlog__seg_free(struct vlog_seg *seg);

/* ---- Recovery (vlog_recover.c) ----------------------------------------- */

/* The compaction manifest DIR/compact: the checkpoint and the generation
 * of every rewritten segment (vlog_compact.c draws the layout). */
struct vlog_manifest {
    struct vlog_checkpoint ck;
    size_t n;
    uint32_t *numbers; /* Sorted. */
    uint64_t *gens;
};

/* Read dir's manifest into *m (empty when there is none). Errors:
 * RV_ECORRUPT (a damaged manifest), RV_EIO, RV_ENOMEM. */
int vlog__manifest_read(const char *dir, struct vlog_manifest *m, char *errmsg);
void vlog__manifest_free(struct vlog_manifest *m);
/* The generation m gives segment number (0 when not listed). */
uint64_t vlog__manifest_gen(const struct vlog_manifest *m, uint32_t number);

/* The segments of dir, sorted, as the manifest names them: numbers and
 * generations into *nums and *gens (caller frees both with free()), the
 * manifest into *m (NULL: not wanted). Files of another generation, a
 * manifest's temporary file and images other than the checkpoint's are
 * left overs of a compaction interrupted before or after its commit:
 * with is_repair they are removed (with a log line, and the directory
 * fsynced), else ignored. Errors: RV_ECORRUPT if a number is missing or
 * the manifest is damaged, RV_EIO, RV_ENOMEM. */
int vlog__list(const char *dir, int is_repair, const struct rv_log *log,
               uint32_t **nums, uint64_t **gens, size_t *n_out,
               struct vlog_manifest *m, char *errmsg);

/* Open one existing segment during recovery (vlog_open, oldest first) and
 * add it to v. A sealed segment must end with a valid seal record; the
 * newest is scanned and a torn tail truncated with a warning. Errors:
 * RV_ECORRUPT (file and offset in errmsg), RV_EIO, RV_ENOMEM. */
int vlog__open_one(struct vlog *v, uint32_t number, uint64_t gen, int is_newest,
                   char *errmsg);

/* fsync dir. */
int vlog__fsync_dir(const char *dir, char *errmsg);

#endif /* RV_STORE_VLOG_INT_H */
