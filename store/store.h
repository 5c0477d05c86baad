/* The store: the vlog archive plus the LMDB indexes materialised from it,
 * the deterministic apply of committed entries, and the queries.
 *
 * Invariants: LMDB's applied_index never exceeds the vlog's last index; an
 * entry at or below applied_index is skipped; apply is a pure function of
 * (state, entry), so every replica reaches the same digest at the same
 * index, and rebuilding LMDB from the vlog alone reproduces it.
 *
 * Threads: one writer thread (the raft loop) calls store_apply, store_sync
 * and store_close. Read transactions (store_read_*) may be used on any
 * thread, each by one thread at a time; readers never block the writer. */
#ifndef RV_STORE_STORE_H
#define RV_STORE_STORE_H

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "proto/contract.h"

#include <stddef.h>
#include <stdint.h>

/* Store-internal sizes; the wire limits are in proto/contract.h. */
#define STORE_DIGEST_BYTES        16
#define STORE_SORT_STRING_BYTES   200 /* Strings sort by this prefix. */
#define STORE_DEFAULT_MAP_BYTES   ((size_t)64 << 30)
#define STORE_FETCH_RECORD_HEADER 12 /* be64 index, be32 length. */
/* Content keys (Command.content_key) kept per run, and how long one counts
 * (by the leader's stamped time): a log_batch whose key is among them has
 * its metric points skipped as a retry. */
#define STORE_CONTENT_KEYS      32
#define STORE_CONTENT_WINDOW_MS (10 * 60 * 1000)
#define STORE_CONTENT_KEY_BYTES 16

struct store;

struct store_config {
    const char *dir;          /* Data directory; created if missing. */
    size_t map_bytes;         /* LMDB map size; 0 = default (sparse). */
    uint64_t segment_bytes;   /* vlog segment size; 0 = default 64 MiB. */
    const struct rv_log *log; /* May be NULL. Borrowed; must outlive. */
    const char *boot_id;      /* This boot's id; NULL reads the kernel's
                                 /proc/sys/kernel/random/boot_id. */
};

/* The outcome of one command of an applied batch. */
struct store_result {
    int code;         /* RV_OK or the business error (RV_EINVAL, ...). */
    int is_duplicate; /* An earlier apply of the same (client_id, seq). */
    int is_resumed;   /* run_create resumed an existing run. */
    char run_id[CONTRACT_MAX_RUN_ID_BYTES + 1];
    char message[RV_ERRMSG_SIZE];
};

/* ---- Lifecycle ---------------------------------------------------------
 * The data directory holds vlog/ (segments) and index.mdb (LMDB). */

/* Open the store in cfg->dir, recover the vlog (store/vlog.h) and bring
 * LMDB level with it: records past applied_index are materialised; an
 * LMDB ahead of the vlog is rebuilt from the vlog. LMDB runs MDB_NOSYNC, so
 * after an OS crash or power loss its pages written since the last
 * store_sync cannot be trusted: store_sync records (boot id, applied index)
 * in DIR/synced, and an index opened under another boot id at a different
 * applied index (or with a damaged marker) is rebuilt from the vlog. On
 * RV_OK close *out with store_close(). Errors: RV_ECORRUPT, RV_EIO,
 * RV_ENOMEM, RV_EINVAL. */
int store_open(struct store **out, const struct store_config *cfg,
               char *errmsg);

/* 1 if store_open had to rebuild the index (it was ahead of the vlog, or
 * written after the last sync of an earlier boot), else 0. */
int store_rebuilt_on_open(const struct store *s);
void store_close(struct store *s); /* NULL is allowed. Does not sync. */

/* ---- Apply (writer thread) --------------------------------------------- */

