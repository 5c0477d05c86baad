/* The value log: append-only segments holding every applied raft entry.
 *
 * The vlog is the archive and the source of truth for the LMDB indexes:
 * `rebuild-index` regenerates LMDB from it alone. Files live in one
 * directory as NNNNNNNN.seg (segment number, 8 decimal digits, from 1).
 *
 * Segment file layout (integers big-endian):
 *
 *   OFFSET  SIZE  FIELD
 *        0     8  magic "RVVLOG01"
 *        8     4  format version (VLOG_FORMAT_VERSION)
 *       12     4  reserved, 0
 *       16     8  segment number
 *       24     8  raft index of the first record in the segment
 *       32     .  records, back to back
 *
 * Record layout:
 *
 *   OFFSET  SIZE  FIELD
 *        0     4  payload length n
 *        4     4  CRC-32C over bytes [0,4) and [8, 20+n) of the record
 *        8     8  raft index
 *       16     4  type (VLOG_TYPE_*)
 *       20     n  payload
 *
 * A segment is sealed when the log rotates past it: a VLOG_TYPE_SEAL record
 * (payload: be64 record count, be64 last raft index) is appended, the file
 * is fsynced, the next segment is created and the directory fsynced. Sealed
 * segments are never rewritten.
 *
 * Recovery on open (DESIGN §5): every sealed segment must end with a valid
 * seal record; the newest segment is scanned record by record. A torn tail
 * of the newest segment (an invalid record after which no valid record can
 * be found, e.g. a cut write or zeroed bytes) is truncated to the last whole
 * record and fsynced, with a warning. Corruption followed by a valid record,
 * or in a sealed segment, is refused: RV_ECORRUPT naming the file and offset.
 *
 * Threads: one writer (vlog_append, vlog_sync, vlog_close) — the loop
 * thread. vlog_read and iterators may run on any thread concurrently with
 * the writer; they see records up to the last completed append. */
#ifndef RV_STORE_VLOG_H
#define RV_STORE_VLOG_H

#include "base/buf.h"
#include "base/log.h"

#include <stddef.h>
#include <stdint.h>

#define VLOG_FORMAT_VERSION        1
#define VLOG_SEGMENT_HEADER        32
#define VLOG_RECORD_HEADER         20
#define VLOG_TYPE_BATCH            1 /* Payload: a packed rv.CommandBatch. */
#define VLOG_TYPE_SEAL             2 /* Written by the vlog itself on rotation. */
#define VLOG_DEFAULT_SEGMENT_BYTES (64u << 20)
#define VLOG_MIN_SEGMENT_BYTES     (4u << 10)
#define VLOG_MAX_SEGMENT_BYTES     (1u << 30)
#define VLOG_MAX_PAYLOAD_BYTES     (8u << 20)

struct vlog;

struct vlog_config {
    const char *dir;          /* Created if missing. Borrowed. */
    uint64_t segment_bytes;   /* Rotate when a segment would exceed this;
                                 0 = default. A single record larger than
                                 this still fits in a segment of its own. */
    const struct rv_log *log; /* For recovery warnings. May be NULL. */
};

/* Where a record lives. offset is the record header's offset in the file. */
struct vlog_ptr {
    uint32_t segment;
    uint32_t offset;
    uint32_t len; /* Payload length. */
};

struct vlog_record {
    uint64_t index;
    uint32_t type;
    const uint8_t *payload; /* Valid until the next vlog_iter_next/close. */
    size_t len;
    struct vlog_ptr ptr;
};

/* Open or create the log in cfg->dir, running recovery. On RV_OK the caller
 * closes *out with vlog_close(). Errors: RV_ECORRUPT (file and offset in
 * errmsg), RV_EIO, RV_ENOMEM, RV_EINVAL (bad segment_bytes). */
int vlog_open(struct vlog **out, const struct vlog_config *cfg, char *errmsg);

