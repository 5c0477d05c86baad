/* Internals shared by store.c, store_apply.c and store_query.c.
 *
 * LMDB tables (named databases in index.mdb). Integers are big-endian so
 * memcmp order is numeric order; str16 is a be16 length and the bytes;
 * "s64" is an int64 with its sign bit flipped (rv_i64_sortable).
 *
 *   TABLE    KEY                                   VALUE
 *   meta     "applied" | "digest" | "seq.run" | "seq.series" | "format"
 *   runid    run_id bytes                          be64 run_num
 *   run      be64 run_num                          run record (below)
 *   param    be64 run_num, key bytes               value bytes
 *   tag      be64 run_num, key bytes               value bytes
 *   series   be64 run_num, str16 key, ctx bytes    series record (below)
 *   open     be64 series_id                        the series' open chunk
 *   chunk    be64 series_id, s64 min_step,         chunk record (below)
 *            be64 raft index, be16 command no
 *   logs     be64 run_num, be64 first line no      vlog ptr, be16 cmd, be32 n
 *   art      be64 run_num, path bytes              u8 complete, be64 size,
 *                                                  sha256 (32), str16 content
 *                                                  type, be64 owner run_num,
 *                                                  str16 owner path
 *   artpart  be64 run_num, str16 path, be64 off    vlog ptr, be16 cmd, be32 n
 *   blob     sha256 (32)                           be64 refs, be64 owner
 *                                                  run_num, owner path
 *   client   be64 client_id                        be64 high-water seq, then
 *                                                  results of the last seqs
 *   team     team bytes                            be64 max_runs, be64 max_pts
 *   token    sha256 (32)                           u8 role, team bytes
 *   ixcr     be64 ~s64 created, run_id bytes       be64 run_num
 *   ixscope  be64 xxh64(project),                  (empty)
 *            be64 xxh64(experiment), be64 run_num
 *   ixstat   u8 status, be64 run_num               (empty)
 *   ixparam  str16 key, be64 xxh64(value), be64 run_num   (empty)
 *   ixtag    str16 key, be64 xxh64(value), be64 run_num   (empty)
 *   ixpv     str16 key, value (first STORE_SORT_STRING_BYTES bytes, zero
 *            padded to that width), be64 run_num    (empty): params in value
 *            order, for ORDER BY params.<key> (values hold no NUL byte, so
 *            the zero padding sorts a prefix first)
 *   cnt      counter key (STORE_CNT_*)             be64 count
 *
 * Counters: upper-case kinds count every run (the planner's posting list
 * sizes), lower-case kinds count active runs (analytics):
 *   'S' u8 status | 'J' be64 hash(project) | 'E' be64 hash(project)
 *   be64 hash(experiment)
 *   'P' str16 key be64 hash | 'T' str16 key be64 hash | 'R' str16 team
 *   'a' str16 team str16 project u8 status | 'b' str16 team str16 project
 *   be32 day
 *
 * Run record:
 *   OFFSET SIZE FIELD
 *        0    1 format (1)
 *        1    1 status (Rv__RunStatus)
 *        2    1 lifecycle (enum store_lifecycle)
 *        3    1 reserved, 0
 *        4    8 created_at_ms (s64)
 *       12    8 ended_at_ms (s64)
 *       20    8 n_points
 *       28    8 n_log_lines
 *       36    . str16 run_id, team, project, experiment, name, user
 *
 * Series record: be64 series_id, then the run summary of the series:
 * be64 count, f64 last, s64 last_step, s64 last_ts, f64 min, f64 max (f64:
 * the IEEE bits as be64); min and max ignore NaN values and are NaN while
 * only NaN has been seen. It stays small because queries read it for every
 * candidate run; the open chunk lives in its own table.
 *
 * Chunk (a value of the chunk table, and the open chunk of a series): the
 * points of one series in up to STORE_CHUNK_MAX_REFS commands, each a
 * reference into a vlog record. A command adds a reference to the series'
 * open chunk; the open chunk moves to the chunk table when it holds
 * STORE_CHUNK_MAX_REFS references or STORE_CHUNK_FLUSH_POINTS points, so a
 * log batch rewrites the run's open chunks (adjacent keys, few pages) but
 * touches the chunk table only about once every STORE_CHUNK_MAX_REFS
 * commands per series.
 *   be16 n_refs, be32 n_points, s64 min_step, s64 max_step,
 *   four points (s64 step, s64 ts, f64 value): first (smallest step, first
 *   logged on ties), last (greatest step, last logged on ties), min, max (the
 *   first point holding the minimum / maximum non-NaN value; the first point
 *   when all are NaN), then n_refs references:
 *   be32 segment, be32 offset, be32 len (the vlog record), be16 command no,
 *   be32 key_idx, be32 ctx_idx (in that command's dictionaries), be32 points,
 *   be64 raft index. */