/* Apply the committed raft entry (an envelope, proto/proto.h) at index.
 *
 * Appends it to the vlog, then updates LMDB in one write transaction that
 * also stores applied_index and the new digest. Each command is atomic on
 * its own; its business error goes into its result and the entry still
 * counts as applied. A malformed envelope is applied as an empty batch with
 * one RV_EMALFORMED result. An index at or below applied_index is skipped:
 * RV_OK with *n_results = 0.
 *
 * On RV_OK *results is an array of *n_results (caller frees with free()),
 * or NULL when n_results is 0. Errors are local faults (RV_EIO,
 * RV_ENOSPACE, RV_ECORRUPT, RV_ENOMEM, RV_EINVAL for an index that skips
 * ahead of what the vlog holds): the node must stop (fail-stop). */
int store_apply(struct store *s, uint64_t index, const void *entry, size_t len,
                struct store_result **results, size_t *n_results, char *errmsg);

/* Make everything applied so far durable: fdatasync the vlog, sync LMDB,
 * then record (boot id, applied index) in DIR/synced. Errors: RV_EIO
 * (fail-stop). */
int store_sync(struct store *s, char *errmsg);

/* store_sync in three steps, so that its slow part runs on another thread
 * while the writer goes on applying. store_sync_begin (writer thread)
 * takes the applied index and a descriptor of the vlog's current segment;
 * store_sync_run (any one thread) fdatasyncs that vlog segment, then syncs
 * LMDB: everything applied up to job->index is then durable in the vlog.
 * store_sync_end (writer thread, exactly once per begun job) closes the
 * descriptor and returns the run's outcome (RV_EIO: fail-stop; the vlog
 * refuses appends from then on). It records "clean at job->index" in
 * DIR/synced only if nothing was applied since begin: LMDB pages written
 * during the run may be only partly durable, so the marker stays "dirty"
 * and an OS crash leads to a rebuild of the index from the vlog, as after
 * any write past a sync. */
struct store_sync_job {
    struct store *s;
    uint64_t index;
    int vlog_fd;
    int rc;
    char errmsg[RV_ERRMSG_SIZE];
};
int store_sync_begin(struct store *s, struct store_sync_job *job, char *errmsg);
void store_sync_run(struct store_sync_job *job);
int store_sync_end(struct store_sync_job *job, char *errmsg);

uint64_t store_applied_index(const struct store *s);

/* Catch-up: archive and materialise one record fetched from a peer's vlog
 * (the payload as store_fetch_records gives it) at index, which must be
 * above the applied index (raft indexes of barriers and configuration
 * changes are not in the vlog, so records need not be consecutive).
 * Writer thread. Errors as store_apply, and RV_EINVAL for an index at or
 * below the applied one. */
int store_apply_record(struct store *s, uint64_t index, const void *payload,
                       size_t n, char *errmsg);

/* Serve catch-up: append to out the vlog records with index in
 * [from, to] (to 0: no bound), each as be64 index, be32 length, payload,
 * stopping once out has grown by max_bytes (at least one record is given).
 * *last is the index of the last record added (0 if none). Any thread.
 * Errors: RV_ECORRUPT, RV_EIO, RV_ENOMEM. */
int store_fetch_records(struct store *s, uint64_t from, uint64_t to,
                        size_t max_bytes, struct rv_buf *out, uint64_t *last,
                        char *errmsg);

/* The vlog's sealed segments (see vlog_segments). Any thread. */
struct vlog_segment_info;
size_t store_sealed_segments(struct store *s, struct vlog_segment_info *out,
                             size_t max);

/* Bytes of the vlog, all segments. Any thread. */
uint64_t store_vlog_bytes(struct store *s);
void store_digest(const struct store *s, uint8_t out[STORE_DIGEST_BYTES]);
/* Lower-case hex of the digest into out[2 * STORE_DIGEST_BYTES + 1]. */
void store_digest_hex(const uint8_t d[STORE_DIGEST_BYTES], char *out);

/* ---- Backup (store_backup.c) -------------------------------------------
 * An online backup is the vlog up to one applied index N plus (N,
 * digest): replaying it rebuilds an index with that digest. A compacted
 * vlog's backup also holds its checkpoint: the image of the index at C
 * (C <= N) and the compaction manifest, and its segments are the
 * rewritten ones; the replay loads the image and replays the records
 * after C (the path of store_open over an empty index). */

