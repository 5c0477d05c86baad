/* Internals shared by the files of the store (module-private: never
 * included from outside store/). Which file answers which question:
 *
 *   store.c          open, close, sync, the sync marker, catch-up, rebuild,
 *                    verify, read transactions, hashed writes (put/del,
 *                    prefix deletes), string checks, the ixpv key
 *   store_marker.c   the sync marker DIR/synced (trust or rebuild at open)
 *   store_apply.c    dispatch of a command, idempotency (client_id, seq),
 *                    the digest, the nested-transaction redo
 *   store_run.c      run records: create, update, status, lifecycle, purge,
 *                    and the per-run reads (store_run_get)
 *   store_posting.c  counters, postings, params and tags; store_analytics
 *   store_metric.c   the chunk codec, log-batch writes, series summaries
 *   store_history.c  metric history and M4 downsampling (reads)
 *   store_log.c      log lines (writes and reads)
 *   store_artifact.c artifacts and blobs (writes and reads)
 *   store_admin.c    teams, quotas, tokens, cluster members (writes)
 *   store_auth.c     authorisation at apply, bytes of use, the audit log,
 *                    and the reads of tokens, teams and audit events
 *   store_plan.c     the run-list planner: candidates, sources, execution
 *   store_page.c     run-list rows, ORDER BY comparison, keyset page tokens
 *
 * Every write runs on the writer thread inside the apply transaction;
 * every read runs inside one store_read transaction (any thread, one
 * thread per struct store_read at a time). Unless a comment says otherwise
 * the functions below return RV_OK or an RV_* code with details in the
 * errmsg they are given (w->errmsg for writes).
 *
 * LMDB tables (named databases in index.mdb). Integers are big-endian so
 * memcmp order is numeric order; str16 is a be16 length and the bytes;
 * "s64" is an int64 with its sign bit flipped (rv_i64_sortable).
 *
 *   TABLE    KEY                                   VALUE
 *   meta     "applied" | "digest" | "seq.run" | "seq.series"
 *   (format  "index"                               be32 STORE_FORMAT: a
 *            table outside this list and every hash, store__format_check)
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
 *            be64 run_num, 'K' (9 bytes): the run's   up to STORE_CONTENT_KEYS
 *            content keys (log_batch retries)        of (16-byte key, s64
 *                                                  stamped ms), newest first
 *   team     team bytes                            be64 max_runs, be64 max_pts
 *                                                  per run, be64 max_bytes,
 *                                                  be64 max_points_per_s
 *                                                  (older records: the first
 *                                                  two only)
 *   token    sha256 (32)                           u8 role, team bytes (tokens
 *                                                  from before token ids)
 *   tokid    token id (16 hex digits)              store_auth.c's record
 *   audit    be64 index, be16 command no           s64 time, str16 token id,
 *                                                  str16 action, str16 team,
 *                                                  str16 target
 *   node     be64 node id                          the packed rv.NodePut
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
 *   ixmv     str16 team, u8 scope, [be64 xxh64(project)],   (empty)
 *            str16 metric key, u8 class, be64 value, be64 run_num: the
 *            latest value of each run's series (metric key, context "")
 *            in value order, twice per series: scope 'T' (team only) and
 *            'J' (team, project; an experiment query reads these and
 *            probes the experiment's posting list). class 0 is a number
 *            (value: the IEEE bits made sortable, -0 stored as +0), class
 *            1 NaN (value 0), so numbers sort before NaN; a run without
 *            the series has no entry. The team leads the key, so a scan
 *            never reads another team's entries.
 *   ixname   str16 team, u8 form, name bytes (the    (empty)
 *            first STORE_NAME_KEY_BYTES), 0x00, be64 run_num: run names in
 *            byte order, twice per run: form 'N' the name as it is, form
 *            'F' folded to ASCII lower case (ILIKE). Names hold no NUL
 *            byte, so the 0x00 ends a name (`= 'x'` reads the prefix
 *            "x\0", `LIKE 'x%'` the prefix "x"); a name longer than
 *            STORE_NAME_KEY_BYTES is cut (its candidates are re-checked by
 *            the full filter). The team leads the key. Written at create,
 *            rename (RunUpdate with a name) and purge; a delete keeps them.
 *   ixend    str16 team, s64 ended_at_ms,          (empty)
 *            be64 run_num: the runs that have an end time (ended_at_ms
 *            > 0), in end-time order, for ORDER BY end_time (runs without
 *            one sort last and are not listed). Written when a status
 *            change sets or clears the end time, and at purge.
 *   cnt      counter key (STORE_CNT_*)             be64 count
 *   mlx      MLflow experiments: 'I' be64 id, 'N' team + name hash, 'H'
 *            team + scope hash, 'T' team + id (store_mlflow.c draws them)
 *   retain   str16 team, project bytes             a retention rule
 *                                                  (store_retain.c)
 *   trash    be64 run_num                          s64 deleted_at_ms
 *
 * Counters: upper-case kinds count every run (the planner's posting list
 * sizes), lower-case kinds count active runs (analytics):
 *   'S' u8 status | 'J' be64 hash(project) | 'E' be64 hash(project)
 *   be64 hash(experiment)
 *   'P' str16 key be64 hash | 'T' str16 key be64 hash | 'R' str16 team
 *   'a' str16 team str16 project u8 status | 'b' str16 team str16 project
 *   be32 day
 * and bytes of use (quota): 'Y' str16 team | 'Z' be64 run_num;
 * 'M': the last MLflow experiment id given out.
 * meta "auth" = 1 once auth_on applied.
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
#include "store/filter.h"
#include "store/store.h"
#include "store/vlog.h"

#include <lmdb.h>
#include <pthread.h>
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
    STORE_DB_TOKID,
    STORE_DB_AUDIT,
    STORE_DB_IXMV,
    STORE_DB_IXNAME,
    STORE_DB_IXEND,
    STORE_DB_RETAIN,
    STORE_DB_TRASH,
    STORE_DB_MLX,
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

/* The divergence check's state (store_check.c). */
#define STORE_CHECK_RING 16
struct store__check_slot {
    uint64_t index;
    uint8_t local[STORE_DIGEST_BYTES], expected[STORE_DIGEST_BYTES];
    int has_local, has_expected, is_compared;
};
struct store__check {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int is_started, is_stopping;
    MDB_txn *job_txn; /* The read transaction to hash, or NULL. */
    uint64_t job_index;
    struct store__check_slot ring[STORE_CHECK_RING];
    int is_diverged;
    uint64_t diverged_index, last_index, n_hashed, n_compared;
    uint8_t last_hash[STORE_DIGEST_BYTES];
};