/* Close files and free. NULL is allowed. Does not sync. */
void vlog_close(struct vlog *v);

/* Append one record; index must be greater than vlog_last_index(). The
 * bytes are written to the file (page cache) before return, not synced.
 * Errors: RV_EINVAL (index not increasing, len too big), RV_EIO, RV_ENOSPACE.
 * After an I/O error the vlog refuses further appends (fail-stop). */
int vlog_append(struct vlog *v, uint64_t index, uint32_t type,
                const void *payload, size_t len, struct vlog_ptr *ptr,
                char *errmsg);

/* fdatasync the current segment (and nothing else is pending: sealed ones
 * were synced when sealed). Errors: RV_EIO; after one, appends refuse. */
int vlog_sync(struct vlog *v, char *errmsg);

/* Raft index of the last record, 0 when empty. Writer thread. */
uint64_t vlog_last_index(const struct vlog *v);

/* Bytes in all segments, headers included. Any thread. */
uint64_t vlog_size_bytes(const struct vlog *v);

/* Sealed segments, oldest first: up to max into out; returns how many
 * there are (may exceed max). Any thread. */
struct vlog_segment_info {
    uint32_t number;
    uint64_t first_index, last_index; /* Raft indexes of its records. */
    uint64_t bytes;
};
size_t vlog_segments(const struct vlog *v, struct vlog_segment_info *out,
                     size_t max);

/* Read the payload of the record at ptr into out (replacing its contents),
 * checking its CRC. *index receives its raft index (may be NULL).
 * Errors: RV_ECORRUPT (CRC, header mismatch; file and offset in errmsg),
 * RV_ENOTFOUND (no such segment or beyond the end), RV_EIO, RV_ENOMEM.
 * Any thread. */
int vlog_read(struct vlog *v, struct vlog_ptr ptr, struct rv_buf *out,
              uint64_t *index, char *errmsg);

/* Iterate records of type VLOG_TYPE_BATCH with index >= from_index, in
 * order, across segments (seal records are skipped). Any thread. */
struct vlog_iter;
int vlog_iter_open(struct vlog *v, uint64_t from_index, struct vlog_iter **out,
                   char *errmsg);
/* RV_OK with *rec filled, RV_ENOTFOUND at the end, RV_ECORRUPT/RV_EIO. */
int vlog_iter_next(struct vlog_iter *it, struct vlog_record *rec, char *errmsg);
void vlog_iter_close(struct vlog_iter *it);

/* pread exactly n bytes at off. Returns 0, -1 on an error (errno set) or
 * -2 at the end of the file. Any thread. */
int vlog_pread_full(int fd, void *buf, size_t n, uint64_t off);

/* Offline check of every segment in dir without modifying anything: every
 * record's CRC, increasing indexes, seal records of sealed segments. A torn
 * tail of the newest segment is reported in *torn_bytes, not an error.
 * Counts go to the out-parameters (any may be NULL). Returns RV_OK or
 * RV_ECORRUPT with file and offset in errmsg. */
int vlog_verify(const char *dir, uint64_t *n_records, uint64_t *n_segments,
                uint64_t *last_index, uint64_t *torn_bytes, char *errmsg);

/* Scrub: check every record of one sealed segment of dir (never the
 * newest, which may be open for appends), the one with the lowest number
 * above *cursor, wrapping around to the first; *cursor becomes its number
 * and *n_bytes its size. Read-only, its own file descriptor: any thread,
 * while the vlog is open elsewhere. Returns RV_OK, RV_ENOTFOUND (no sealed
 * segment yet), RV_ECORRUPT (file and offset in errmsg), RV_EIO, RV_ENOMEM.
 * A segment removed meanwhile is skipped (RV_OK, *n_bytes 0). */
int vlog_scrub(const char *dir, uint32_t *cursor, uint64_t *n_bytes,
               char *errmsg);

#endif /* RV_STORE_VLOG_H */