struct store_backup_file {
    uint32_t number;  /* Segment number; 0 for the image and the manifest. */
    char name[48];    /* In DIR/vlog/: "NNNNNNNN.seg", "NNNNNNNN.c<C>.seg",
                         "image.<C>", "compact". */
    int fd;           /* Opened at the backup's moment: a file replaced or
                         unlinked later stays readable. */
    uint64_t bytes;   /* Its bytes that belong to the backup (a segment:
                         up to the end of record N). */
    int is_immutable; /* Its bytes under this name never change (every
                         file but the manifest): a hash may be cached. */
    /* SHA-256 of the bytes store_backup_read gave in order from offset 0:
     * once read_hashed reaches bytes, has_read_sha256 and read_sha256 say
     * the file's hash without reading it again. */
    void *read_ctx;
    uint64_t read_hashed;
    int has_read_sha256;
    uint8_t read_sha256[32];
};

struct store_backup {
    uint64_t index;
    uint8_t digest[STORE_DIGEST_BYTES];
    uint64_t checkpoint;             /* The compaction checkpoint C; 0: none. */
    struct store_backup_file *files; /* Image and manifest first, then the
                                        segments, oldest first. */
    size_t n_files;
};

/* Pin the applied index and digest of one read transaction and the
 * vlog's file set at that moment (vlog_pin: a compaction that commits
 * later does not change it): every segment holding records up to the
 * index, the newest cut after the record of that index, and the
 * checkpoint's image and manifest when compacted. Any thread. Free with
 * store_backup_end. Errors: RV_EIO, RV_ECORRUPT (a file that is no
 * segment), RV_ENOMEM, RV_EUNAVAILABLE (compactions kept switching files
 * while the set was taken). */
int store_backup_begin(struct store *s, struct store_backup *b, char *errmsg);
void store_backup_end(struct store_backup *b); /* NULL is allowed. */
/* SHA-256 of f's bytes [0, f->bytes). RV_EIO, RV_ENOMEM. */
int store_backup_sha256(const struct store_backup_file *f, uint8_t out[32],
                        char *errmsg);
/* n bytes of f from offset (within f->bytes: else RV_EINVAL); bytes read
 * in order from 0 are hashed as they go (read_sha256). */
int store_backup_read(struct store_backup_file *f, uint64_t offset, void *buf,
                      size_t n, char *errmsg);

/* ---- Offline maintenance ----------------------------------------------- */

struct store_check {
    uint64_t n_records, n_segments, vlog_last_index, torn_bytes;
    uint64_t applied_index; /* Stored in LMDB (0 if no LMDB). */
    uint8_t stored_digest[STORE_DIGEST_BYTES];
    uint8_t computed_digest[STORE_DIGEST_BYTES];
    int is_digest_equal;
};

/* Regenerate LMDB in dir from the vlog alone (the old index.mdb is
 * replaced). Fills chk: the old stored digest and the new one. The vlog is
 * checked first: if it is corrupt, RV_ECORRUPT is returned and nothing is
 * changed. The store must not be open elsewhere. */
int store_rebuild_index(const char *dir, const struct rv_log *log,
                        struct store_check *chk, char *errmsg);

/* Check every vlog CRC and recompute the digest by replaying the vlog into
 * a scratch LMDB up to the stored applied_index; compare it with the stored
 * digest. Read-only for the data. RV_OK means the digests are equal and
 * every CRC holds; RV_ECORRUPT otherwise (details in errmsg and chk). */
int store_verify(const char *dir, const struct rv_log *log,
                 struct store_check *chk, char *errmsg);

/* ---- Reads (any thread) -------------------------------------------------
 * A read transaction sees one consistent applied index. Strings returned
 * inside structs are owned by those structs and freed by their _free. */

struct store_read;

/* Begin a read that sees only the runs of team (and its tokens, audit
 * events and quota), or, with STORE_EVERY_TEAM, everything. The scope is
 * applied inside every read below where the data is read: a run of
 * another team is answered RV_ENOTFOUND by name, is never in a list, never
 * counted (totals, analytics), and its series, logs and artifacts are not
 * found. team is copied; it is at most CONTRACT_MAX_TEAM_BYTES bytes
 * (RV_EINVAL otherwise). */