/* Compaction's state (store_compact.c). lock guards every field. */
struct store__compact {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int is_started, is_stopping, is_running;
    uint64_t rate;    /* bytes/s of the rewrite, 0: unpaced */
    MDB_txn *job_txn; /* The read transaction at job_index, or NULL. */
    uint64_t job_index;
    uint32_t job_seg; /* The segment holding job_index's record. */
    uint64_t requested_index, last_index, done_index, n_done;
    uint64_t bytes_rewritten, bytes_freed;
    int last_code;
    char last_error[RV_ERRMSG_SIZE];
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
    /* Apply's clock: the greatest stamped_at_ms applied so far (meta
     * "time.hw"). A command is judged at max(its stamp, this), so the time
     * of the log never goes backwards when a leader with a slower clock
     * takes over (ARCHITECTURE.md, "Time"). */
    int64_t time_hw_ms;
    char boot_id[STORE_BOOT_ID_BYTES]; /* "" when unknown. */
    int marker_fd;                     /* DIR/synced, or -1. */
    int is_rebuilt;                    /* store_open rebuilt the index. */
    int is_dirty; /* Index written since the last sync (marker says so). */
    struct store__check chk;
    uint64_t check_pending; /* A check entry applied (writer thread). */
    struct store__compact cmp;
    uint64_t compact_pending; /* A compact entry applied (writer thread). */
    uint32_t compact_seg;
    /* Scratch reused by apply (writer thread only). */
    uint32_t *scratch_order;
    size_t scratch_cap;
};