#ifndef RV_STORE_STORE_INT_H
#define RV_STORE_STORE_INT_H

#include "proto/proto.h"
#include "store/store.h"
#include "store/vlog.h"

#include <lmdb.h>
#include <xxhash.h>

enum store_db {
    STORE_DB_META,
    STORE_DB_RUNID,
    STORE_DB_RUN,
    STORE_DB_PARAM,
    STORE_DB_TAG,
    STORE_DB_SERIES,
    STORE_DB_CHUNK,
    STORE_DB_OPEN,
    STORE_DB_LOGS,
    STORE_DB_ART,
    STORE_DB_ARTPART,
    STORE_DB_BLOB,
    STORE_DB_CLIENT,
    STORE_DB_TEAM,
    STORE_DB_TOKEN,
    STORE_DB_IXCR,
    STORE_DB_IXSCOPE,
    STORE_DB_IXSTAT,
    STORE_DB_IXPARAM,
    STORE_DB_IXTAG,
    STORE_DB_IXPV,
    STORE_DB_CNT,
    STORE_DB_NODE,
    STORE_DB_COUNT
};

#define STORE_FORMAT             1
#define STORE_RUN_HEADER         36
#define STORE_SUMMARY_BYTES      56
#define STORE_CHUNK_MAX_REFS     8
#define STORE_CHUNK_FLUSH_POINTS 512
#define STORE_CHUNK_HEADER       (2 + 4 + 8 + 8 + 4 * 24)
#define STORE_CHUNK_REF          34
#define STORE_CHUNK_MAX_BYTES \
    (STORE_CHUNK_HEADER + STORE_CHUNK_MAX_REFS * STORE_CHUNK_REF)
#define STORE_CHUNK_KEY     26
#define STORE_BOOT_ID_BYTES 48
/* DIR/synced: "RVSYNC02", 1 byte dirty flag, the boot id (zero padded),
 * be64 applied index at the last sync, be32 CRC-32C of the preceding bytes. */
#define STORE_MARKER_BYTES   (8 + 1 + STORE_BOOT_ID_BYTES + 8 + 4)
#define STORE_CLIENT_RESULTS 8 /* Results kept per client. */
#define STORE_DAY_MS         86400000

/* One command's points of a series: where they are in the vlog. */
struct store__ref {
    struct vlog_ptr ptr;
    uint16_t cmd_no;
    uint32_t key_idx, ctx_idx, n;
    uint64_t index;
};

/* A decoded chunk (see the layout above). */
struct store__chunk {
    uint32_t n_refs, n;
    int64_t min_step, max_step;
    struct store_point first, last, min, max;
    struct store__ref refs[STORE_CHUNK_MAX_REFS];
};