#define STORE_EVERY_TEAM ((const char *)0)
int store_read_begin(struct store *s, const char *team, struct store_read **out,
                     char *errmsg);
void store_read_end(struct store_read *r); /* NULL is allowed. */
uint64_t store_read_applied_index(const struct store_read *r);
/* The digest at the read's applied index (zeros for an empty store). */
void store_read_digest(const struct store_read *r,
                       uint8_t out[STORE_DIGEST_BYTES]);

enum store_lifecycle { STORE_ACTIVE = 0, STORE_DELETED = 1 };

struct store_kv {
    char *key;
    char *value;
};

struct store_summary {
    char *key;
    char *context;
    double last, min, max;
    uint64_t count;
    int64_t last_step, last_timestamp_ms;
};

struct store_run {
    char *run_id, *team, *project, *experiment, *name, *user;
    int status; /* Rv__RunStatus */
    enum store_lifecycle lifecycle;
    int64_t created_at_ms, ended_at_ms; /* ended 0: not ended. */
    uint64_t n_points, n_log_lines;
    /* Filled only when asked for (store_run_get with is_full). */
    struct store_kv *params, *tags;
    size_t n_params, n_tags;
    struct store_summary *summary;
    size_t n_summary;
};

void store_run_free(struct store_run *run); /* Frees the contents. */

/* Read run run_id. is_full also loads params, tags and summaries.
 * Returns RV_OK, RV_ENOTFOUND, RV_ECORRUPT or RV_ENOMEM. */
int store_run_get(struct store_read *r, const char *run_id, int is_full,
                  struct store_run *run, char *errmsg);

enum store_view { STORE_VIEW_ACTIVE, STORE_VIEW_DELETED, STORE_VIEW_ALL };

struct store_query {
    const char *team;       /* NULL: every team. */
    const char *project;    /* NULL: every project. */
    const char *experiment; /* NULL: every experiment. */
    const char *filter;     /* Filter expression (store/filter.h), or NULL. */
    const char *order_by;   /* ORDER BY list, or NULL. */
    enum store_view view;
    size_t per_page;        /* 1..CONTRACT_MAX_PER_PAGE; 0 = default. */
    const char *page_token; /* From a previous page, or NULL. */
    int is_full;            /* Load params, tags, summaries per run. */
};

#define STORE_PLAN_NAME_BYTES 16

struct store_page {
    struct store_run *runs;
    size_t n_runs;
    char next_page_token[CONTRACT_PAGE_TOKEN_BYTES]; /* "" on the last page. */
    int has_total;       /* total is exact (known without extra work). */
    uint64_t total;      /* Runs matching the query, all pages. */
    uint64_t n_examined; /* Candidate runs evaluated (for /metrics). */
    /* The plan that produced the page (store_plan.c): "scan", "list",
     * "created", "param-order", "metric-order" or "metric-range". */
    char plan[STORE_PLAN_NAME_BYTES];
};

/* The size of a candidate list from which the planner prefers an ordered
 * index (or a metric range) to the list; default STORE_ORDERED_SCAN_MIN.
 * For tests and benchmarks that exercise every plan on small stores;
 * safe to call from any thread. */
#define STORE_ORDERED_SCAN_MIN 20000
void store_plan_set_ordered_min(uint64_t n);

/* Answer one page of runs matching q, ordered by q->order_by with MLflow's
 * tie-breaks. Page tokens are keyset tokens: the next page starts strictly
 * after the last row returned, so it stays correct while runs are added.
 * Errors: RV_EPARSE (position and expected token in errmsg), RV_EINVAL (a
 * bad per_page or page token), RV_ETOOBIG, RV_ECORRUPT, RV_ENOMEM. On RV_OK
 * free with store_page_free(). */
int store_query_runs(struct store_read *r, const struct store_query *q,
                     struct store_page *page, char *errmsg);
void store_page_free(struct store_page *page);

/* ---- MLflow experiments (store_mlflow.c, DESIGN Appendix B.2) ---------- */