struct store_read {
    struct store *s;
    MDB_txn *txn;
    uint64_t applied_index;
    int is_scoped; /* Only team's runs are visible (store_read_begin). */
    char team[CONTRACT_MAX_TEAM_BYTES + 1];
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
    int64_t at_ms; /* the command's time: max(stamp, time_hw_ms); 0: none */
};

/* Columns of a run record's strings, in record order. */
enum {
    RUN_ID,
    RUN_TEAM,
    RUN_PROJECT,
    RUN_EXPERIMENT,
    RUN_NAME,
    RUN_USER,
    RUN_N_STR
};

/* A run record with borrowed strings (valid while the txn lives). */
struct store__rview {
    uint64_t run_num;
    uint8_t status, lifecycle;
    int64_t created_at_ms, ended_at_ms;
    uint64_t n_points, n_log_lines;
    const char *str[RUN_N_STR];
    size_t len[RUN_N_STR];
};

/* A run record decoded into a private copy (LMDB's bytes die at the next
 * write of the transaction). */
struct store__runrec {
    uint64_t run_num;
    uint8_t status, lifecycle;
    int64_t created_at_ms, ended_at_ms;
    uint64_t n_points, n_log_lines;
    const char *str[RUN_N_STR];
    uint16_t len[RUN_N_STR];
    uint8_t raw[STORE_RUN_HEADER + RUN_N_STR * 2 +
                4 * CONTRACT_MAX_SCOPE_BYTES + CONTRACT_MAX_TEAM_BYTES +
                CONTRACT_MAX_NAME_BYTES + CONTRACT_MAX_RUN_ID_BYTES];
};

/* What a run purge passes to the store__del_prefix callbacks. */
struct store__purge {
    uint64_t run_num;
    enum store_db posting_db; /* STORE_DB_IXPARAM or STORE_DB_IXTAG. */
};

/* The run-list candidate being evaluated, seen through struct filter_run. */
struct store__cand {
    struct store_read *r;
    struct store__rview rv;
    char strs[RUN_N_STR][CONTRACT_MAX_NAME_BYTES + 1];
    struct filter_run fr;
};

/* A run-list sort value: its kind orders before its value. */
enum { SK_NUM, SK_STR, SK_NAN, SK_MISSING };

struct store__sortval {
    int kind;
    double num;
    size_t len;
    char str[STORE_SORT_STRING_BYTES];
};

/* A run-list row: what ORDER BY and a page token need of one run. */
struct store__row {
    uint64_t run_num;
    int64_t created_at_ms;
    size_t id_len;
    char run_id[CONTRACT_MAX_RUN_ID_BYTES];
    struct store__sortval v[FILTER_MAX_ORDER_TERMS];
};

/* ---- store.c: errors, hashed writes, helpers ---------------------------- */

/* Map an LMDB code to RV_* and describe it in errmsg. */
int store__err_mdb(int rc, const char *what, char *errmsg);

/* Open the named tables in txn (creating them when MDB_CREATE is given). */
int store__dbs_open(MDB_txn *txn, MDB_dbi *dbi, unsigned flags, char *errmsg);

/* Hashed writes: every index write goes through these two. */
int store__put(struct store_wctx *w, enum store_db db, const void *k, size_t kn,
               const void *v, size_t vn);
int store__del(struct store_wctx *w, enum store_db db, const void *k,
               size_t kn);
/* The same through an open cursor on db (several writes to one table
 * without a cursor set-up each); the digest sees the same operations. */
int store__cur_put(struct store_wctx *w, MDB_cursor *cur, enum store_db db,
                   const void *k, size_t kn, const void *v, size_t vn);
