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
 * segments are never rewritten in place: compaction (below) writes a new
 * file NNNNNNNN.c<C>.seg for segment NNNNNNNN, same length, same record
 * offsets, the removed bytes zeroed (holes), and switches to it through
 * the manifest file `compact`.
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

/* For a sync on another thread: a duplicate of the current segment's file
 * descriptor (the caller fdatasyncs and closes it; the writer may seal and
 * close the segment meanwhile), or -1 with errmsg (RV_EIO). Writer thread.
 * vlog_set_failed() after such a sync failed: appends refuse from then on,
 * as after vlog_sync's own failure. */
int vlog_sync_fd(struct vlog *v, char *errmsg);
void vlog_set_failed(struct vlog *v);

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

/* ---- Compaction (vlog_compact.c) ----------------------------------------
 *
 * A compaction at raft index C rewrites sealed segments: each record keeps
 * its offset and length, the bytes of removed commands become zeros (holes
 * in the new file, given back to the file system). The switch from the old
 * set to the new one is the rename of the manifest DIR/compact: the new
 * segment files and the index image DIR/image.<C> are written and fsynced
 * first, then compact.tmp (written, fsynced), renamed over compact, the
 * directory fsynced; only then are the old files unlinked. vlog_open (and
 * every listing) names segments by the manifest, so a crash at any step
 * leaves the old set (manifest not yet renamed: the new files are removed
 * at open) or the new one (renamed: the old files are removed at open).
 *
 * Manifest layout (integers big-endian):
 *
 *   OFFSET  SIZE  FIELD
 *        0     8  magic "RVCMPMF1"
 *        8     8  checkpoint index C
 *       16    16  digest at C (the replicated running digest)
 *       32    16  content hash of the index at C (store_check's hash)
 *       48     8  image bytes
 *       56     4  n: rewritten segments
 *       60  12*n  be32 segment number, be64 generation (its file's C)
 *    60+12n    4  CRC-32C of bytes [0, 60+12n) */
#define VLOG_MANIFEST_NAME "compact"

struct vlog_checkpoint {
    uint64_t index; /* 0: never compacted. */
    uint8_t digest[16], content[16];
    uint64_t image_bytes;
};

/* The checkpoint of the current segment set. Any thread. */
void vlog_checkpoint(struct vlog *v, struct vlog_checkpoint *out);

/* The checkpoint of the vlog in dir, read-only (zero when none). Errors:
 * RV_ECORRUPT (damaged manifest), RV_EIO. */
int vlog_checkpoint_read(const char *dir, struct vlog_checkpoint *out,
                         char *errmsg);

/* The path of the index image of checkpoint index in dir. */
void vlog_image_path(const char *dir, uint64_t index, char *out, size_t size);

/* One file of a pinned vlog (vlog_pin): a segment (its descriptor
 * duplicated from the one readers use), or, after a compaction, the
 * checkpoint's image or the manifest. */
struct vlog_pin_file {
    char name[48];        /* NNNNNNNN.seg, NNNNNNNN.c<C>.seg, image.<C>,
                             compact (in DIR). */
    int fd;               /* Owned: close it (vlog_pin_free). */
    uint32_t number;      /* Segments; 0 for the image and the manifest. */
    uint64_t first_index; /* Segments: the header's first index. */
    uint64_t bytes;       /* Size when pinned (the newest segment grows). */
};

/* The segment set readers use, as one consistent set: under the lock a
 * compaction swaps segments with, every segment's descriptor is
 * duplicated and, when the vlog is compacted, the checkpoint's image and
 * the manifest are opened, after checking that the manifest on disk is
 * the one readers use. The files stay readable whatever a later
 * compaction renames or unlinks. *ck receives the set's checkpoint.
 * Errors: RV_EUNAVAILABLE (a compaction is between its manifest's rename
 * and the readers' switch: try again), RV_EIO, RV_ECORRUPT, RV_ENOMEM. */
int vlog_pin(struct vlog *v, struct vlog_checkpoint *ck,
             struct vlog_pin_file **files, size_t *n_files, char *errmsg);
void vlog_pin_free(struct vlog_pin_file *files, size_t n_files);

/* Bytes the segment files occupy on disk (allocated blocks). Any thread. */
uint64_t vlog_disk_bytes(struct vlog *v);

/* Test hook: when > 0, the compaction step with this number (counted
 * from 1 over the image, each new segment, the manifest and each unlink)
 * stops the compaction as a crash would: RV_EIO, files left as they are.
 * Returns the number of steps the last compaction took. */
extern int vlog_compact_crash_at;
int vlog_compact_steps(void);

/* Count one step; RV_EIO ("crash at step k") when it is the hook's. */
int vlog_compact_step(char *errmsg);

/* Transform one record's payload in place (same length). Set *is_changed
 * when a byte changed. Return RV_OK or an error that stops the rewrite. */
typedef int (*vlog_rewrite_fn)(void *arg, uint64_t index, struct vlog_ptr ptr,
                               uint8_t *payload, size_t len, int *is_changed,
                               char *errmsg);

struct vlog_rewrite;

/* Begin a rewrite as checkpoint ck (ck->index is the new generation).
 * rate_bytes_s paces reading and writing (0: unpaced). Any one thread at
 * a time (not the writer's business: sealed segments only). */
int vlog_rewrite_begin(struct vlog *v, const struct vlog_checkpoint *ck,
                       uint64_t rate_bytes_s, struct vlog_rewrite **out,
                       char *errmsg);

/* Rewrite sealed segment number through fn: a first pass only reads (and
 * calls fn on copies); when something changed a second writes the new
 * file NNNNNNNN.c<C>.seg and fsyncs it. *bytes_freed receives the
 * allocated bytes it gives back (old minus new). */
int vlog_rewrite_segment(struct vlog_rewrite *rw, uint32_t number,
                         vlog_rewrite_fn fn, void *arg, uint64_t *bytes_freed,
                         char *errmsg);

/* Switch to the new set: manifest (with ck, the rewritten segments and
 * earlier generations of the others), readers moved to the new files,
 * old files and the old image unlinked. Frees rw, whatever the outcome.
 * Errors: RV_EIO, RV_ENOSPACE, RV_ENOMEM (the old set stays, or the new
 * one if the manifest was renamed). */
int vlog_rewrite_commit(struct vlog_rewrite *rw, char *errmsg);

/* Free rw, leaving its files as they are (a test's crash). */
void vlog_rewrite_drop(struct vlog_rewrite *rw);

/* Give up: remove the files written and free rw. NULL is allowed. */
void vlog_rewrite_abort(struct vlog_rewrite *rw);

/* Bytes read and written by rw so far. */
void vlog_rewrite_bytes(const struct vlog_rewrite *rw, uint64_t *read,
                        uint64_t *written);

#endif /* RV_STORE_VLOG_H */