#define STORE_MLFLOW_MAX_LIST 1000 /* Experiments per list call. */

struct store_mlflow_exp {
    uint64_t id; /* 0: the team's "Default". */
    char *team, *project, *experiment, *name;
    int is_deleted;
    int64_t created_at_ms, updated_at_ms;
    struct store_kv *tags;
    size_t n_tags;
};

/* What to read. team: NULL or "" is the reader's team, or "default" for a
 * reader of every team; a scoped reader asking for another team finds
 * nothing. get: by name when set, else by (project, experiment) when both
 * are set, else by id. list: ids after after_id in id order (experiment 0
 * first when after_id is 0), at most max (1..STORE_MLFLOW_MAX_LIST). */
struct store_mlflow_query {
    const char *team;
    uint64_t id;
    const char *name;
    const char *project, *experiment;
    uint64_t after_id;
    size_t max;
    enum store_view view;
};

void store_mlflow_free(struct store_mlflow_exp *e); /* The contents. */
/* RV_OK, RV_ENOTFOUND (another team's experiment included, with MLflow's
 * message), RV_ECORRUPT, RV_ENOMEM. */
int store_mlflow_get(struct store_read *r, const struct store_mlflow_query *q,
                     struct store_mlflow_exp *out, char *errmsg);
/* *out (free each with store_mlflow_free, then the array with free()). */
int store_mlflow_list(struct store_read *r, const struct store_mlflow_query *q,
                      struct store_mlflow_exp **out, size_t *n_out,
                      char *errmsg);

struct store_point {
    int64_t step;
    int64_t timestamp_ms;
    double value;
};

struct store_history_query {
    const char *run_id;
    const char *key;
    const char *context;        /* NULL or "" for the default context. */
    int64_t min_step, max_step; /* Inclusive range. */
    size_t downsample; /* 0: every point (at most CONTRACT_MAX_HISTORY_POINTS,
                          else RV_ETOOBIG); else at most this many points,
                          keeping each bucket's first, last, min and max. */
};

/* Points of one series in step order (ties in the order they were logged).
 * On RV_OK the caller frees *points with free(). Errors: RV_ENOTFOUND (no
 * such run or series), RV_EINVAL, RV_ETOOBIG, RV_ECORRUPT, RV_ENOMEM. */
int store_metric_history(struct store_read *r,
                         const struct store_history_query *q,
                         struct store_point **points, size_t *n_points,
                         char *errmsg);

struct store_log_line {
    uint64_t line_no; /* 0-based, per run, in append order. */
    int64_t timestamp_ms;
    int stream; /* Rv__Stream */
    char *text;
};

/* Up to max_lines lines from line from_line on. *next_line is where the
 * next call continues (equal to the run's line count at the end). Free with
 * store_log_lines_free(). */
int store_log_lines(struct store_read *r, const char *run_id,
                    uint64_t from_line, size_t max_lines,
                    struct store_log_line **lines, size_t *n_lines,
                    uint64_t *next_line, char *errmsg);
void store_log_lines_free(struct store_log_line *lines, size_t n);

enum store_group { STORE_GROUP_STATUS, STORE_GROUP_PROJECT, STORE_GROUP_DAY };

struct store_count {
    char *label; /* Status name, project name or day "YYYY-MM-DD". */
    uint64_t n;
};

/* Active runs counted by status, by project or by creation day (UTC),
 * optionally within a team and a project (NULL: all). Labels ascend. Free
 * with store_counts_free(). */
int store_analytics(struct store_read *r, enum store_group group,
                    const char *team, const char *project,
                    struct store_count **counts, size_t *n_counts,
                    char *errmsg);
void store_counts_free(struct store_count *counts, size_t n);

struct store_artifact {
    char *path, *content_type;
    uint64_t size;
    uint8_t sha256[32];
    int is_complete;
};

/* Artifact metadata, and its bytes [offset, offset + n) into out (replaced;
 * n is cut at the end of the artifact). Artifacts with the same content
 * share one copy of the parts. */