int store__cur_del(struct store_wctx *w, MDB_cursor *cur, enum store_db db,
                   const void *k, size_t kn);
/* Plain get within a write or read txn: RV_OK, RV_ENOTFOUND or error. */
int store__get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kn, MDB_val *v,
               char *errmsg);

/* Delete every key of db starting with prefix, calling each_cb (when not
 * NULL) on each key and value first. */
int store__del_prefix(struct store_wctx *w, enum store_db db,
                      const uint8_t *prefix, size_t n,
                      int (*each_cb)(struct store_wctx *w, const MDB_val *k,
                                     const MDB_val *v, void *data),
                      void *data);
/* Call each_cb on every key and value of db in txn, in key order, until it
 * returns something else than RV_OK: STORE_WALK_STOP ends the walk with
 * RV_OK, any other code ends it with that code. */
#define STORE_WALK_STOP (-1)
int store__walk(MDB_txn *txn, const struct store *s, enum store_db db,
                int (*each_cb)(const MDB_val *k, const MDB_val *v, void *data),
                void *data, char *errmsg);
/* Check an optional (or, with is_required, non-empty) string field: at
 * most max bytes, valid UTF-8, no control character; RV_EINVAL naming what
 * in errmsg otherwise. */
int store__str_check(const char *s, size_t max, int is_required,
                     const char *what, char *errmsg);
/* A NUL-terminated copy of s[0..n); caller frees with free(). NULL when
 * out of memory. */
char *store__strndup(const char *s, size_t n);

/* The path of file name in dir into out; RV_EINVAL if it does not fit. */
int store__index_path(const char *dir, char *out, size_t size,
                      const char *name);

/* ---- store_marker.c: the sync marker ----------------------------------- */

/* The boot id (cfg->boot_id, else the kernel's) into out, zero padded to
 * STORE_BOOT_ID_BYTES; "" when unknown. */
void store__boot_id(const struct store_config *cfg, char *out);
/* Open (creating) DIR/synced into s->marker_fd; RV_EIO on failure. */
int store__marker_open(struct store *s, char *errmsg);
/* Whether the marker says the index must be rebuilt (1) or not (0). */
int store__marker_says_rebuild(const struct store *s, char *why, size_t why_n);
/* Remove DIR/synced (with the index it describes: rebuild-index). */
int store__marker_remove(const char *dir, char *errmsg);
/* Write the marker, dirty or clean at s->applied_index, and fdatasync it;
 * RV_EIO on failure. */
int store__marker_put(struct store *s, int is_dirty, char *errmsg);
/* Before the first index write after a sync: mark DIR/synced dirty (and
 * fdatasync it), so a later boot knows LMDB may hold unsynced pages. */
int store__marker_dirty(struct store *s, char *errmsg);

/* ---- store_apply.c: commands ------------------------------------------- */

/* Decode an archived record's payload for replay. A payload that does not
 * decode leaves *batch NULL and the reason in why (it is applied as the
 * malformed batch it was live); a compacted record is RV_ECORRUPT. */
int store__decode_record(uint64_t index, const uint8_t *payload, size_t n,
                         Rv__CommandBatch **batch, char *why, char *errmsg);

/* Materialise a batch (already in the vlog at ptr) into LMDB in one
 * transaction, updating applied_index and the digest. Takes batch, freed
 * here; a NULL batch is a malformed entry whose reason is malformed_msg. */
int store__materialise(struct store *s, uint64_t index, Rv__CommandBatch *batch,
                       struct vlog_ptr ptr, const char *malformed_msg,
                       struct store_result **results, size_t *n_results,
                       char *errmsg);

/* ---- store_mlflow.c: MLflow experiments ---------------------------------- */

/* The MLflow command c (its result's run_id: the id, in decimal). */
int store__mlflow_experiment(struct store_wctx *w, const Rv__Command *c,
                             struct store_result *res);
/* The id of team's (project, experiment), made now if it has none; 0 for
 * ("default", "Default"). */