struct store {
    char *dir;
    MDB_env *env;
    MDB_dbi dbi[STORE_DB_COUNT];
    struct vlog *vlog;
    const struct rv_log *log;
    uint64_t applied_index;
    uint8_t digest[STORE_DIGEST_BYTES];
    uint64_t next_run_num, next_series_id;
    char boot_id[STORE_BOOT_ID_BYTES]; /* "" when unknown. */
    int marker_fd;                     /* DIR/synced, or -1. */
    int is_rebuilt;                    /* store_open rebuilt the index. */
    int is_dirty; /* Index written since the last sync (marker says so). */
    /* Scratch reused by apply (writer thread only). */
    uint32_t *scratch_order;
    size_t scratch_cap;
};

struct store_read {
    struct store *s;
    MDB_txn *txn;
    uint64_t applied_index;
    struct rv_buf vbuf; /* vlog read buffer. */
};

/* A write context: the transaction of one command plus the running hash
 * of its index writes (the digest covers every put and delete). */
struct store_wctx {
    struct store *s;
    MDB_txn *txn;
    XXH3_state_t *hash;
    uint64_t index;
    char *errmsg;
};

/* Map an LMDB code to RV_* and describe it in errmsg. */
int store__err_mdb(int rc, const char *what, char *errmsg);

/* Open the named tables in txn (creating them when MDB_CREATE is given). */
int store__dbs_open(MDB_txn *txn, MDB_dbi *dbi, unsigned flags, char *errmsg);

/* Hashed writes: every index write goes through these two. */
int store__put(struct store_wctx *w, enum store_db db, const void *k, size_t kn,
               const void *v, size_t vn);
int store__del(struct store_wctx *w, enum store_db db, const void *k,
               size_t kn);
/* Plain get within a write or read txn: RV_OK, RV_ENOTFOUND or error. */
int store__get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kn, MDB_val *v,
               char *errmsg);

/* Materialise the batch payload at index (already in the vlog at ptr) into
 * LMDB in one transaction, updating applied_index and the digest. */
int store__materialise(struct store *s, uint64_t index, const uint8_t *payload,
                       size_t n, struct vlog_ptr ptr, int is_malformed,
                       const char *malformed_msg, struct store_result **results,
                       size_t *n_results, char *errmsg);

/* Before the first index write after a sync: mark DIR/synced dirty (and
 * fdatasync it), so a later boot knows LMDB may hold unsynced pages. */
int store__marker_dirty(struct store *s, char *errmsg);

/* Chunk encoding: encode returns the bytes written (at most
 * STORE_CHUNK_MAX_BYTES); decode returns RV_OK or RV_ECORRUPT. */
size_t store__chunk_encode(const struct store__chunk *c, uint8_t *out);
int store__chunk_decode(const uint8_t *p, size_t n, struct store__chunk *c);
/* Fold the statistics of add (points logged after c's) into c. */
void store__chunk_merge(struct store__chunk *c, const struct store__chunk *add);

/* Decoding of records read from LMDB (borrowed bytes). */
int store__run_decode(const MDB_val *v, struct store_run *run);
int store__run_num_get(MDB_txn *txn, const struct store *s, const char *run_id,
                       uint64_t *run_num, char *errmsg);

/* The 64-bit hash used for value postings in ixparam/ixtag. */
static inline uint64_t
store__value_hash(const char *v, size_t n)
{
    return XXH3_64bits(v, n);
}

/* Key of ixpv for (key, value, run); out holds STORE_PV_KEY_MAX bytes.
 * Returns the key length. */
#define STORE_PV_KEY_MAX (2 + STORE_MAX_KEY_BYTES + STORE_SORT_STRING_BYTES + 8)
size_t store__pv_key(uint8_t *out, const char *key, size_t kn, const char *val,
                     size_t vn, uint64_t run_num);

/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
int store__utf8_valid(const char *s, size_t n);

/* MLflow's key syntax: ^[/\w.\- ]*$, non-empty, no "..", no leading '/'. */
int store__key_valid(const char *s, size_t n);

/* MLflow's run id syntax: ^[a-zA-Z0-9][\w\-]*$, at most 64 bytes. */
int store__run_id_valid(const char *s, size_t n);

#endif /* RV_STORE_STORE_INT_H */