int store_artifact_get(struct store_read *r, const char *run_id,
                       const char *path, struct store_artifact *art,
                       char *errmsg);
void store_artifact_free(struct store_artifact *art);
int store_artifact_read(struct store_read *r, const char *run_id,
                        const char *path, uint64_t offset, size_t n,
                        struct rv_buf *out, char *errmsg);

/* Every artifact of run run_id in path order (at most
 * CONTRACT_MAX_ARTIFACTS_LISTED). Free with store_artifacts_free(). Errors:
 * RV_ENOTFOUND (no such run), RV_ECORRUPT, RV_ENOMEM. */
int store_artifacts_list(struct store_read *r, const char *run_id,
                         struct store_artifact **arts, size_t *n_arts,
                         char *errmsg);
void store_artifacts_free(struct store_artifact *arts, size_t n);

/* The cluster members recorded by node_put commands, by id. Free with
 * free(). */
struct store_node {
    uint64_t id;
    char raft_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    char rpc_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    char http_addr[CONTRACT_MAX_ADDR_BYTES + 1];
};
int store_nodes_list(struct store_read *r, struct store_node **nodes,
                     size_t *n_nodes, char *errmsg);

/* ---- Teams, tokens, audit (store_auth.c) ----------------------------------
 * Written by the admin commands; every one of them is checked at apply
 * against the token the command carries (Command.token_id), at its log
 * position and its stamped time, so a revocation or an expiry takes effect
 * at one index on every replica. */

/* 1 once an auth_on command has been applied: from then on apply refuses a
 * client command that carries no token. */
int store_auth_is_on(struct store_read *r);

struct store_token {
    char token_id[CONTRACT_TOKEN_ID_CHARS + 1];
    char team[CONTRACT_MAX_TEAM_BYTES + 1]; /* "*" for cluster-admin. */
    char name[CONTRACT_MAX_TOKEN_NAME_BYTES + 1];
    int role;                             /* Rv__Role */
    int64_t created_at_ms, expires_at_ms; /* expires 0: never. */
    int is_revoked;
    uint64_t revoked_index;
    uint8_t sha256[32];
};

/* The token token_id (its record: whether it is revoked or expired is for
 * the caller to judge). Not scoped: authentication reads it before a scope
 * is known. Errors: RV_ENOTFOUND, RV_ECORRUPT. */
int store_token_get(struct store_read *r, const char *token_id,
                    struct store_token *out, char *errmsg);

/* Tokens of team (NULL: every team the read's scope allows) in id order.
 * Free with free(). */
int store_tokens_list(struct store_read *r, const char *team,
                      struct store_token **out, size_t *n, char *errmsg);

struct store_team {
    char team[CONTRACT_MAX_TEAM_BYTES + 1];
    uint64_t max_runs, max_bytes, max_points_per_s, max_points_per_run;
    uint64_t n_runs, n_bytes; /* Use: runs until purged, bytes written. */
};

/* Teams (NULL: every team the scope allows; else that one) by name, with
 * their use. Free with free(). */
int store_teams_list(struct store_read *r, const char *team,
                     struct store_team **out, size_t *n, char *errmsg);

/* ---- Retention (store_retain.c) ---------------------------------------- */

#define STORE_TRASH_DEFAULT_MS ((int64_t)30 * 86400000) /* 30 days. */

/* A project's retention rule (proto RetentionPut). */
struct store_retention {
    char team[CONTRACT_MAX_TEAM_BYTES + 1];
    char project[CONTRACT_MAX_SCOPE_BYTES + 1];
    int64_t max_age_ms; /* 0: no age limit. */
    uint64_t keep_last; /* 0: no count limit. */
    int has_trash;      /* 0: the default trash period. */
    int64_t trash_ms;
    uint32_t status_mask; /* Bit (1 << Rv__RunStatus) per status. */
};

/* Whether a retention_sweep stamped now_ms would trash or purge a run
 * (*is_due), by the same selection apply uses. */
int store_retention_due(struct store_read *r, int64_t now_ms, int *is_due,
                        char *errmsg);