int store__mlflow_ensure(struct store_wctx *w, const char *team,
                         const char *project, const char *experiment,
                         int64_t now, uint64_t *id);

/* ---- store_run.c: run records ------------------------------------------ */

/* Decode run record v (borrowed bytes) into rv; the strings point into v.
 * RV_ECORRUPT if it does not decode. */
int store__run_decode(const MDB_val *v, uint64_t run_num,
                      struct store__rview *rv);
/* The run number of run_id: RV_ENOTFOUND if there is no such run. */
int store__run_num_get(MDB_txn *txn, const struct store *s, const char *run_id,
                       uint64_t *run_num, char *errmsg);
/* Read run_id into rr for a write; the _active form fails with RV_ESTATE on
 * a deleted run. store__runrec_put writes rr back. */
int store__runrec_get_active(struct store_wctx *w, const char *run_id,
                             struct store__runrec *rr);
int store__runrec_put(struct store_wctx *w, const struct store__runrec *rr);
/* The commands on runs. */
int store__run_create(struct store_wctx *w, const Rv__RunCreate *c,
                      struct store_result *res);
int store__run_update(struct store_wctx *w, const Rv__RunUpdate *u);
int store__run_status(struct store_wctx *w, const Rv__RunSetStatus *st);
int store__run_lifecycle(struct store_wctx *w, const char *run_id,
                         enum store_lifecycle to);
int store__run_purge(struct store_wctx *w, const char *run_id);
/* Reads: the run number of run_id if the read's scope may see it
 * (RV_ENOTFOUND otherwise, with the same text as a missing run). */
int store__read_run_num(struct store_read *r, const char *run_id,
                        uint64_t *run_num, char *errmsg);
/* 1 if the read's scope may see a run of team tn[0..n). */
int store__read_sees(const struct store_read *r, const char *team, size_t n);
/* Reads: run_num's record (RV_ECORRUPT if missing), and a struct
 * store_run filled from it (params, tags and summaries with is_full). */
int store__rview_get(struct store_read *r, uint64_t run_num,
                     struct store__rview *rv, char *errmsg);
int store__run_fill(struct store_read *r, const struct store__rview *rv,
                    int is_full, struct store_run *run, char *errmsg);

/* ---- store_posting.c: counters, postings, params and tags -------------- */

/* Append a str16 (be16 length, bytes) at p; returns the bytes written. */
size_t store__key_str16(uint8_t *p, const char *s, size_t n);
/* The counter of key in txn, a read or write transaction (0 when absent):
 * the planner's posting-list sizes and the team quotas. */
/* Add delta to counter key (a counter at 0 is deleted). */
int store__cnt_add(struct store_wctx *w, const uint8_t *key, size_t kn,
                   int64_t delta);
uint64_t store__cnt_get(MDB_txn *txn, const struct store *s, const uint8_t *key,
                        size_t kn);
/* Key of the run counter of rr's team into k; returns its length. */
size_t store__cnt_key_team(uint8_t *k, const struct store__runrec *rr);
/* Add delta to the active-run counters of rr. */
int store__cnt_active(struct store_wctx *w, const struct store__runrec *rr,
                      int64_t delta);
/* Add (delta 1) or drop (delta -1) the postings and counters of rr. */
int store__run_index(struct store_wctx *w, const struct store__runrec *rr,
                     int64_t delta);
/* Key of the param, tag or artifact tables: be64 run_num, key bytes. */
size_t store__kv_key(uint8_t *k, uint64_t run_num, const char *key, size_t n);
/* Add or drop the posting of (key, val) of run_num in db (ixparam, ixtag). */
int store__posting(struct store_wctx *w, enum store_db db, const char *key,
                   size_t kn, const char *val, size_t vn, uint64_t run_num,
                   int64_t delta);
/* Check and set the params and tags of run_num. */
/* Remove tag key of run_num (RV_ENOTFOUND when it has none). */
int store__tag_del(struct store_wctx *w, uint64_t run_num, const char *key);
int store__kvs_apply(struct store_wctx *w, uint64_t run_num, Rv__KV **params,
                     size_t n_params, Rv__KV **tags, size_t n_tags);

/* ---- store_metric.c: chunks, metric writes, summaries ------------------ */

/* Chunk encoding: encode returns the bytes written (at most
 * STORE_CHUNK_MAX_BYTES); decode returns RV_OK or RV_ECORRUPT. */
size_t store__chunk_encode(const struct store__chunk *c, uint8_t *out);
int store__chunk_decode(const uint8_t *p, size_t n, struct store__chunk *c);
/* Fold the statistics of add (points logged after c's) into c. */
void store__chunk_merge(struct store__chunk *c, const struct store__chunk *add);
/* Read the series summaries of run_num into run->metrics. */
int store__summary_load(struct store_read *r, uint64_t run_num,
                        struct store_run *run, char *errmsg);
/* The LogBatch command: params, tags and metric points of one run. */
int store__log_batch(struct store_wctx *w, const Rv__LogBatch *b,
                     const ProtobufCBinaryData *content_key,
                     struct vlog_ptr ptr, uint16_t cmd_no);

/* ---- store_log.c, store_artifact.c, store_admin.c: commands ------------ */

int store__log_lines(struct store_wctx *w, const Rv__LogLines *ll,
                     struct vlog_ptr ptr, uint16_t cmd_no);
int store__artifact_chunk(struct store_wctx *w, const Rv__ArtifactChunk *c,
                          struct vlog_ptr ptr, uint16_t cmd_no);
/* store__del_prefix callback for the art table: release the artifact's
 * blob reference and its parts (a run purge). */
int store__artifact_release(struct store_wctx *w, const MDB_val *k,
                            const MDB_val *v, void *data);
/* The quotas of team (0 when unlimited); n is strlen(team). */
struct store__limits {
    uint64_t max_runs, max_points_per_run, max_bytes, max_points_per_s;
    int is_team; /* A team record exists. */
};
int store__team_limits(struct store_wctx *w, const char *team, size_t n,
                       struct store__limits *lim);
int store__team_decode(const MDB_val *v, struct store__limits *lim);
int store__quota_put(struct store_wctx *w, const Rv__QuotaPut *q);

/* ---- store_retain.c: retention rules, trash, the sweep ----------------- */

/* Most runs one retention_sweep trashes, and most it purges: a purge of a
 * run with metrics and logs costs ~0.3 ms of apply (docs/BENCHMARKS.md),
 * and apply runs on the raft loop, so a sweep stays well under an
 * election timeout. The leader proposes the next sweep at once while
 * more is due. */
#define STORE_SWEEP_MAX_RUNS 128
int store__retention_put(struct store_wctx *w, const Rv__RetentionPut *p);
int store__retention_sweep(struct store_wctx *w, const Rv__RetentionSweep *sw,
                           uint16_t cmd_no);
/* Record (is_deleted) or forget the trash record of run_num, stamped with
 * the command's time. */
int store__trash_mark(struct store_wctx *w, uint64_t run_num, int is_deleted);
int store__auth_on(struct store_wctx *w);

/* ---- store_auth.c: authorisation at apply, use, audit ------------------ */

/* What store__authorise learnt about a command, for store__account: the
 * team it acts in, its run (0: none or not yet created) and its bytes. */
struct store__cmdctx {
    char team[CONTRACT_MAX_TEAM_BYTES + 1];
    uint64_t run_num;
    uint64_t bytes;
};
/* Before anything else of a command (read-only): is its token valid at
 * its stamped time, its role enough, its team its own (another team's
 * run: RV_ENOTFOUND; its run id on a create: RV_EEXIST)? Commands without
 * a token pass while auth is off, and internal ones (membership, noop,
 * auth_on) always. Fills ctx. Errors: RV_EUNAUTHENTICATED, RV_EPERM,
 * RV_ENOTFOUND, RV_EEXIST, RV_EINVAL (no body), local faults. */