/* The rules of team (NULL: every team the scope allows), in key order.
 * Free with free(). */
int store_retention_list(struct store_read *r, const char *team,
                         struct store_retention **out, size_t *n, char *errmsg);

/* ---- The divergence check (store_check.c) ------------------------------ */

struct store_check_info {
    int is_diverged;
    uint64_t diverged_index; /* The check point found different. */
    uint64_t last_index;     /* This node's newest hashed check point. */
    uint8_t last_hash[STORE_DIGEST_BYTES];
    uint64_t n_hashed, n_compared;
};

/* ---- Compaction (store_compact.c; ARCHITECTURE.md "Compaction") ------- */

struct store_compact_info {
    uint64_t checkpoint_index; /* The vlog's checkpoint (0: none). */
    uint64_t requested_index;  /* The last compact entry applied here. */
    uint64_t n_done, bytes_rewritten, bytes_freed, image_bytes;
    uint64_t vlog_disk_bytes; /* Allocated bytes of the segment files. */
    int last_code, is_running;
    char last_error[RV_ERRMSG_SIZE];
};

/* Start the thread that runs a compaction after each compact entry,
 * rewriting at most rate_bytes_s bytes per second (0: unpaced). A store
 * without it applies compact entries and compacts nothing. */
int store_compact_start(struct store *s, uint64_t rate_bytes_s, char *errmsg);
/* Wait up to timeout_ms for the compaction of index (or a later one) to
 * finish; its RV_* code, RV_ETIMEDOUT. Any thread. */
int store_compact_wait(struct store *s, uint64_t index, unsigned timeout_ms);
void store_compact_info(struct store *s, struct store_compact_info *out);
/* Bytes of use purged since the last compaction (replicated). */
int store_reclaimable_bytes(struct store_read *r, uint64_t *out);
/* Catch-up across a compaction (raft/raftfsm.c). The vlog's checkpoint
 * index (0: none). */
uint64_t store_checkpoint_index(struct store *s);
/* Up to max bytes of the image of checkpoint index from offset, appended
 * to out; *total its size. RV_ENOTFOUND when index is not the current
 * checkpoint (a later compaction replaced it). Any thread. */
int store_image_read(struct store *s, uint64_t index, uint64_t offset,
                     size_t max, struct rv_buf *out, uint64_t *total,
                     char *errmsg);
/* Append a fetched record to the vlog without materialising it (records
 * up to a checkpoint whose image follows). Writer thread. */
int store_append_raw(struct store *s, uint64_t index, const void *payload,
                     size_t n, char *errmsg);
/* Take the image at path (a whole image file, its checkpoint at or
 * below the vlog's last index) as this store's checkpoint: moved into
 * the vlog, the manifest committed, the index replaced by the image.
 * Writer thread. */
int store_install_image(struct store *s, const char *path, char *errmsg);
/* The path where a catch-up writes an image being fetched. */
void store_image_part_path(struct store *s, char *out, size_t size);

/* Start the thread that hashes the index at check entries (a serving
 * node; offline tools never hash). */
int store_check_start(struct store *s, char *errmsg);
/* The check's state. Any thread. */
void store_check_info(struct store *s, struct store_check_info *out);

struct store_audit {
    uint64_t index;
    int64_t time_ms;
    char token_id[CONTRACT_TOKEN_ID_CHARS + 1]; /* "" in open mode. */
    char action[32];                            /* The command's name. */
    char team[CONTRACT_MAX_TEAM_BYTES + 1];     /* "" for cluster actions. */
    char target[CONTRACT_MAX_RUN_ID_BYTES + CONTRACT_MAX_TEAM_BYTES + 2];
};

/* Audit events at index >= since_index, oldest first, at most max of them
 * (1..CONTRACT_MAX_AUDIT_EVENTS), of team (NULL: every team the scope
 * allows; a scoped read sees only its team's events). Free with free(). */
int store_audit_list(struct store_read *r, const char *team,
                     uint64_t since_index, size_t max, struct store_audit **out,
                     size_t *n, char *errmsg);

#endif /* RV_STORE_STORE_H */