int store__authorise(struct store_wctx *w, const Rv__Command *c,
                     struct store__cmdctx *ctx);
/* Would the command's bytes take its team past max_bytes? RV_EQUOTA. */
int store__bytes_check(struct store_wctx *w, const struct store__cmdctx *ctx);
/* Give the bytes of use of run_num back to team (a purge). */
int store__use_release(struct store_wctx *w, const char *team,
                       uint64_t run_num);
/* After it succeeded: bytes of use, the audit record. */
int store__account(struct store_wctx *w, const Rv__Command *c, uint16_t cmd_no,
                   struct store__cmdctx *ctx);
int store__auth_on_get(MDB_txn *txn, const struct store *s);
int store__command_role(const Rv__Command *c);
int store__command_is_internal(const Rv__Command *c);
int store__token_decode_rec(const MDB_val *k, const MDB_val *v,
                            struct store_token *t);
int store__token_encode_rec(const struct store_token *t, struct rv_buf *b);
int store__team_put(struct store_wctx *w, const Rv__TeamPut *t);
int store__token_put(struct store_wctx *w, const Rv__TokenPut *t);
int store__token_del(struct store_wctx *w, const Rv__TokenDel *t);
int store__node_put(struct store_wctx *w, const Rv__NodePut *n);
int store__node_del(struct store_wctx *w, const Rv__NodeDel *n);

/* ---- store_compact.c: compaction -------------------------------------- */

/* Counter (cnt table) of the bytes of use purged since the last
 * compaction. */
#define STORE_CNT_RECLAIM 'K'

/* The compact command at w->index (its record at ptr). */
int store__compact_apply(struct store_wctx *w, struct vlog_ptr ptr);
/* After an entry committed: hand a compaction to the thread. */
void store__compact_after_commit(struct store *s);
/* At close: stop the thread. */
void store__compact_stop(struct store *s);
/* Load the checkpoint's image into s's empty index (then meta), check
 * it against the checkpoint's content hash. */
int store__image_load(struct store *s, const char *vlog_dir,
                      const struct vlog_checkpoint *ck, char *errmsg);
/* The vlog_rewrite_fn of compaction (arg: its context). */
int store__compact_record(void *arg, uint64_t index, struct vlog_ptr ptr,
                          uint8_t *payload, size_t len, int *is_changed,
                          char *errmsg);
/* Load applied index, digest, sequences and time from meta (store.c). */
int store__meta_load(struct store *s, char *errmsg);

/* ---- store_check.c: the divergence check ------------------------------ */

/* The content hash of every table in txn (but meta "diverged"). */
int store__content_hash(MDB_txn *txn, const struct store *s,
                        uint8_t out[STORE_DIGEST_BYTES], char *errmsg);
/* The check command: record the leader's hash it carries, compare. */
int store__check_apply(struct store_wctx *w, const Rv__Check *ck);
/* After an entry committed: start hashing if it held a check. */
void store__check_after_commit(struct store *s);
/* At open: the persisted diverged flag. */
void store__check_load(struct store *s, MDB_txn *txn);
/* At close: stop the hashing thread. */
void store__check_stop(struct store *s);

/* ---- store_page.c: run-list rows, order and page tokens ---------------- */

void store__sortval_num(struct store__sortval *sv, double d);
/* Fill row from candidate c: the sort values of f's ORDER BY terms. */
void store__row_fill(const struct filter *f, struct store__cand *c,
                     struct store__row *row);
/* Compare two sort values / rows in f's order (<0, 0, >0). */
int store__term_cmp(const struct filter_order_term *t,
                    const struct store__sortval *x,
                    const struct store__sortval *y);
int store__row_cmp(const struct filter *f, const struct store__row *a,
                   const struct store__row *b);
/* The hash of a query's filter and order that a page token carries. */
uint64_t store__query_hash(const struct store_query *q);
/* Page tokens: encode the row after which the next page starts into out
 * (CONTRACT_PAGE_TOKEN_BYTES); decode returns RV_EINVAL on a token that does
 * not decode or belongs to another query. */
void store__token_encode(const struct filter *f, uint64_t qhash,
                         const struct store__row *row, char *out);
int store__token_decode(const struct filter *f, uint64_t qhash, const char *tok,
                        struct store__row *row, char *errmsg);

/* The 64-bit hash used for value postings in ixparam/ixtag. */
static inline uint64_t
store__value_hash(const char *v, size_t n)
{
    return XXH3_64bits(v, n);
}

/* Key of ixpv for (key, value, run); out holds STORE_PV_KEY_MAX bytes.
 * Returns the key length. */
#define STORE_PV_KEY_MAX \
    (2 + CONTRACT_MAX_KEY_BYTES + STORE_SORT_STRING_BYTES + 8)
size_t store__pv_key(uint8_t *out, const char *key, size_t kn, const char *val,
                     size_t vn, uint64_t run_num);

/* ---- ixmv: the latest-value index -------------------------------------- */

#define STORE_MV_SCOPE_MAX (2 + CONTRACT_MAX_TEAM_BYTES + 1 + 8)
#define STORE_MV_KEY_MAX                                       \
    (STORE_MV_SCOPE_MAX + 2 + CONTRACT_MAX_KEY_BYTES + 9 + 8 + \
     1)                  /* +1: a seek key past a value. */
#define STORE_MV_VALUE 9 /* u8 class, be64 value. */

/* The scope prefix of ixmv into out (STORE_MV_SCOPE_MAX bytes): team
 * only (project NULL) or team and project; returns its length. */
size_t store__mv_scope(uint8_t *out, const char *team, size_t tn,
                       const char *project, size_t pn);
/* The class and value bytes of d (STORE_MV_VALUE bytes) into out. */
void store__mv_value(uint8_t *out, double d);
/* Replace run rr's entries of metric key (old_val when has_old, by
 * new_val when has_new) in both scopes. */
int store__mv_update(struct store_wctx *w, const struct store__runrec *rr,
                     const char *key, size_t kn, int has_old, double old_val,
                     int has_new, double new_val);

/* ---- ixname: the run-name index --------------------------------------- */

#define STORE_NAME_KEY_BYTES 400
#define STORE_NAME_SCOPE_MAX (2 + CONTRACT_MAX_TEAM_BYTES + 1)
#define STORE_NAME_KEY_MAX   (STORE_NAME_SCOPE_MAX + STORE_NAME_KEY_BYTES + 1 + 8)
#define STORE_NAME_RAW       'N'
#define STORE_NAME_FOLDED    'F'

/* The ixname prefix (team, form) into out (STORE_NAME_SCOPE_MAX bytes);
 * returns its length. */
size_t store__name_scope(uint8_t *out, const char *team, size_t tn, int form);
/* Append name[0..n) (cut to STORE_NAME_KEY_BYTES, ASCII lower case when
 * form is STORE_NAME_FOLDED) at out; returns the bytes written. */
size_t store__name_bytes(uint8_t *out, const char *name, size_t n, int form);
/* Add (delta 1) or drop (delta -1) the two ixname entries of rr. */
int store__name_index(struct store_wctx *w, const struct store__runrec *rr,
                      int64_t delta);

/* ---- ixend: the end-time index ---------------------------------------- */

#define STORE_END_KEY_MAX (2 + CONTRACT_MAX_TEAM_BYTES + 8 + 8)

/* The ixend key of (team, ended_at_ms, run_num) into out
 * (STORE_END_KEY_MAX bytes); returns its length. */
size_t store__end_key(uint8_t *out, const char *team, size_t tn,
                      int64_t ended_at_ms, uint64_t run_num);
/* Add (delta 1) or drop (delta -1) rr's ixend entry (none when rr has no
 * end time). */
int store__end_index(struct store_wctx *w, const struct store__runrec *rr,
                     int64_t delta);

#endif /* RV_STORE_STORE_INT_H */
